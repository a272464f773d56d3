/// A value bound to, or read from, a statement. Both engines speak only these
/// types, so repositories behave the same on SQLite and PostgreSQL.
public enum DBValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
}

extension DBValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral v: String) { self = .text(v) }
    public init(integerLiteral v: Int) { self = .int(Int64(v)) }
    public init(nilLiteral: ()) { self = .null }

    public init(_ v: String?) { self = v.map { .text($0) } ?? .null }
    public init(_ v: Int?) { self = v.map { .int(Int64($0)) } ?? .null }
    public init(_ v: Int64?) { self = v.map { .int($0) } ?? .null }
    public init(_ v: Bool) { self = .int(v ? 1 : 0) }
}

/// One result row. PostgreSQL returns text for every column (text protocol),
/// so the accessors convert rather than insist on a storage type.
public struct Row: Sendable {
    public let values: [DBValue]

    public init(_ values: [DBValue]) { self.values = values }

    public func isNull(_ i: Int) -> Bool { values[i] == .null }

    public func int64(_ i: Int) -> Int64? {
        switch values[i] {
        case .int(let v): return v
        case .double(let d): return Int64(exactly: d.rounded(.towardZero))
        case .text(let s): return Int64(s)
        case .null: return nil
        }
    }

    public func int(_ i: Int) -> Int? { int64(i).map { Int($0) } }

    public func string(_ i: Int) -> String? {
        switch values[i] {
        case .text(let s): return s
        case .int(let v): return String(v)
        case .double(let d): return String(d)
        case .null: return nil
        }
    }

    /// 0/1 integers on both engines; PostgreSQL may also say t/f.
    public func bool(_ i: Int) -> Bool {
        switch values[i] {
        case .int(let v): return v != 0
        case .text(let s): return s == "1" || s == "t" || s == "true"
        default: return false
        }
    }
}

public enum DatabaseEngine: String, Sendable {
    case sqlite, postgres
}

/// Why a database call failed, in terms a handler can answer with.
public enum DatabaseError: Error, CustomStringConvertible, Equatable {
    /// Cannot connect, connection lost, or waiting in reconnect backoff.
    case unavailable(String)
    /// The statement ran past `CC_DB_TIMEOUT` and was cancelled.
    case timeout
    /// A UNIQUE (or primary key) constraint rejected the write.
    case uniqueViolation(String)
    /// Any other constraint (CHECK, NOT NULL, foreign key).
    case constraint(String)
    /// A programming error: bad SQL, wrong parameter count.
    case failed(String)

    public var description: String {
        switch self {
        case .unavailable(let m): return "database unavailable: \(m)"
        case .timeout: return "statement timeout"
        case .uniqueViolation(let m): return "unique violation: \(m)"
        case .constraint(let m): return "constraint violation: \(m)"
        case .failed(let m): return "database error: \(m)"
        }
    }

    /// What the client sees. Unavailable and timeout are 503 so the caller
    /// knows to retry; the rest are logged 500s unless a handler maps them.
    public var apiError: APIError? {
        switch self {
        case .unavailable: return APIError(503, "database_unavailable", "The database is unavailable; retry shortly",
                                           headers: ["Retry-After": "1"])
        case .timeout: return APIError(503, "database_timeout", "The database did not answer in time",
                                       headers: ["Retry-After": "1"])
        default: return nil
        }
    }
}

/// One connection to one database. Not thread-safe: a worker owns one and
/// uses it from its single request loop.
///
/// SQL is written once with `?` placeholders; the PostgreSQL implementation
/// rewrites them to `$n`. Every value goes through `params`, never into SQL.
public protocol Database: AnyObject {
    var engine: DatabaseEngine { get }

    /// Runs a statement and returns its rows (possibly none).
    @discardableResult
    func query(_ sql: String, _ params: [DBValue]) throws -> [Row]

    /// `query`, planned for these values on every call. PostgreSQL otherwise
    /// may switch a prepared statement to a generic plan that cannot see
    /// the values; use it where the best plan depends on them (how many rows
    /// a search pattern matches) and planning is cheap next to a bad plan.
    /// SQLite's planner does not look at values, so there it is `query`.
    func queryPlannedPerCall(_ sql: String, _ params: [DBValue]) throws -> [Row]

    /// What a repository learned about this connection's schema (an index
    /// that may be missing), asked once per connection. A reconnect starts
    /// empty, so a schema changed by hand is noticed then.
    var schemaFacts: [String: Bool] { get set }

    /// Runs a statement and returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ params: [DBValue]) throws -> Int

    /// BEGIN (IMMEDIATE on SQLite, so writers queue on the lock up front
    /// instead of failing on upgrade) ... COMMIT, or ROLLBACK on throw.
    func transaction<T>(_ body: () throws -> T) throws -> T

    /// A cheap round trip that proves the connection works now.
    func ping() throws

    /// The test-only slow query: `pg_sleep` on PostgreSQL, a held write
    /// lock on SQLite. Bounded by the statement timeout like any query.
    func sleep(milliseconds ms: Int) throws

    func close()
}

extension Database {
    @discardableResult
    public func query(_ sql: String, _ params: DBValue...) throws -> [Row] { try query(sql, params) }

    @discardableResult
    public func execute(_ sql: String, _ params: DBValue...) throws -> Int { try execute(sql, params) }

    public func queryOne(_ sql: String, _ params: [DBValue]) throws -> Row? { try query(sql, params).first }
}

/// Rewrites `?` to `$1, $2, ...` outside quoted strings and identifiers.
public func numberedPlaceholders(_ sql: String) -> String {
    var out = ""
    out.reserveCapacity(sql.utf8.count + 8)
    var n = 0
    var quote: Character?
    for c in sql {
        if let q = quote {
            if c == q { quote = nil }
            out.append(c)
        } else if c == "'" || c == "\"" {
            quote = c
            out.append(c)
        } else if c == "?" {
            n += 1
            out += "$\(n)"
        } else {
            out.append(c)
        }
    }
    return out
}
