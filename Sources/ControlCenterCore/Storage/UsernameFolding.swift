/// Migration 4: every stored username rewritten to its `Username.fold`, so
/// that login (which folds what it is given) finds accounts created before
/// folding existed. Passwords are untouched.
///
/// Two accounts whose names fold to one (`Admin` and `admin`) cannot both
/// keep their names: the migration stops, naming them, and changes nothing
/// (it runs in the migration transaction). An operator then renames or
/// deletes one with the previous binary or SQL and starts again.
public enum UsernameFolding {
    public struct Collision: Error, CustomStringConvertible {
        /// Each group: the folded name and the accounts (id, stored name) that fold to it.
        public let groups: [(folded: String, accounts: [(id: Int64, username: String)])]

        public var description: String {
            let parts = groups.map { g in
                g.accounts.map { "'\($0.username)' (id \($0.id))" }.joined(separator: ", ") + " all fold to '\(g.folded)'"
            }
            return "cannot fold usernames: " + parts.joined(separator: "; ")
                + ". Rename or delete all but one of each group (UPDATE users SET username = ... WHERE id = ...), then migrate again."
        }
    }

    /// Pure part: the renames to make, or the collisions that forbid them.
    static func plan(_ users: [(id: Int64, username: String)]) -> Result<[(id: Int64, to: String)], Collision> {
        var byFold: [String: [(id: Int64, username: String)]] = [:]
        for u in users { byFold[Username.fold(u.username), default: []].append(u) }
        let clashes = byFold.filter { $0.value.count > 1 }.sorted { $0.key < $1.key }
            .map { (folded: $0.key, accounts: $0.value.sorted { $0.id < $1.id }) }
        guard clashes.isEmpty else { return .failure(Collision(groups: clashes)) }
        return .success(users.compactMap { u in
            let f = Username.fold(u.username)
            return f == u.username ? nil : (u.id, f)
        }.sorted { $0.id < $1.id })
    }

    @Sendable static func migrate(_ db: Database) throws {
        let users = try db.query("SELECT id, username FROM users ORDER BY id", []).compactMap { r -> (id: Int64, username: String)? in
            guard let id = r.int64(0), let name = r.string(1) else { return nil }
            return (id, name)
        }
        for rename in try plan(users).get() {
            try db.execute("UPDATE users SET username = ? WHERE id = ?", [.text(rename.to), .int(rename.id)])
        }
    }
}
