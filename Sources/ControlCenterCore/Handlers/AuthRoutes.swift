import Foundation

/// Login, logout, the caller's own profile and password.
///
/// Self-service routes (me, change-password, logout) need only a valid
/// token of any role: they touch nothing but the caller's own credentials,
/// and a viewer must be able to rotate its password and log out.
enum AuthRoutes {
    static func register(_ r: inout Router) {
        r.post("/api/auth/login", loginJSON)
        r.post("/api/auth/login/form", loginForm)
        r.get("/api/auth/me", me)
        r.put("/api/auth/me", updateMe)
        r.post("/api/auth/change-password", changePassword)
        r.post("/api/auth/logout", logout)
    }

    static func loginJSON(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let body = try JSONInput(req)
        return try login(username: body.requiredString("username", maxLength: 256),
                         password: body.requiredString("password", maxLength: PasswordPolicy.maxLength), req, ctx)
    }

    /// OAuth2 password-grant style, as the old dashboard posts it.
    static func loginForm(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        if let ct = req.header("content-type"), !ct.lowercased().hasPrefix("application/x-www-form-urlencoded") {
            throw APIError(415, "unsupported_media_type", "Content-Type must be application/x-www-form-urlencoded")
        }
        let form = QueryParameters(parsing: String(decoding: req.body, as: UTF8.self))
        guard let user = form["username"], !user.isEmpty, user.count <= 256 else {
            throw JSONInput.invalid("username", "is required (at most 256 characters)")
        }
        guard let pass = form["password"], !pass.isEmpty, pass.count <= PasswordPolicy.maxLength else {
            throw JSONInput.invalid("password", "is required")
        }
        return try login(username: user, password: pass, req, ctx)
    }

    /// `username` is looked up folded (`Username.fold`), as it was stored.
    static func login(username typed: String, password: String, _ req: Request, _ ctx: WorkerContext) throws -> Response {
        let auth = try AuthService.shared(ctx)
        let now = Clock.wallMillis()
        let username = Username.fold(typed)
        let pairKey = LoginThrottle.pairKey(username, req.remoteAddress), addrKey = LoginThrottle.addressKey(req.remoteAddress)
        if let until = try Store.read(ctx, { try LoginThrottle($0).lockedUntil(keys: [pairKey, addrKey], now: now) }) {
            let secs = max(1, (until - now + 999) / 1000)
            throw APIError(429, "too_many_attempts", "Too many failed logins; retry in \(secs) s",
                           headers: ["Retry-After": String(secs)])
        }
        let found = try Store.read(ctx) { try UserRepository($0).find(username: username) }
        // The hash check runs outside any transaction: it costs ~0.1 s of CPU
        // and must not hold SQLite's write lock meanwhile.
        var ok = false
        if let found {
            ok = PasswordHasher.verify(password, hash: found.passwordHash) && found.isActive
        } else {
            PasswordHasher.burnVerify(password)
        }
        guard ok, var user = found else {
            try Store.write(ctx) { db in
                let t = LoginThrottle(db)
                try t.recordFailure(key: pairKey, policy: LoginThrottle.perPair, now: now)
                try t.recordFailure(key: addrKey, policy: LoginThrottle.perAddress, now: now)
                try Audit.record(db, actor: nil, action: "auth.login_failed", target: username,
                                 message: "failed login from \(req.remoteAddress.isEmpty ? "unknown" : req.remoteAddress)",
                                 level: .warning)
            }
            throw APIError(401, "invalid_credentials", "Incorrect username or password",
                           headers: ["WWW-Authenticate": "Bearer"])
        }
        let rehash = PasswordHasher.needsRehash(user.passwordHash) ? try? PasswordHasher.hash(password) : nil
        let issued = auth.issue(for: user, now: now / 1000)
        try Store.write(ctx) { db in
            try LoginThrottle(db).clear(key: pairKey)
            let users = UserRepository(db)
            if let rehash {
                user.passwordHash = rehash
                try users.save(user, now: now)
            }
            try users.recordLogin(id: user.id, now: now)
            try Audit.record(db, actor: user.username, action: "auth.login", target: user.username, message: "login")
        }
        var r = Response.json { w in
            w.beginObject()
            tokenFields(&w, issued.token, ttl: auth.ttl)
            w.endObject()
        }
        r.headers.append(SessionCookie.set(issued.token, ttl: auth.ttl, req))
        return r
    }

    /// The token answer login and change-password share.
    static func tokenFields(_ w: inout JSONWriter, _ token: String, ttl: Int) {
        w.field("access_token", token)
        w.field("token_type", "bearer")
        w.field("expires_in", ttl)
    }

    static func me(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.authenticate(req, ctx)
        return .json { p.user.write(&$0) }
    }

    static func updateMe(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.authenticate(req, ctx)
        let body = try JSONInput(req)
        try body.allowOnly(["email", "full_name"])
        let email = try UserFields.email(body.string("email", maxLength: 254))
        let fullName = try body.string("full_name", maxLength: 200)
        let user = try Store.write(ctx) { db -> User in
            let users = UserRepository(db)
            guard var u = try users.find(id: p.user.id) else { throw APIError.unauthorized("Unknown user") }
            if body.has("email") { u.email = email }
            if body.has("full_name") { u.fullName = fullName }
            try users.save(u)
            try Audit.record(db, actor: u.username, action: "user.update", target: u.username,
                             message: "updated own profile", data: Self.fieldList(body.object.keys))
            return try users.find(id: u.id) ?? u
        }
        return .json { user.write(&$0) }
    }

    static func changePassword(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.authenticate(req, ctx)
        let body = try JSONInput(req)
        try body.allowOnly(["current_password", "old_password", "new_password"])
        let current = try body.string("current_password", maxLength: PasswordPolicy.maxLength)
            ?? body.requiredString("old_password", maxLength: PasswordPolicy.maxLength)
        let new = try UserFields.password("new_password", body.requiredString("new_password", maxLength: PasswordPolicy.maxLength))
        guard PasswordHasher.verify(current, hash: p.user.passwordHash) else {
            throw APIError(400, "invalid_password", "The current password is wrong")
        }
        let hash = try PasswordHasher.hash(new)
        let auth = try AuthService.shared(ctx)
        let user = try Store.write(ctx) { db -> User in
            let users = UserRepository(db)
            guard var u = try users.find(id: p.user.id) else { throw APIError.unauthorized("Unknown user") }
            u.passwordHash = hash
            u.tokenVersion += 1   // every older token of this user stops working
            u.mustChangePassword = false
            try users.save(u)
            try TokenRepository(db).revoke(jti: p.claims.jti, userID: u.id, expiresAt: p.claims.exp * 1000)
            try Audit.record(db, actor: u.username, action: "auth.change_password", target: u.username,
                             message: "password changed; older tokens revoked")
            return u
        }
        // The generated first password is no longer valid: nothing to keep on disk.
        if p.user.mustChangePassword { unlink(StorageSetup.adminPasswordPath(ctx.config)) }
        let issued = auth.issue(for: user)
        var r = Response.json { w in
            w.beginObject()
            w.field("status", "password_changed")
            tokenFields(&w, issued.token, ttl: auth.ttl)
            w.endObject()
        }
        // The old token (and so the old cookie) is revoked: the session moves on.
        r.headers.append(SessionCookie.set(issued.token, ttl: auth.ttl, req))
        return r
    }

    static func logout(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.authenticate(req, ctx)
        try Store.write(ctx) { db in
            let tokens = TokenRepository(db)
            try tokens.revoke(jti: p.claims.jti, userID: p.user.id, expiresAt: p.claims.exp * 1000)
            try tokens.prune()
            try Audit.record(db, actor: p.user.username, action: "auth.logout", target: p.user.username, message: "logout")
        }
        var r = Response.json { w in
            w.beginObject()
            w.field("status", "logged_out")
            w.endObject()
        }
        r.headers.append(SessionCookie.clear(req))
        return r
    }

    /// `{"fields":[...]}`: which fields a change touched (never their values
    /// for passwords), as the audit event's data.
    static func fieldList<S: Sequence>(_ names: S) -> String where S.Element == String {
        var w = JSONWriter()
        w.beginObject()
        w.beginArray("fields")
        for n in names.sorted() { w.string(n) }
        w.endArray()
        w.endObject()
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
