import Foundation

/// Per-worker signing state: the key is read once per process.
public final class AuthService {
    public let signer: JWTSigner
    public let ttl: Int

    public init(config: Config) throws {
        signer = JWTSigner(secret: try JWTSecret.load(config))
        ttl = config.tokenTTL
    }

    public static func shared(_ ctx: WorkerContext) throws -> AuthService {
        do {
            return try ctx.service(AuthService.self) { try AuthService(config: ctx.config) }
        } catch {
            ctx.log.error("cannot load the JWT secret", ["error": String(describing: error)])
            throw APIError.unavailable("Authentication is not configured")
        }
    }

    public func issue(for user: User, now: Int64 = Clock.wallMillis() / 1000) -> (token: String, claims: JWTClaims) {
        let claims = JWTClaims(sub: user.username, userID: user.id, role: user.role.rawValue, iat: now,
                               exp: now + Int64(ttl), jti: PasswordHasher.randomToken(bytes: 16),
                               tokenVersion: user.tokenVersion)
        return (signer.sign(claims), claims)
    }
}

/// Who made a request: the verified token and the user as the database has
/// it now (so a demotion or deactivation applies on the next request).
public struct Principal {
    public let user: User
    public let claims: JWTClaims
    /// Authenticated by the `cc_session` cookie rather than a bearer header.
    public var viaCookie = false
}

public enum Auth {
    /// The bearer token, or 401; 403 `password_change_required` for an
    /// account that must change its password first, on any route but
    /// `allowedBeforePasswordChange`. Every authenticated route comes here,
    /// so this is the one place that rule lives.
    ///
    /// Without an `Authorization` header the `cc_session` cookie counts
    /// (SessionCookie); a state-changing request authenticated by it must
    /// carry `X-Requested-With` or `X-CSRF-Token`, else 403 `csrf_header_required`.
    public static func authenticate(_ req: Request, _ ctx: WorkerContext) throws -> Principal {
        let token: String
        var viaCookie = false
        if let header = req.header("authorization") {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw APIError.unauthorized("Authorization must be a Bearer token")
            }
            token = parts[1].trimmingCharacters(in: [" "])
        } else if let cookie = SessionCookie.token(req) {
            guard SessionCookie.isSafe(req.method) || SessionCookie.csrfHeaders.contains(where: { req.header($0) != nil }) else {
                throw APIError(403, "csrf_header_required",
                               "A request authenticated by the session cookie that changes state must send X-Requested-With or X-CSRF-Token")
            }
            token = cookie
            viaCookie = true
        } else {
            throw APIError.unauthorized()
        }
        let auth = try AuthService.shared(ctx)
        let claims: JWTClaims
        do {
            claims = try auth.signer.verify(token, now: Clock.wallMillis() / 1000)
        } catch {
            throw APIError(401, "invalid_token", error.message,
                           headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
        }
        // One round trip: the user and whether this token was revoked.
        let row = try Store.read(ctx) { db in
            try db.queryOne("SELECT \(UserRepository.columns), (SELECT COUNT(*) FROM revoked_tokens WHERE jti = ?) FROM users WHERE id = ?",
                            [.text(claims.jti), .int(claims.userID)])
        }
        guard let row, let user = try? UserRepository.decode(row) else {
            throw APIError(401, "invalid_token", "Unknown user", headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
        }
        guard (row.int(UserRepository.columnCount) ?? 0) == 0 else {
            throw APIError(401, "invalid_token", "Token revoked", headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
        }
        guard user.tokenVersion == claims.tokenVersion else {
            throw APIError(401, "invalid_token", "Token invalidated by a password change or by disabling the account",
                           headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
        }
        guard user.isActive else {
            throw APIError(401, "invalid_token", "Account disabled", headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
        }
        if user.mustChangePassword && !allowedBeforePasswordChange.contains(req.path) {
            throw APIError(403, "password_change_required",
                           "This account's generated password must be changed first (POST /api/auth/change-password)")
        }
        return Principal(user: user, claims: claims, viaCookie: viaCookie)
    }

    /// What an account marked `must_change_password` (the generated first
    /// admin) may reach: enough to see who it is, change the password, or leave.
    static let allowedBeforePasswordChange: Set<String> = ["/api/auth/change-password", "/api/auth/me", "/api/auth/logout"]

    /// 401 without a valid token, 403 when the user's current role is below `role`.
    @discardableResult
    public static func requireRole(_ role: Role, _ req: Request, _ ctx: WorkerContext) throws -> Principal {
        let p = try authenticate(req, ctx)
        guard p.user.role.includes(role) else {
            throw APIError.forbidden("This needs the \(role.rawValue) role; you are \(p.user.role.rawValue)")
        }
        return p
    }

    /// For system read routes: a viewer token only when `CC_PUBLIC_READ=false`.
    public static func requireReadAccess(_ req: Request, _ ctx: WorkerContext) throws {
        if !ctx.config.publicRead { try requireRole(.viewer, req, ctx) }
    }

    /// Wraps a read handler with `requireReadAccess`.
    public static func readGuarded(_ h: @escaping Handler) -> Handler {
        { req, ctx in
            try requireReadAccess(req, ctx)
            return try h(req, ctx)
        }
    }
}
