import Glibc

/// What the master does once before it starts workers, and what
/// `control-center migrate` / `user add` do: migrate under an exclusive
/// lock, make sure a JWT secret exists, and create the first admin.
public enum StorageSetup {
    public struct Report {
        public var applied: [Int]
        public var version: Int
        /// Set only when this run created the first admin: where its
        /// generated password was written.
        public var adminPasswordFile: String?
    }

    /// Where the generated first admin's password goes (mode 0600), never
    /// to the log.
    public static func adminPasswordPath(_ config: Config) -> String { config.stateDir + "/first-admin-password" }

    /// `flock` on `run/migrate.lock` serialises masters and CLI runs on this
    /// host (and the transaction, plus `pg_advisory_xact_lock` on
    /// PostgreSQL, covers hosts sharing one database).
    public static func withMigrationLock<T>(_ config: Config, _ body: () throws -> T) throws -> T {
        makeDirectories(config.runDir)
        let path = config.runDir + "/migrate.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }   // closing releases the lock
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw ConfigError("cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        return try body()
    }

    /// Under the migration lock, on a connection with the migration
    /// timeout: migrates, then hands `body` the database and the versions
    /// just applied. Every entry point that may meet a new database starts here.
    static func withMigratedDatabase<T>(_ config: Config, _ body: (Database, [Int]) throws -> T) throws -> T {
        try withMigrationLock(config) {
            let db = try StorageService.openForMigration(config)
            defer { db.close() }
            return try body(db, try Migrations.run(db))
        }
    }

    public static func migrate(_ config: Config) throws -> (applied: [Int], version: Int) {
        try withMigratedDatabase(config) { db, applied in (applied, try Migrations.currentVersion(db)) }
    }

    /// `control-center migrate --check`: this binary's schema against the
    /// database's, without migrating or taking the migration lock.
    public static func checkSchema(_ config: Config) throws -> SchemaCheck {
        let db = try StorageService.open(config)
        defer { db.close() }
        return SchemaCheck(binary: Migrations.latest, database: try Migrations.currentVersion(db))
    }

    /// Master start: migrations, secret, first admin, pruning. Throws if
    /// the database cannot be reached, so a misconfigured URL fails loudly.
    public static func prepare(_ config: Config, log: Log, adminName: String = "admin") throws -> Report {
        if config.jwtSecret == nil { _ = try JWTSecret.loadOrCreate(path: config.stateDir + "/jwt.secret") }
        return try withMigratedDatabase(config) { db, applied in
            var report = Report(applied: applied, version: try Migrations.currentVersion(db))
            if !applied.isEmpty {
                log.info("database migrated", ["applied": applied.map(String.init).joined(separator: ","),
                                               "version": String(report.version)])
            }
            try db.transaction {
                guard try UserRepository(db).count() == 0 else { return }
                let password = PasswordHasher.randomToken(bytes: 18)
                _ = try UserRepository(db).create(username: adminName, passwordHash: try PasswordHasher.hash(password),
                                                  role: .admin, email: nil, fullName: "Administrator",
                                                  mustChangePassword: true)
                try Audit.record(db, actor: nil, action: "user.create", target: adminName,
                                 message: "first admin created at start with a generated password")
                // Written before the commit: if the file cannot be written,
                // no account exists whose password nobody knows.
                let path = adminPasswordPath(config)
                guard AtomicFile.write(Array((password + "\n").utf8), to: path, mode: 0o600, sync: true) else {
                    throw ConfigError("cannot write the first admin's password to \(path): \(String(cString: strerror(errno)))")
                }
                report.adminPasswordFile = path
            }
            if let path = report.adminPasswordFile {
                log.warning("created the first admin; its generated password is in the file named here (mode 0600); "
                            + "log in and change it: until then this account may only change its password",
                            ["username": adminName, "password_file": path])
            }
            try TokenRepository(db).prune()
            try LoginThrottle(db).prune()
            return report
        }
    }

    public enum AddUserError: Error, CustomStringConvertible {
        case exists(String)
        case weakPassword(String)
        public var description: String {
            switch self {
            case .exists(let n): return "user \(n) already exists"
            case .weakPassword(let why): return "the password \(why)"
            }
        }
    }

    /// `control-center user add`: migrates first, so it works on a new
    /// database. The name is folded and checked as the register route does
    /// (`Username`), and the password must meet `PasswordPolicy`.
    public static func addUser(_ config: Config, username typed: String, role: Role, password: String) throws -> User {
        let username = try Username.normalized(typed)
        if let why = PasswordPolicy.problem(password) { throw AddUserError.weakPassword(why) }
        return try withMigratedDatabase(config) { db, _ in
            let hash = try PasswordHasher.hash(password)
            do {
                return try db.transaction {
                    let u = try UserRepository(db).create(username: username, passwordHash: hash, role: role,
                                                          email: nil, fullName: nil)
                    try Audit.record(db, actor: "cli", action: "user.create", target: username,
                                     message: "created user with role \(role.rawValue) from the command line")
                    return u
                }
            } catch DatabaseError.uniqueViolation {
                throw AddUserError.exists(username)
            }
        }
    }
}
