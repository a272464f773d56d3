/// A row of `service_state`: what the supervisor last recorded. Times are
/// Unix milliseconds.
public struct ServiceStateRow: Sendable, Equatable {
    public var status: ServicePolicy.Status
    public var pid: Int32?
    public var startTicks: UInt64?
    public var startedAt: Int64?
    public var restarts: Int
    public var lastExitCode: Int32?
    public var lastExitSignal: Int32?
    public var lastExitAt: Int64?
    public var nextRetryAt: Int64?
    public var message: String?
    public var updatedAt: Int64
}

/// `service_state`, written by the supervisor only, read by workers.
public struct ServiceStateRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    static let columns = "status, pid, start_ticks, started_at, restarts, last_exit_code, last_exit_signal, last_exit_at, next_retry_at, message, updated_at"

    static func decode(_ r: Row, from i: Int = 0) throws -> ServiceStateRow {
        guard let raw = r.string(i), let status = ServicePolicy.Status(rawValue: raw) else {
            throw DatabaseError.failed("malformed service_state row")
        }
        return ServiceStateRow(status: status, pid: r.int64(i + 1).map { Int32($0) }, startTicks: r.int64(i + 2).map { UInt64($0) },
                               startedAt: r.int64(i + 3), restarts: r.int(i + 4) ?? 0,
                               lastExitCode: r.int64(i + 5).map { Int32($0) }, lastExitSignal: r.int64(i + 6).map { Int32($0) },
                               lastExitAt: r.int64(i + 7), nextRetryAt: r.int64(i + 8), message: r.string(i + 9),
                               updatedAt: r.int64(i + 10) ?? 0)
    }

    public func find(_ name: String) throws -> ServiceStateRow? {
        try db.queryOne("SELECT \(Self.columns) FROM service_state WHERE name = ?", [.text(name)]).map { try Self.decode($0) }
    }

    /// Every recorded service by name.
    public func all() throws -> [String: ServiceStateRow] {
        var out: [String: ServiceStateRow] = [:]
        for r in try db.query("SELECT name, \(Self.columns) FROM service_state", []) {
            if let n = r.string(0) { out[n] = try Self.decode(r, from: 1) }
        }
        return out
    }

    /// Records the supervisor's view of `name` (one statement, atomic).
    public func save(_ name: String, _ rt: ServicePolicy.Runtime, message: String?, now: Int64 = Clock.wallMillis()) throws {
        func ms(_ s: Double?) -> DBValue { s.map { .int(Int64(($0 * 1000).rounded())) } ?? .null }
        try db.execute("""
            INSERT INTO service_state (name, \(Self.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET status = excluded.status, pid = excluded.pid,
                start_ticks = excluded.start_ticks, started_at = excluded.started_at, restarts = excluded.restarts,
                last_exit_code = excluded.last_exit_code, last_exit_signal = excluded.last_exit_signal,
                last_exit_at = excluded.last_exit_at, next_retry_at = excluded.next_retry_at,
                message = excluded.message, updated_at = excluded.updated_at
            """, [.text(name), .text(rt.status.rawValue), DBValue(rt.pid.map { Int64($0) }),
                  DBValue(rt.startTicks.map { Int64($0) }), ms(rt.startedAt), .int(Int64(rt.restarts)),
                  DBValue(rt.lastExit?.code.map { Int64($0) }), DBValue(rt.lastExit?.signal.map { Int64($0) }),
                  ms(rt.lastExitAt), ms(rt.nextRetryAt), DBValue(message), .int(now)])
    }

    public func delete(_ name: String) throws {
        try db.execute("DELETE FROM service_state WHERE name = ?", [.text(name)])
    }
}

/// A row of `service_actions`.
public struct ServiceAction: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case start, stop, restart }
    public enum Status: String, Sendable { case pending, running, done, failed, superseded }
    public var id: Int64
    public var service: String
    public var kind: Kind
    public var status: Status
    public var actor: String
    public var message: String?
    public var pid: Int32?
    public var createdAt: Int64
    public var finishedAt: Int64?

    public var isFinished: Bool { status == .done || status == .failed || status == .superseded }
}

/// `service_actions`: queued by workers, taken and finished by the supervisor.
public struct ServiceActionRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    static let columns = "id, service, action, status, actor, message, pid, created_at, finished_at"

    static func decode(_ r: Row) throws -> ServiceAction {
        guard let id = r.int64(0), let service = r.string(1), let kind = r.string(2).flatMap(ServiceAction.Kind.init),
              let status = r.string(3).flatMap(ServiceAction.Status.init) else {
            throw DatabaseError.failed("malformed service_actions row")
        }
        return ServiceAction(id: id, service: service, kind: kind, status: status, actor: r.string(4) ?? "",
                             message: r.string(5), pid: r.int64(6).map { Int32($0) }, createdAt: r.int64(7) ?? 0,
                             finishedAt: r.int64(8))
    }

    /// Queues an action and returns its id.
    public func enqueue(service: String, kind: ServiceAction.Kind, actor: String, now: Int64 = Clock.wallMillis()) throws -> Int64 {
        guard let id = try db.queryOne("""
            INSERT INTO service_actions (service, action, status, actor, created_at) VALUES (?, ?, 'pending', ?, ?) RETURNING id
            """, [.text(service), .text(kind.rawValue), .text(actor), .int(now)])?.int64(0) else {
            throw DatabaseError.failed("INSERT RETURNING gave no id")
        }
        return id
    }

    public func find(id: Int64, service: String) throws -> ServiceAction? {
        try db.queryOne("SELECT \(Self.columns) FROM service_actions WHERE id = ? AND service = ?",
                        [.int(id), .text(service)]).map(Self.decode)
    }

    /// Pending actions in id order.
    public func pending() throws -> [ServiceAction] {
        try db.query("SELECT \(Self.columns) FROM service_actions WHERE status = 'pending' ORDER BY id", []).map(Self.decode)
    }

    /// Actions the supervisor took but has not finished (left by a supervisor that died).
    public func running() throws -> [ServiceAction] {
        try db.query("SELECT \(Self.columns) FROM service_actions WHERE status = 'running' ORDER BY id", []).map(Self.decode)
    }

    public func mark(_ id: Int64, _ status: ServiceAction.Status, message: String? = nil, pid: Int32? = nil,
                     now: Int64 = Clock.wallMillis()) throws {
        let finished: DBValue = status == .pending || status == .running ? .null : .int(now)
        try db.execute("UPDATE service_actions SET status = ?, message = COALESCE(?, message), pid = COALESCE(?, pid), finished_at = ? WHERE id = ?",
                       [.text(status.rawValue), DBValue(message), DBValue(pid.map { Int64($0) }), finished, .int(id)])
    }
}
