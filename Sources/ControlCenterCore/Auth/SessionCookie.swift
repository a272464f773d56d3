/// The browser session: `cc_session`, the same JWT as the bearer token, set
/// by login and change-password and cleared by logout. Browsers cannot set
/// headers on WebSocket or EventSource, so the cookie is what lets a page
/// subscribe to the live channels; every API route accepts it beside the
/// `Authorization` header (Auth.authenticate, the one seam).
///
/// Attributes (RFC 6265): `HttpOnly` (no script reads it), `SameSite=Strict`
/// (no other site's page sends it), `Path=/`, `Max-Age` = CC_TOKEN_TTL, and
/// `Secure` when the request came over HTTPS (directly or through a trusted
/// proxy that says so), so a plain-HTTP development setup still works.
public enum SessionCookie {
    public static let name = "cc_session"

    /// Headers that a cookie-authenticated state-changing request must carry
    /// (any value): a cross-site form cannot send a custom header, and a
    /// cross-site script may not without a CORS preflight we never grant.
    public static let csrfHeaders = ["x-requested-with", "x-csrf-token"]

    /// `Set-Cookie` carrying `token` for `ttl` seconds.
    public static func set(_ token: String, ttl: Int, _ req: Request) -> (String, String) {
        ("Set-Cookie", "\(name)=\(token); Path=/; Max-Age=\(ttl); HttpOnly; SameSite=Strict\(req.isHTTPS ? "; Secure" : "")")
    }

    /// `Set-Cookie` that removes the session.
    public static func clear(_ req: Request) -> (String, String) {
        ("Set-Cookie", "\(name)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict\(req.isHTTPS ? "; Secure" : "")")
    }

    /// The session token from the `Cookie` header (RFC 6265 §4.2: `name=value`
    /// pairs separated by `; `), or nil; an empty value counts as none.
    public static func token(_ req: Request) -> String? {
        guard let header = req.header("cookie") else { return nil }
        for pair in header.split(separator: ";") {
            let p = pair.trimmingCharacters(in: [" ", "\t"])
            guard let eq = p.firstIndex(of: "="), p[..<eq] == name else { continue }
            let value = p[p.index(after: eq)...]
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }

    /// Methods that change nothing (RFC 9110 §9.2.1), which need no CSRF header.
    static func isSafe(_ method: String) -> Bool { ["GET", "HEAD", "OPTIONS"].contains(method) }
}
