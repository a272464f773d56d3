import CSQLite
import Glibc

/// The embedded engine: one libsqlite3 connection, WAL mode, owned by one
/// process.
///
/// Time limits: a progress handler interrupts a statement past its deadline
/// and a custom busy handler waits for the write lock only until the same
/// deadline, so a request never waits longer than `CC_DB_TIMEOUT` and a
/// lock wait ends as `DatabaseError.timeout`, never as "database is locked".
public final class SQLiteDatabase: Database {
    public let engine = DatabaseEngine.sqlite
    public let path: String
    private var db: OpaquePointer?
    private let timeout: Double
    /// Monotonic deadline in ns, read by the C callbacks; heap memory so
    /// they need no Swift context.
    private let deadline: UnsafeMutablePointer<UInt64>
    private var statements: [String: OpaquePointer] = [:]
    private var transactionDepth = 0
    public var schemaFacts: [String: Bool] = [:]

    public init(path: String, timeout: Double) throws {
        self.path = path
        self.timeout = timeout
        deadline = .allocate(capacity: 1)
        deadline.initialize(to: UInt64.max)
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            deadline.deallocate()
            throw DatabaseError.unavailable("cannot open \(path): \(msg)")
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_handler(handle, sqliteBusyHandler, deadline)
        sqlite3_progress_handler(handle, 1000, sqliteProgressHandler, deadline)
        do {
            try arm()
            // WAL persists in the file; readers then never block the writer.
            _ = try step(sql: "PRAGMA journal_mode=WAL", params: [], cache: false)
            _ = try step(sql: "PRAGMA synchronous=NORMAL", params: [], cache: false)
            _ = try step(sql: "PRAGMA foreign_keys=ON", params: [], cache: false)
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
        deadline.deallocate()
    }

    public func close() {
        for (_, s) in statements { sqlite3_finalize(s) }
        statements.removeAll()
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func arm() throws {
        guard db != nil else { throw DatabaseError.unavailable("connection closed") }
        if transactionDepth == 0 {
            deadline.pointee = Clock.monotonicNanos() + UInt64(timeout * 1e9)
        }
    }

    public func query(_ sql: String, _ params: [DBValue]) throws -> [Row] {
        try arm()
        return try step(sql: sql, params: params, cache: true)
    }

    public func queryPlannedPerCall(_ sql: String, _ params: [DBValue]) throws -> [Row] {
        try query(sql, params)
    }

    public func execute(_ sql: String, _ params: [DBValue]) throws -> Int {
        try arm()
        _ = try step(sql: sql, params: params, cache: true)
        return Int(sqlite3_changes(db))
    }

    public func transaction<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 { return try body() }
        try arm()
        _ = try step(sql: "BEGIN IMMEDIATE", params: [], cache: true)
        transactionDepth = 1
        do {
            let result = try body()
            _ = try step(sql: "COMMIT", params: [], cache: true)
            transactionDepth = 0
            return result
        } catch {
            transactionDepth = 0
            if let db, sqlite3_get_autocommit(db) == 0 {
                // A ROLLBACK must run even after an interrupt: give it time.
                deadline.pointee = Clock.monotonicNanos() + 5_000_000_000
                _ = try? step(sql: "ROLLBACK", params: [], cache: true)
            }
            throw error
        }
    }

    public func ping() throws {
        try arm()
        _ = try step(sql: "SELECT 1", params: [], cache: true)
    }

    /// Holds the write lock for `ms` (the test-only slow route): every other
    /// writer waits on it, as behind a long migration or a stuck writer.
    public func sleep(milliseconds ms: Int) throws {
        try transaction {
            let end = Clock.monotonicNanos() + UInt64(ms) * 1_000_000
            while Clock.monotonicNanos() < end {
                if Clock.monotonicNanos() >= deadline.pointee { throw DatabaseError.timeout }
                Clock.sleep(seconds: 0.005)
            }
        }
    }

    // MARK: statements

    private func prepare(_ sql: String, cache: Bool) throws -> OpaquePointer {
        if cache, let s = statements[sql] { return s }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, cache ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql: sql) }
        if cache { statements[sql] = stmt }
        return stmt
    }

    private func step(sql: String, params: [DBValue], cache: Bool) throws -> [Row] {
        let stmt = try prepare(sql, cache: cache)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
            if !cache { sqlite3_finalize(stmt) }
        }
        guard Int(sqlite3_bind_parameter_count(stmt)) == params.count else {
            throw DatabaseError.failed("expected \(sqlite3_bind_parameter_count(stmt)) parameters, got \(params.count): \(sql)")
        }
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch p {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, idx, v)
            case .text(let s): rc = sqlite3_bind_text(stmt, idx, s, -1, sqliteTransient)
            }
            guard rc == SQLITE_OK else { throw error(rc, sql: sql) }
        }
        var rows: [Row] = []
        let columns = sqlite3_column_count(stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql: sql) }
            var values: [DBValue] = []
            values.reserveCapacity(Int(columns))
            for c in 0..<columns {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(stmt, c)))
                case SQLITE_NULL: values.append(.null)
                default:
                    let n = Int(sqlite3_column_bytes(stmt, c))
                    if let p = sqlite3_column_text(stmt, c) {
                        values.append(.text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)))
                    } else {
                        values.append(.text(""))
                    }
                }
            }
            rows.append(Row(values))
        }
        return rows
    }

    private func error(_ rc: Int32, sql: String) -> DatabaseError {
        let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        switch rc & 0xFF {
        case SQLITE_INTERRUPT, SQLITE_BUSY, SQLITE_LOCKED:
            return .timeout
        case SQLITE_CONSTRAINT:
            if rc == 2067 || rc == 1555 { return .uniqueViolation(msg) } // _UNIQUE, _PRIMARYKEY
            return .constraint(msg)
        case SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_FULL, SQLITE_READONLY, SQLITE_PROTOCOL:
            return .unavailable(msg)
        default:
            return .failed("\(msg) (\(rc)) in: \(sql)")
        }
    }
}

private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// Non-zero interrupts the running statement.
private func sqliteProgressHandler(_ ctx: UnsafeMutableRawPointer?) -> Int32 {
    guard let ctx else { return 0 }
    return Clock.monotonicNanos() > ctx.assumingMemoryBound(to: UInt64.self).pointee ? 1 : 0
}

/// Short, growing sleeps (0.2 ms up to 2 ms): writes take well under a
/// millisecond, so SQLite's default schedule (up to 100 ms) would add
/// needless latency under write contention.
private func sqliteBusyHandler(_ ctx: UnsafeMutableRawPointer?, _ count: Int32) -> Int32 {
    guard let ctx else { return 0 }
    if Clock.monotonicNanos() > ctx.assumingMemoryBound(to: UInt64.self).pointee { return 0 }
    usleep(UInt32(min(2000, 200 * (Int(count) + 1))))
    return 1
}
