import Crypto
import Foundation

/// Single-use tickets for subscribing to the live channels without a cookie
/// or header (`POST /api/stream/ticket`, then `?ticket=` on the subscribe
/// URL): 32 random bytes as 64 hex digits, valid `lifetime` seconds, and
/// good for one handshake only. Only their SHA-256 is stored, so the table
/// holds nothing a reader could subscribe with. A ticket never authenticates
/// an API request (Auth.authenticate does not know it).
public struct StreamTicketRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    /// Seconds a ticket is valid.
    public static let lifetime = 60

    /// A new ticket for `userID`; expired ones are pruned on the way.
    public func issue(userID: Int64, now: Int64 = Clock.wallMillis()) throws -> (ticket: String, expiresAt: Int64) {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let ticket = bytes.map { String(format: "%02x", $0) }.joined()
        let expiresAt = now + Int64(Self.lifetime) * 1000
        try db.execute("DELETE FROM stream_tickets WHERE expires_at < ?", [.int(now)])
        try db.execute("INSERT INTO stream_tickets (ticket_hash, user_id, expires_at) VALUES (?, ?, ?)",
                       [.text(Self.hash(ticket)), .int(userID), .int(expiresAt)])
        return (ticket, expiresAt)
    }

    /// The ticket's user if it is valid now; the ticket is gone afterwards
    /// either way (one DELETE: two handshakes racing with one ticket cannot
    /// both win).
    public func redeem(_ ticket: String, now: Int64 = Clock.wallMillis()) throws -> Int64? {
        guard ticket.utf8.count == 64, ticket.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            return nil
        }
        let rows = try db.query("DELETE FROM stream_tickets WHERE ticket_hash = ? RETURNING user_id, expires_at",
                                [.text(Self.hash(ticket))])
        guard let row = rows.first, let user = row.int64(0), let expires = row.int64(1), expires >= now else { return nil }
        return user
    }

    static func hash(_ ticket: String) -> String {
        SHA256.hash(data: Array(ticket.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
