/// The `jti` deny-list. Every worker reads it on every authenticated
/// request, so a revocation applies at once everywhere.
public struct TokenRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    /// Idempotent: revoking twice is not an error.
    public func revoke(jti: String, userID: Int64?, expiresAt: Int64) throws {
        try db.execute("""
            INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES (?, ?, ?)
            ON CONFLICT (jti) DO NOTHING
            """, [.text(jti), DBValue(userID), .int(expiresAt)])
    }

    public func isRevoked(jti: String) throws -> Bool {
        try db.queryOne("SELECT 1 FROM revoked_tokens WHERE jti = ?", [.text(jti)]) != nil
    }

    /// A token past its expiry is refused anyway, so its entry can go.
    @discardableResult
    public func prune(now: Int64 = Clock.wallMillis()) throws -> Int {
        try db.execute("DELETE FROM revoked_tokens WHERE expires_at < ?", [.int(now)])
    }

    public func activeCount(now: Int64 = Clock.wallMillis()) throws -> Int {
        try db.queryOne("SELECT COUNT(*) FROM revoked_tokens WHERE expires_at >= ?", [.int(now)])?.int(0) ?? 0
    }
}
