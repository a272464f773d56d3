import Foundation

/// A row of `services`: the definition and when it was written.
public struct StoredService: Sendable, Equatable {
    public var definition: ServiceDefinition
    /// Unix milliseconds.
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// One element of `GET /api/services`.
public struct ServiceSummary: Sendable, Equatable {
    public var name: String
    public var description: String
    public var port: Int?
    public var autostart: Bool
    public var dependsOn: [String]
    public var status: ServicePolicy.Status
    public var pid: Int32?
    /// Unix milliseconds: the current run's start, the last run's end.
    public var startedAt: Int64?
    public var lastExitAt: Int64?
}

/// The service registry, by bound parameters only. Writes go inside the
/// caller's transaction together with the graph check and the audit event.
public struct ServiceRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    static let columns = "definition, created_at, updated_at"

    static func decode(_ r: Row) throws -> StoredService {
        guard let text = r.string(0),
              let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let def = try? ServiceDefinition.parse(obj) else {
            throw DatabaseError.failed("malformed services row")
        }
        return StoredService(definition: def, createdAt: r.int64(1) ?? 0, updatedAt: r.int64(2) ?? 0)
    }

    public func find(_ name: String) throws -> StoredService? {
        try db.queryOne("SELECT \(Self.columns) FROM services WHERE name = ?", [.text(name)]).map(Self.decode)
    }

    /// One page in name order.
    public func list(limit: Int, offset: Int) throws -> [StoredService] {
        try db.query("SELECT \(Self.columns) FROM services ORDER BY name LIMIT ? OFFSET ?",
                     [.int(Int64(limit)), .int(Int64(offset))]).map(Self.decode)
    }

    /// The copies of what the list shows: description, port, autostart, depends_on.
    static func listColumns(_ def: ServiceDefinition) -> [DBValue] {
        [.text(def.description), DBValue(def.port), DBValue(def.autostart), .text(def.dependsOn.joined(separator: ","))]
    }

    /// One page of the list in name order, with the supervisor's last record,
    /// in one query and without parsing a definition.
    public func summaries(limit: Int, offset: Int) throws -> [ServiceSummary] {
        try db.query("""
            SELECT s.name, s.description, s.port, s.autostart, s.depends_on, st.status, st.pid, st.started_at, st.last_exit_at
            FROM services s LEFT JOIN service_state st ON st.name = s.name
            ORDER BY s.name LIMIT ? OFFSET ?
            """, [.int(Int64(limit)), .int(Int64(offset))]).map { r in
            guard let name = r.string(0) else { throw DatabaseError.failed("malformed services row") }
            return ServiceSummary(name: name, description: r.string(1) ?? "", port: r.int(2), autostart: r.bool(3),
                                  dependsOn: (r.string(4) ?? "").split(separator: ",").map(String.init),
                                  status: r.string(5).flatMap(ServicePolicy.Status.init) ?? .stopped,
                                  pid: r.int64(6).map { Int32($0) }, startedAt: r.int64(7), lastExitAt: r.int64(8))
        }
    }

    /// Changes whenever a service is added, changed or removed (the count
    /// and the sum of `updated_at`, which every write moves forward).
    public func fingerprint() throws -> String {
        let r = try db.queryOne("SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM services", [])
        return "\(r?.int64(0) ?? 0)/\(r?.int64(1) ?? 0)"
    }

    public func count() throws -> Int {
        try db.queryOne("SELECT COUNT(*) FROM services", [])?.int(0) ?? 0
    }

    /// Throws `DatabaseError.uniqueViolation` when the name is taken.
    public func insert(_ def: ServiceDefinition, now: Int64 = Clock.wallMillis()) throws {
        try db.execute("""
            INSERT INTO services (name, definition, description, port, autostart, depends_on, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(def.name), .text(def.storedJSON)] + Self.listColumns(def) + [.int(now), .int(now)])
    }

    /// False when no such service exists.
    @discardableResult
    public func update(_ def: ServiceDefinition, now: Int64 = Clock.wallMillis()) throws -> Bool {
        // updated_at always moves forward, even within one millisecond, so `fingerprint` sees every change.
        try db.execute("""
            UPDATE services SET definition = ?, description = ?, port = ?, autostart = ?, depends_on = ?,
                updated_at = CASE WHEN updated_at >= ? THEN updated_at + 1 ELSE ? END
            WHERE name = ?
            """, [.text(def.storedJSON)] + Self.listColumns(def) + [.int(now), .int(now), .text(def.name)]) > 0
    }

    @discardableResult
    public func delete(_ name: String) throws -> Bool {
        try db.execute("DELETE FROM services WHERE name = ?", [.text(name)]) > 0
    }

    /// Every service's `depends_on`, for `ServiceGraph`.
    public func dependencies() throws -> [String: [String]] {
        var graph: [String: [String]] = [:]
        for r in try db.query("SELECT \(Self.columns) FROM services", []) {
            let s = try Self.decode(r)
            graph[s.definition.name] = s.definition.dependsOn
        }
        return graph
    }

    /// The stored definition text by name, to tell an unchanged import from a change.
    public func storedJSON(_ name: String) throws -> String? {
        try db.queryOne("SELECT definition FROM services WHERE name = ?", [.text(name)])?.string(0)
    }

    /// Serialises registry writers on PostgreSQL, so two concurrent writes
    /// cannot each pass the graph check and together make a cycle; on SQLite
    /// the write transaction's BEGIN IMMEDIATE already does. Call first in
    /// the transaction.
    public func lockForWrite() throws {
        if db.engine == .postgres {
            try db.query("SELECT pg_advisory_xact_lock(?)", [.int(Self.advisoryKey)])
        }
    }

    /// Arbitrary constant for `pg_advisory_xact_lock`: "cc-svc".
    static let advisoryKey: Int64 = 0x63632D737663

    /// Fails unless the registry's `depends_on` graph is valid; run after
    /// the write, inside the same transaction, so a refused write rolls back.
    public func checkGraph() throws {
        if let why = ServiceGraph.problem(try dependencies()) {
            throw ServiceDefinition.Invalid(field: "depends_on", reason: why)
        }
    }
}
