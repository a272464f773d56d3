/// A row of `process_signals`. Times are Unix milliseconds.
public struct ProcessSignalRequest: Sendable, Equatable {
    public var id: Int64
    public var pid: Int32
    public var signal: ProcessSignal.Name
    /// The listing's `start_time` the request named, if any.
    public var startMillis: Int64?
    public var status: ProcessSignal.Outcome
    public var actor: String
    public var message: String?
    public var createdAt: Int64
}

/// `process_signals`: queued by workers, answered by the supervisor.
public struct ProcessSignalRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    static let columns = "id, pid, signal, start_time_ms, status, actor, message, created_at"

    static func decode(_ r: Row) throws -> ProcessSignalRequest {
        guard let id = r.int64(0), let pid = r.int64(1), let signal = r.string(2).flatMap(ProcessSignal.Name.init),
              let status = r.string(4).flatMap(ProcessSignal.Outcome.init) else {
            throw DatabaseError.failed("malformed process_signals row")
        }
        return ProcessSignalRequest(id: id, pid: Int32(truncatingIfNeeded: pid), signal: signal, startMillis: r.int64(3), status: status,
                                    actor: r.string(5) ?? "", message: r.string(6), createdAt: r.int64(7) ?? 0)
    }

    public func enqueue(pid: Int32, signal: ProcessSignal.Name, startMillis: Int64?, actor: String,
                        now: Int64 = Clock.wallMillis()) throws -> Int64 {
        guard let id = try db.queryOne("""
            INSERT INTO process_signals (pid, signal, start_time_ms, status, actor, created_at)
            VALUES (?, ?, ?, 'pending', ?, ?) RETURNING id
            """, [.int(Int64(pid)), .text(signal.rawValue), DBValue(startMillis), .text(actor), .int(now)])?.int64(0) else {
            throw DatabaseError.failed("INSERT RETURNING gave no id")
        }
        return id
    }

    public func find(_ id: Int64) throws -> ProcessSignalRequest? {
        try db.queryOne("SELECT \(Self.columns) FROM process_signals WHERE id = ?", [.int(id)]).map(Self.decode)
    }

    /// Pending requests in id order.
    public func pending() throws -> [ProcessSignalRequest] {
        try db.query("SELECT \(Self.columns) FROM process_signals WHERE status = 'pending' ORDER BY id", []).map(Self.decode)
    }

    public func answer(_ id: Int64, _ outcome: ProcessSignal.Outcome, message: String, now: Int64 = Clock.wallMillis()) throws {
        try db.execute("UPDATE process_signals SET status = ?, message = ?, finished_at = ? WHERE id = ?",
                       [.text(outcome.rawValue), .text(message), .int(now), .int(id)])
    }
}
