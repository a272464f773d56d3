/// A row of `users`, without anything a client may not see (the hash is
/// kept for verification only and never written to a response).
public struct User: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var passwordHash: String
    public var role: Role
    public var email: String?
    public var fullName: String?
    public var isActive: Bool
    public var tokenVersion: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastLogin: Int64?
    /// Set only on the generated first admin: until it changes its password,
    /// `Auth.authenticate` lets it reach only the self-service routes.
    public var mustChangePassword: Bool = false

    public func write(_ w: inout JSONWriter) {
        w.beginObject()
        w.field("id", Int(id))
        w.field("username", username)
        w.field("email", email)
        w.field("full_name", fullName)
        w.field("role", role.rawValue)
        w.field("is_active", isActive)
        w.field("created_at", timestamp: Double(createdAt) / 1000)
        w.field("updated_at", timestamp: Double(updatedAt) / 1000)
        w.field("last_login", lastLogin.map { Clock.iso8601(Double($0) / 1000) })
        w.field("must_change_password", mustChangePassword)
        w.endObject()
    }
}

/// Users, by bound parameters only.
public struct UserRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    static let columns = "id, username, password_hash, role, email, full_name, is_active, token_version, created_at, updated_at, last_login, must_change_password"
    /// How many columns `columns` names: a query may append its own after them.
    static let columnCount = 12

    static func decode(_ r: Row) throws -> User {
        guard let id = r.int64(0), let name = r.string(1), let hash = r.string(2),
              let roleName = r.string(3), let role = Role(parsing: roleName) else {
            throw DatabaseError.failed("malformed users row")
        }
        return User(id: id, username: name, passwordHash: hash, role: role, email: r.string(4), fullName: r.string(5),
                    isActive: r.bool(6), tokenVersion: r.int(7) ?? 0, createdAt: r.int64(8) ?? 0,
                    updatedAt: r.int64(9) ?? 0, lastLogin: r.int64(10), mustChangePassword: r.bool(11))
    }

    public func find(id: Int64) throws -> User? {
        try db.queryOne("SELECT \(Self.columns) FROM users WHERE id = ?", [.int(id)]).map(Self.decode)
    }

    /// `username` as stored: already folded (`Username.fold`).
    public func find(username: String) throws -> User? {
        try db.queryOne("SELECT \(Self.columns) FROM users WHERE username = ?", [.text(username)]).map(Self.decode)
    }

    public func list(limit: Int, offset: Int) throws -> [User] {
        try db.query("SELECT \(Self.columns) FROM users ORDER BY id LIMIT ? OFFSET ?",
                     [.int(Int64(limit)), .int(Int64(offset))]).map(Self.decode)
    }

    public func count() throws -> Int {
        try db.queryOne("SELECT COUNT(*) FROM users", [])?.int(0) ?? 0
    }

    /// Active admins, counted so that the answer stays true until the
    /// caller's transaction ends: on PostgreSQL the rows are locked
    /// (`FOR UPDATE`), so a concurrent demote, disable or delete of an admin
    /// waits and then sees this one's result; on SQLite the transaction's
    /// BEGIN IMMEDIATE already holds the only write lock. Call it inside the
    /// transaction that makes the change it guards.
    public func lockActiveAdmins() throws -> Int {
        let lock = db.engine == .postgres ? " FOR UPDATE" : ""
        return try db.query("SELECT id FROM users WHERE role = 'admin' AND is_active = 1\(lock)", []).count
    }

    /// Throws `uniqueViolation` when the username is taken.
    public func create(username: String, passwordHash: String, role: Role, email: String?, fullName: String?,
                       mustChangePassword: Bool = false, now: Int64 = Clock.wallMillis()) throws -> User {
        let rows = try db.query("""
            INSERT INTO users (username, password_hash, role, email, full_name, is_active, token_version, created_at,
                               updated_at, must_change_password)
            VALUES (?, ?, ?, ?, ?, 1, 0, ?, ?, ?) RETURNING \(Self.columns)
            """, [.text(username), .text(passwordHash), .text(role.rawValue), DBValue(email), DBValue(fullName),
                  .int(now), .int(now), DBValue(mustChangePassword)])
        guard let row = rows.first else { throw DatabaseError.failed("INSERT returned no row") }
        return try Self.decode(row)
    }

    /// Writes every mutable column of `user` (the caller read and changed it
    /// within the same transaction).
    public func save(_ user: User, now: Int64 = Clock.wallMillis()) throws {
        try db.execute("""
            UPDATE users SET password_hash = ?, role = ?, email = ?, full_name = ?, is_active = ?,
                token_version = ?, must_change_password = ?, updated_at = ? WHERE id = ?
            """, [.text(user.passwordHash), .text(user.role.rawValue), DBValue(user.email), DBValue(user.fullName),
                  DBValue(user.isActive), .int(Int64(user.tokenVersion)), DBValue(user.mustChangePassword), .int(now),
                  .int(user.id)])
    }

    public func recordLogin(id: Int64, now: Int64 = Clock.wallMillis()) throws {
        try db.execute("UPDATE users SET last_login = ? WHERE id = ?", [.int(now), .int(id)])
    }

    @discardableResult
    public func delete(id: Int64) throws -> Bool {
        try db.execute("DELETE FROM users WHERE id = ?", [.int(id)]) > 0
    }

    public func countsByRole() throws -> [(role: String, total: Int, active: Int)] {
        try db.query("SELECT role, COUNT(*), SUM(is_active) FROM users GROUP BY role ORDER BY role", []).map {
            ($0.string(0) ?? "", $0.int(1) ?? 0, $0.int(2) ?? 0)
        }
    }
}
