import CPostgres
import Foundation
import Glibc

/// One libpq connection, driven in non-blocking mode with `poll` so that no
/// call can outlive its deadline: connecting gets `connectTimeout`, a
/// statement gets `CC_DB_TIMEOUT` (enforced by the server's
/// `statement_timeout`) plus a small client-side margin for a server that
/// stopped answering.
///
/// A broken connection is never repaired in place: every error that means
/// "connection lost" becomes `DatabaseError.unavailable` and the owning
/// `StorageService` drops this object and reconnects with backoff. That keeps
/// the prepared-statement cache trivially consistent with the session.
public final class PostgresDatabase: Database {
    public let engine = DatabaseEngine.postgres
    private var conn: OpaquePointer?
    private let timeout: Double
    private var statements: [String: String] = [:]   // sql -> prepared name
    private var transactionDepth = 0
    private var deadline = 0.0
    public var schemaFacts: [String: Bool] = [:]

    /// Settings placed before the URL so that the URL may override them.
    static let defaults: [(String, String)] = [
        ("connect_timeout", "2"),   // libpq's minimum; our own poll deadline is shorter
        ("keepalives", "1"),
        ("keepalives_idle", "5"),
        ("keepalives_interval", "1"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "3000"),
        ("application_name", "control-center"),
    ]

    public init(url: String, timeout: Double, connectTimeout: Double = 1.0) throws {
        self.timeout = timeout
        let pairs = Self.defaults + [("dbname", url)]
        let keys = pairs.map { strdup($0.0) } + [nil]
        let values = pairs.map { strdup($0.1) } + [nil]
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        let started: OpaquePointer? = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                PQconnectStartParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let c = started else { throw DatabaseError.unavailable("out of memory") }
        conn = c
        let end = Clock.monotonicSeconds() + connectTimeout
        guard PQstatus(c) != CONNECTION_BAD else { throw fail("cannot connect") }
        var state = PGRES_POLLING_WRITING
        while true {
            switch state {
            case PGRES_POLLING_OK:
                break
            case PGRES_POLLING_FAILED:
                throw fail("cannot connect")
            default:
                let ev = Int16(state == PGRES_POLLING_READING ? POLLIN : POLLOUT)
                guard Self.wait(PQsocket(c), events: ev, until: end) else { throw fail("connect timed out") }
                state = PQconnectPoll(c)
                continue
            }
            break
        }
        guard PQsetnonblocking(c, 1) == 0 else { throw fail("cannot set non-blocking") }
        // libpq prints NOTICEs (e.g. "already exists, skipping") to stderr by default.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        do {
            deadline = Clock.monotonicSeconds() + connectTimeout + timeout
            // Plain integers only: nothing user-controlled reaches this SQL.
            _ = try run(send: { PQsendQuery(c, "SET statement_timeout = \(Int(timeout * 1000)); SET lock_timeout = \(Int(timeout * 1000))") })
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    public func close() {
        if let conn { PQfinish(conn) }
        conn = nil
        statements.removeAll()
    }

    private func fail(_ what: String) -> DatabaseError {
        let msg = conn.map { String(cString: PQerrorMessage($0)) } ?? ""
        close()
        return .unavailable("\(what): \(msg.trimmingCharacters(in: [" ", "\n"]))")
    }

    private func arm() throws -> OpaquePointer {
        guard let conn else { throw DatabaseError.unavailable("connection closed") }
        if transactionDepth == 0 { deadline = Clock.monotonicSeconds() + timeout + 0.5 }
        return conn
    }

    public func query(_ sql: String, _ params: [DBValue]) throws -> [Row] {
        let c = try arm()
        return try prepared(c, sql, params).rows
    }

    /// The unnamed statement: parsed and planned with the values each time.
    public func queryPlannedPerCall(_ sql: String, _ params: [DBValue]) throws -> [Row] {
        let c = try arm()
        let text = numberedPlaceholders(sql)
        return try withValues(params) { v in
            try run(send: { PQsendQueryParams(c, text, Int32(params.count), nil, v, nil, nil, 0) })
        }.rows
    }

    public func execute(_ sql: String, _ params: [DBValue]) throws -> Int {
        let c = try arm()
        return try prepared(c, sql, params).changes
    }

    public func transaction<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 { return try body() }
        let c = try arm()
        _ = try run(send: { PQsendQuery(c, "BEGIN") })
        transactionDepth = 1
        do {
            let result = try body()
            _ = try run(send: { PQsendQuery(c, "COMMIT") })
            transactionDepth = 0
            return result
        } catch {
            transactionDepth = 0
            if let conn, PQtransactionStatus(conn) != PQTRANS_IDLE, PQstatus(conn) == CONNECTION_OK {
                deadline = Clock.monotonicSeconds() + 2
                _ = try? run(send: { PQsendQuery(conn, "ROLLBACK") })
            }
            throw error
        }
    }

    public func ping() throws {
        let c = try arm()
        _ = try prepared(c, "SELECT 1", [])
    }

    /// The test-only slow route: the server sleeps, bounded by statement_timeout.
    public func sleep(milliseconds ms: Int) throws {
        let c = try arm()
        _ = try prepared(c, "SELECT pg_sleep(?)", [.double(Double(ms) / 1000)])
    }

    // MARK: protocol

    private func prepared(_ c: OpaquePointer, _ sql: String, _ params: [DBValue]) throws -> (rows: [Row], changes: Int) {
        let name: String
        if let n = statements[sql] {
            name = n
        } else {
            name = "cc\(statements.count + 1)"
            let text = numberedPlaceholders(sql)
            _ = try run(send: { PQsendPrepare(c, name, text, Int32(params.count), nil) })
            statements[sql] = name
        }
        return try withValues(params) { v in
            try run(send: { PQsendQueryPrepared(c, name, Int32(params.count), v, nil, nil, 0) })
        }
    }

    /// Parameters in libpq's text format, valid for the duration of `body`.
    private func withValues<T>(_ params: [DBValue], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> T) throws -> T {
        let values: [UnsafeMutablePointer<CChar>?] = params.map { p in
            switch p {
            case .null: return nil
            case .int(let v): return strdup(String(v))
            case .double(let v): return strdup(String(v))
            case .text(let s): return strdup(s)
            }
        }
        defer { values.forEach { free($0) } }
        return try values.map { UnsafePointer($0) }.withUnsafeBufferPointer { try body($0.baseAddress) }
    }

    /// Sends, flushes and collects the results of one command, all against
    /// `deadline`.
    private func run(send: () -> Int32) throws -> (rows: [Row], changes: Int) {
        guard let c = conn else { throw DatabaseError.unavailable("connection closed") }
        guard send() == 1 else { throw lost() }
        while true {
            let f = PQflush(c)
            if f == 0 { break }
            if f < 0 { throw lost() }
            guard Self.wait(PQsocket(c), events: Int16(POLLOUT | POLLIN), until: deadline) else { throw hung() }
            if PQconsumeInput(c) == 0 { throw lost() }
        }
        var firstError: DatabaseError?
        var rows: [Row] = []
        var changes = 0
        while true {
            while PQisBusy(c) == 1 {
                guard Self.wait(PQsocket(c), events: Int16(POLLIN), until: deadline) else { throw hung() }
                if PQconsumeInput(c) == 0 { throw lost() }
            }
            guard let res = PQgetResult(c) else { break }
            defer { PQclear(res) }
            switch PQresultStatus(res) {
            case PGRES_TUPLES_OK:
                rows = Self.rows(res)
            case PGRES_COMMAND_OK:
                changes = Int(String(cString: PQcmdTuples(res))) ?? 0
            default:
                if firstError == nil { firstError = classify(res) }
            }
        }
        if let firstError { throw firstError }
        if PQstatus(c) == CONNECTION_BAD { throw lost() }
        return (rows, changes)
    }

    private func lost() -> DatabaseError { fail("connection lost") }

    /// The server did not answer within timeout + margin: treat the
    /// connection as dead rather than wait on it.
    private func hung() -> DatabaseError {
        close()
        return .unavailable("no answer from the server within \(timeout) s")
    }

    private func classify(_ res: OpaquePointer) -> DatabaseError {
        let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
        let msg = String(cString: PQresultErrorMessage(res)).trimmingCharacters(in: [" ", "\n"])
        if let c = conn, PQstatus(c) == CONNECTION_BAD { return fail("connection lost") }
        switch state {
        case "57014", "55P03": return .timeout          // query_canceled (statement_timeout), lock_not_available
        case "23505": return .uniqueViolation(msg)
        case let s where s.hasPrefix("23"): return .constraint(msg)
        case let s where s.hasPrefix("08") || s.hasPrefix("57P") || s == "53300":
            close()
            return .unavailable(msg)
        default: return .failed("\(msg) [\(state)]")
        }
    }

    private static func rows(_ res: OpaquePointer) -> [Row] {
        let n = PQntuples(res), m = PQnfields(res)
        var out: [Row] = []
        out.reserveCapacity(Int(n))
        for r in 0..<n {
            var values: [DBValue] = []
            values.reserveCapacity(Int(m))
            for f in 0..<m {
                if PQgetisnull(res, r, f) == 1 {
                    values.append(.null)
                } else {
                    values.append(.text(String(cString: PQgetvalue(res, r, f))))
                }
            }
            out.append(Row(values))
        }
        return out
    }

    /// True when `fd` is ready before `until` (monotonic seconds).
    static func wait(_ fd: Int32, events: Int16, until: Double) -> Bool {
        while true {
            let left = until - Clock.monotonicSeconds()
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, Int32(min(left * 1000, 60_000).rounded(.up)))
            if rc > 0 { return true }
            if rc == 0 { continue }
            if errno != EINTR { return true } // let libpq report the real error
        }
    }
}
