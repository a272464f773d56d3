/// Failed-login throttling per client address and per (username, address)
/// pair, as OWASP's Authentication Cheat Sheet recommends, kept in the
/// database so that every worker (and both pools) sees the same counts.
///
/// Within a 15-minute window, the 5th failure for a pair (20th for an
/// address) locks that key for 30 s, doubling per further failure up to
/// 15 minutes. There is no per-username lock: failures from other
/// addresses, however many, never stop the owner logging in from an
/// address that has not failed. A success clears the pair's counter but
/// not the address's, so one valid account cannot launder a guessing campaign.
public struct LoginThrottle {
    public struct Policy: Sendable {
        public var threshold: Int
        public var window: Int64 = 15 * 60_000
        public var baseLock: Int64 = 30_000
        public var maxLock: Int64 = 15 * 60_000
    }

    public static let perPair = Policy(threshold: 5)
    public static let perAddress = Policy(threshold: 20)

    let db: Database

    public init(_ db: Database) { self.db = db }

    /// `name` folded (`Username.fold`). An address never holds a space, so
    /// the first space ends it and no two pairs share a key.
    public static func pairKey(_ name: String, _ addr: String) -> String { "pair:" + addr + " " + name }
    public static func addressKey(_ addr: String) -> String { "addr:" + addr }

    /// The latest `locked_until` (ms) among `keys` still in the future.
    public func lockedUntil(keys: [String], now: Int64 = Clock.wallMillis()) throws -> Int64? {
        var latest: Int64?
        for k in keys {
            if let until = try db.queryOne("SELECT locked_until FROM login_failures WHERE key = ?", [.text(k)])?.int64(0),
               until > now {
                latest = max(latest ?? 0, until)
            }
        }
        return latest
    }

    public func recordFailure(key: String, policy: Policy, now: Int64 = Clock.wallMillis()) throws {
        let rows = try db.query("""
            INSERT INTO login_failures (key, count, window_start, locked_until) VALUES (?, 1, ?, 0)
            ON CONFLICT (key) DO UPDATE SET
                count = CASE WHEN login_failures.window_start < ? AND login_failures.locked_until < excluded.window_start
                             THEN 1 ELSE login_failures.count + 1 END,
                window_start = CASE WHEN login_failures.window_start < ? AND login_failures.locked_until < excluded.window_start
                             THEN excluded.window_start ELSE login_failures.window_start END
            RETURNING count
            """, [.text(key), .int(now), .int(now - policy.window), .int(now - policy.window)])
        let count = rows.first?.int(0) ?? 1
        if count >= policy.threshold {
            let doublings = min(count - policy.threshold, 20)
            let lock = min(policy.maxLock, policy.baseLock << Int64(doublings))
            try db.execute("UPDATE login_failures SET locked_until = ? WHERE key = ?", [.int(now + lock), .text(key)])
        }
    }

    public func clear(key: String) throws {
        try db.execute("DELETE FROM login_failures WHERE key = ?", [.text(key)])
    }

    public func lockedCount(now: Int64 = Clock.wallMillis()) throws -> Int {
        try db.queryOne("SELECT COUNT(*) FROM login_failures WHERE locked_until > ?", [.int(now)])?.int(0) ?? 0
    }

    /// Old windows carry no information once they expired and are unlocked.
    public func prune(now: Int64 = Clock.wallMillis()) throws {
        try db.execute("DELETE FROM login_failures WHERE window_start < ? AND locked_until < ?",
                       [.int(now - Self.perPair.window), .int(now)])
    }
}
