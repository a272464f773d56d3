import Glibc

/// `control-center backup DIR` and `restore DIR`: the SQLite database and the
/// secrets of a state directory, as one directory (mode 0700, files 0600):
///
///     DIR/control-center.db       consistent copy (VACUUM INTO), schema included
///     DIR/jwt.secret              the HS256 key in use, so issued tokens stay valid
///     DIR/first-admin-password    only while the first admin has not changed it
///
/// The copy is taken with `VACUUM INTO` in one read transaction: safe while
/// the master serves (WAL readers never block writers), and it holds every
/// transaction committed before it began and none after. The directory is
/// written under a temporary name and renamed when complete, so a backup
/// that exists is whole. PostgreSQL is backed up with pg_dump instead
/// (docs/deployment.md); both commands refuse it.
public enum Backup {
    public static let databaseFile = "control-center.db"
    public static let secretFile = "jwt.secret"
    public static let adminPasswordFile = "first-admin-password"

    public struct Summary: Sendable, CustomStringConvertible {
        public var schemaVersion: Int
        public var users: Int
        public var events: Int
        public var files: [String]

        public var description: String {
            "schema \(schemaVersion), \(users) users, \(events) events; files: \(files.joined(separator: ", "))"
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case postgres
        case exists(String)
        case notEmpty(String)
        case missing(String)
        case newerSchema(backup: Int, binary: Int)
        case io(String)

        public var description: String {
            switch self {
            case .postgres:
                "the database is PostgreSQL: back it up with pg_dump and restore it with pg_restore "
                    + "(docs/deployment.md); copy jwt.secret from the state directory with it"
            case .exists(let p): "\(p) already exists; a backup never overwrites one"
            case .notEmpty(let p): "\(p) is not empty; restore only into a fresh state directory"
            case .missing(let p): "\(p) is missing: not a backup made by control-center backup"
            case .newerSchema(let b, let bin):
                "the backup's schema (\(b)) is newer than this binary's (\(bin)): restore it with the binary that took it"
            case .io(let m): m
            }
        }
    }

    // MARK: backup

    /// Writes a backup of `config`'s state to the new directory `target`.
    public static func create(_ config: Config, to target: String) throws -> Summary {
        guard StorageService.sqlitePath(config) != nil else { throw Failure.postgres }
        if access(target, F_OK) == 0 { throw Failure.exists(target) }
        let secret = try currentSecret(config)
        let partial = "\(target).partial.\(getpid())"
        guard mkdir(partial, 0o700) == 0 else { throw Failure.io("cannot create \(partial): \(errorText())") }
        do {
            let copy = partial + "/" + databaseFile
            // VACUUM INTO wants a missing or empty file; an empty one made
            // here carries the mode, since SQLite would apply the umask.
            try createEmpty(copy)
            let db = try StorageService.openForMigration(config)
            defer { db.close() }
            _ = try db.execute("VACUUM INTO ?", [.text(copy)])
            try write(secret, to: partial + "/" + secretFile)
            var files = [databaseFile, secretFile]
            if let pw = AtomicFile.read(StorageSetup.adminPasswordPath(config), limit: 4096) {
                try write(pw, to: partial + "/" + adminPasswordFile)
                files.append(adminPasswordFile)
            }
            var summary = try summarize(copy)
            summary.files = files
            try syncDirectory(partial)
            guard rename(partial, target) == 0 else { throw Failure.io("cannot rename \(partial) to \(target): \(errorText())") }
            return summary
        } catch {
            removeTree(partial)
            throw error
        }
    }

    /// The key the workers sign with: `CC_JWT_SECRET`, else the state
    /// directory's file (never created here: a backup changes nothing).
    static func currentSecret(_ config: Config) throws -> [UInt8] {
        if let s = config.jwtSecret { return Array((s + "\n").utf8) }
        let path = config.stateDir + "/" + secretFile
        guard let bytes = AtomicFile.read(path, limit: 4096), !bytes.isEmpty else { throw Failure.missing(path) }
        return bytes
    }

    // MARK: restore

    /// Restores `backup` into `config`'s state directory, which must be
    /// missing or empty (and so must a database file outside it). The
    /// database is checked (`PRAGMA quick_check`, a schema this binary
    /// knows) before it is put in place.
    public static func restore(_ config: Config, from backup: String) throws -> Summary {
        guard let dbPath = StorageService.sqlitePath(config) else { throw Failure.postgres }
        for f in [databaseFile, secretFile] where access(backup + "/" + f, R_OK) != 0 {
            throw Failure.missing(backup + "/" + f)
        }
        if !isEmptyOrMissing(config.stateDir) { throw Failure.notEmpty(config.stateDir) }
        var st = stat()
        if stat(dbPath, &st) == 0 && st.st_size > 0 { throw Failure.notEmpty(dbPath) }
        makeDirectories(config.stateDir)
        if let slash = dbPath.lastIndex(of: "/"), slash != dbPath.startIndex { makeDirectories(String(dbPath[..<slash])) }

        let staged = "\(dbPath).restore.\(getpid())"
        do {
            try copyFile(backup + "/" + databaseFile, to: staged)
            var summary = try summarize(staged)
            guard summary.schemaVersion <= Migrations.latest else {
                throw Failure.newerSchema(backup: summary.schemaVersion, binary: Migrations.latest)
            }
            var files = [databaseFile]
            for f in [secretFile, adminPasswordFile] {
                guard let bytes = AtomicFile.read(backup + "/" + f, limit: 4096) else { continue }
                try write(bytes, to: config.stateDir + "/" + f)
                files.append(f)
            }
            guard rename(staged, dbPath) == 0 else { throw Failure.io("cannot rename \(staged) to \(dbPath): \(errorText())") }
            summary.files = files
            return summary
        } catch {
            unlink(staged)
            throw error
        }
    }

    /// Opens a copy, checks it and counts what it holds.
    static func summarize(_ path: String) throws -> Summary {
        let db = try SQLiteDatabase(path: path, timeout: StorageService.migrationTimeout)
        defer { db.close() }
        let check = try db.query("PRAGMA quick_check", []).first?.string(0)
        guard check == "ok" else { throw Failure.io("\(path) fails PRAGMA quick_check: \(check ?? "no answer")") }
        let version = try Migrations.currentVersion(db)
        let users = try db.queryOne("SELECT COUNT(*) FROM users", [])?.int(0) ?? 0
        let events = try db.queryOne("SELECT COUNT(*) FROM events", [])?.int(0) ?? 0
        return Summary(schemaVersion: version, users: users, events: events, files: [])
    }

    // MARK: files

    static func isEmptyOrMissing(_ dir: String) -> Bool {
        guard let d = opendir(dir) else { return errno == ENOENT }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { return false }
        }
        return true
    }

    private static func createEmpty(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure.io("cannot create \(path): \(errorText())") }
        close(fd)
    }

    private static func write(_ bytes: [UInt8], to path: String) throws {
        guard AtomicFile.write(bytes, to: path, mode: 0o600, sync: true) else {
            throw Failure.io("cannot write \(path): \(errorText())")
        }
    }

    /// Streams `from` to a new file `to` (mode 0600) and syncs it.
    private static func copyFile(_ from: String, to: String) throws {
        let src = open(from, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw Failure.io("cannot open \(from): \(errorText())") }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw Failure.io("cannot create \(to): \(errorText())") }
        defer { close(dst) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure.io("cannot read \(from): \(errorText())") }
            if n == 0 { break }
            var off = 0
            while off < n {
                let w = buf.withUnsafeBytes { Glibc.write(dst, $0.baseAddress! + off, n - off) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw Failure.io("cannot write \(to): \(errorText())") }
                off += w
            }
        }
        guard fsync(dst) == 0 else { throw Failure.io("cannot sync \(to): \(errorText())") }
    }

    private static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure.io("cannot open \(dir): \(errorText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Failure.io("cannot sync \(dir): \(errorText())") }
    }

    /// Removes a partial backup: its files, then the directory (no subdirectories).
    private static func removeTree(_ dir: String) {
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(dir + "/" + name) }
            }
            closedir(d)
        }
        rmdir(dir)
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
