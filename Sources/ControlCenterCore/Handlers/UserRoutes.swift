/// User management: admin only. Every change and its audit event commit in
/// one transaction.
enum UserRoutes {
    static func register(_ r: inout Router) {
        r.post("/api/auth/register", create)
        r.get("/api/auth/users", list)
        r.get("/api/auth/users/{id}", get)
        r.put("/api/auth/users/{id}", update)
        r.delete("/api/auth/users/{id}", delete)
        r.get("/api/auth/stats", stats)
    }

    /// The last-admin rule is checked inside the transaction that writes,
    /// after `lockActiveAdmins`, so two admins removing each other at once
    /// cannot both pass it.
    static let lastAdmin = APIError(409, "last_admin", "The last active admin cannot be deleted, demoted or disabled")

    static func userID(_ req: Request) throws -> Int64 {
        guard let id = Int64(req.parameter("id")), id > 0 else {
            throw APIError.badRequest("User id must be a positive whole number", code: "invalid_id")
        }
        return id
    }

    static func create(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let admin = try Auth.requireRole(.admin, req, ctx)
        let body = try JSONInput(req)
        try body.allowOnly(["username", "password", "role", "email", "full_name"])
        let username = try UserFields.username(body.requiredString("username", maxLength: Username.maxLength))
        let password = try UserFields.password("password", body.requiredString("password", maxLength: PasswordPolicy.maxLength))
        let role = try UserFields.role(body.string("role", maxLength: 32)) ?? .viewer
        let email = try UserFields.email(body.string("email", maxLength: 254))
        let fullName = try body.string("full_name", maxLength: 200)
        let hash = try PasswordHasher.hash(password)
        let user: User
        do {
            user = try Store.write(ctx) { db in
                let u = try UserRepository(db).create(username: username, passwordHash: hash, role: role,
                                                      email: email, fullName: fullName)
                try Audit.record(db, actor: admin.user.username, action: "user.create", target: username,
                                 message: "created user with role \(role.rawValue)")
                return u
            }
        } catch DatabaseError.uniqueViolation {
            throw APIError(409, "username_taken", "A user with this username already exists")
        }
        return .json(201) { user.write(&$0) }
    }

    static func list(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.admin, req, ctx)
        let limit = try intParam(req, "limit", default: 100, range: 1...1000)
        let offset = try intParam(req, "offset", default: 0, range: 0...Int(Int32.max))
        let (users, total) = try Store.read(ctx) { db in
            (try UserRepository(db).list(limit: limit, offset: offset), try UserRepository(db).count())
        }
        return .json { w in
            w.beginObject()
            w.beginArray("users")
            for u in users { u.write(&w) }
            w.endArray()
            w.field("total", total)
            w.field("limit", limit)
            w.field("offset", offset)
            w.endObject()
        }
    }

    static func intParam(_ req: Request, _ name: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = req.query[name] else { return d }
        guard let v = Int(raw), range.contains(v) else {
            throw APIError.badRequest("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    static func get(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.admin, req, ctx)
        let id = try userID(req)
        guard let user = try Store.read(ctx, { try UserRepository($0).find(id: id) }) else {
            throw APIError.notFound("No user \(id)")
        }
        return .json { user.write(&$0) }
    }

    static func update(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let admin = try Auth.requireRole(.admin, req, ctx)
        let id = try userID(req)
        let body = try JSONInput(req)
        try body.allowOnly(["email", "full_name", "role", "is_active", "password"])
        let email = try UserFields.email(body.string("email", maxLength: 254))
        let fullName = try body.string("full_name", maxLength: 200)
        let role = try UserFields.role(body.string("role", maxLength: 32))
        let active = try body.bool("is_active")
        let hash = try body.string("password", maxLength: PasswordPolicy.maxLength)
            .map { try PasswordHasher.hash(UserFields.password("password", $0)) }
        let user = try Store.write(ctx) { db -> User in
            let users = UserRepository(db)
            guard var u = try users.find(id: id) else { throw APIError.notFound("No user \(id)") }
            let wasAdmin = u.role == .admin && u.isActive
            if body.has("email") { u.email = email }
            if body.has("full_name") { u.fullName = fullName }
            if let role { u.role = role }
            if let active {
                // Disabling revokes every token the user holds, so re-enabling
                // it later does not bring old sessions back.
                if u.isActive && !active { u.tokenVersion += 1 }
                u.isActive = active
            }
            if let hash {
                u.passwordHash = hash
                u.tokenVersion += 1
            }
            if wasAdmin && !(u.role == .admin && u.isActive), try users.lockActiveAdmins() <= 1 {
                throw lastAdmin
            }
            try users.save(u)
            try Audit.record(db, actor: admin.user.username, action: "user.update", target: u.username,
                             message: "updated user \(u.id)", data: AuthRoutes.fieldList(body.object.keys))
            return try users.find(id: id) ?? u
        }
        return .json { user.write(&$0) }
    }

    static func delete(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let admin = try Auth.requireRole(.admin, req, ctx)
        let id = try userID(req)
        guard id != admin.user.id else {
            throw APIError(409, "cannot_delete_self", "An admin cannot delete its own account")
        }
        try Store.write(ctx) { db in
            let users = UserRepository(db)
            guard let u = try users.find(id: id) else { throw APIError.notFound("No user \(id)") }
            if u.role == .admin && u.isActive, try users.lockActiveAdmins() <= 1 { throw lastAdmin }
            try users.delete(id: id)
            try Audit.record(db, actor: admin.user.username, action: "user.delete", target: u.username,
                             message: "deleted user \(id)")
        }
        return .json { w in
            w.beginObject()
            w.field("deleted", Int(id))
            w.endObject()
        }
    }

    static func stats(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.admin, req, ctx)
        let now = Clock.wallMillis()
        let (roles, revoked, locked, events) = try Store.read(ctx) { db in
            (try UserRepository(db).countsByRole(), try TokenRepository(db).activeCount(now: now),
             try LoginThrottle(db).lockedCount(now: now), try EventRepository(db).count())
        }
        return .json { w in
            w.beginObject()
            w.field("total_users", roles.reduce(0) { $0 + $1.total })
            w.field("active_users", roles.reduce(0) { $0 + $1.active })
            w.beginObject("by_role")
            for r in Role.allCases {
                let c = roles.first { $0.role == r.rawValue }
                w.beginObject(r.rawValue)
                w.field("total", c?.total ?? 0)
                w.field("active", c?.active ?? 0)
                w.endObject()
            }
            w.endObject()
            w.field("revoked_tokens", revoked)
            w.field("locked_login_keys", locked)
            w.field("events", events)
            w.endObject()
        }
    }
}
