import Glibc

/// This worker's one database connection: opened on first use, reused, and
/// after a failure reopened with backoff.
///
/// While backing off, calls fail at once with `unavailable` instead of
/// trying to connect on every request, so a dead database costs no time per
/// request and a worker never crash-loops. The backoff is capped at 0.5 s so
/// that a restarted database is picked up within about that long.
public final class StorageService {
    public let config: Config
    private let log: Log
    private var db: Database?
    private var failures = 0
    private var retryAt = 0.0
    private var lastError = ""

    public init(config: Config, log: Log) {
        self.config = config
        self.log = log
    }

    deinit { db?.close() }

    public static func shared(_ ctx: WorkerContext) -> StorageService {
        ctx.service(StorageService.self) { StorageService(config: ctx.config, log: ctx.log) }
    }

    public var engine: DatabaseEngine { Self.engine(of: config.databaseURL) }

    public static func engine(of url: String) -> DatabaseEngine {
        url.hasPrefix("sqlite:") ? .sqlite : .postgres
    }

    /// Opens a new connection for `config` (also used by the CLI and the master).
    public static func open(_ config: Config) throws -> Database {
        try open(config, timeout: config.dbTimeout)
    }

    /// A migration may build an index over every event (migration 2 does,
    /// ~0.5 s per 50k rows), and runs as one transaction that others wait
    /// on: it gets at least this long, not a request's CC_DB_TIMEOUT.
    public static let migrationTimeout = 600.0

    /// The connection migrations run on: `open` with `migrationTimeout`.
    public static func openForMigration(_ config: Config) throws -> Database {
        try open(config, timeout: max(config.dbTimeout, migrationTimeout))
    }

    static func open(_ config: Config, timeout: Double) throws -> Database {
        if let path = sqlitePath(config) {
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                makeDirectories(String(path[..<slash]))
            }
            // Password hashes live here: owner-only, and SQLite gives the
            // -wal and -shm files the same mode.
            let fd = Glibc.open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
            if fd >= 0 { Glibc.close(fd) }
            return try SQLiteDatabase(path: path, timeout: timeout)
        }
        return try PostgresDatabase(url: config.databaseURL, timeout: timeout)
    }

    /// The SQLite file `CC_DATABASE_URL` names (`sqlite:///path`, or
    /// `$CC_STATE_DIR/control-center.db` for a bare `sqlite://`); nil on PostgreSQL.
    public static func sqlitePath(_ config: Config) -> String? {
        let url = config.databaseURL
        guard engine(of: url) == .sqlite else { return nil }
        let path = String(url.dropFirst("sqlite://".count))
        return path.isEmpty ? config.stateDir + "/control-center.db" : path
    }

    /// The open connection, or a new one; `unavailable` while backing off.
    public func database() throws -> Database {
        if let db { return db }
        let now = Clock.monotonicSeconds()
        if now < retryAt { throw DatabaseError.unavailable("reconnecting (last error: \(lastError))") }
        do {
            let d = try Self.open(config)
            db = d
            if failures > 0 { log.info("database reconnected", ["after_failures": String(failures)]) }
            failures = 0
            return d
        } catch let e as DatabaseError {
            noteFailure(e)
            throw e
        }
    }

    /// Runs `body` on the connection; a lost connection is dropped so that
    /// the next call reconnects.
    public func run<T>(_ body: (Database) throws -> T) throws -> T {
        let d = try database()
        do {
            return try body(d)
        } catch let e as DatabaseError {
            if case .unavailable = e {
                d.close()
                db = nil
                noteFailure(e)
            }
            throw e
        }
    }

    private func noteFailure(_ e: DatabaseError) {
        failures += 1
        lastError = e.description
        retryAt = Clock.monotonicSeconds() + min(0.5, 0.05 * Double(1 << min(failures - 1, 5)))
        if failures == 1 || failures % 100 == 0 {
            log.warning("database unavailable", ["error": e.description, "failures": String(failures)])
        }
    }

    /// Closes the connection (tests; the master before it spawns workers).
    public func close() {
        db?.close()
        db = nil
    }
}

func makeDirectories(_ path: String) {
    var current = ""
    for part in path.split(separator: "/") {
        current += "/" + part
        mkdir(current, 0o755)
    }
}

/// Handler-side access: database errors that mean "try again" become the
/// 503 envelope; everything else propagates (APIErrors as themselves, the
/// rest as logged 500s).
public enum Store {
    public static func read<T>(_ ctx: WorkerContext, _ body: (Database) throws -> T) throws -> T {
        do {
            return try StorageService.shared(ctx).run(body)
        } catch let e as DatabaseError {
            if let api = e.apiError { throw api }
            throw e
        }
    }

    /// One transaction: the change and its audit event commit together.
    /// After the commit the collector is woken (CollectorWake): most writes
    /// add an event row, which it publishes on the events channel.
    public static func write<T>(_ ctx: WorkerContext, _ body: (Database) throws -> T) throws -> T {
        let result = try read(ctx) { db in try db.transaction { try body(db) } }
        CollectorWake.notify(path: ctx.config.collectorWakeSocket)
        return result
    }

    /// A change that is one statement, and so atomic by itself: no
    /// BEGIN/COMMIT around it, which on PostgreSQL are two more round trips
    /// to the server per write.
    public static func writeStatement<T>(_ ctx: WorkerContext, _ statement: (Database) throws -> T) throws -> T {
        let result = try read(ctx, statement)
        CollectorWake.notify(path: ctx.config.collectorWakeSocket)
        return result
    }
}
