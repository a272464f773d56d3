/// The live channels' handshakes. nginx's nchan serves `/ws`,
/// `/api/stream/system` and `/api/stream/events` itself
/// (NginxRender.liveServer); a request reaches these routes only as nchan's
/// authorize subrequest, once per subscriber connection, carrying the
/// subscriber's own headers. 204 lets the subscription through; any error
/// answer refuses it with that status.
///
/// nginx asks for the system channel only when it is not public
/// (CC_PUBLIC_READ=false), and always for the events channel. A handshake
/// authenticated by the session cookie must come from a page of this
/// origin or of CC_ALLOWED_ORIGINS (a WebSocket is not bound by the
/// same-origin policy, so without this any site could subscribe with the
/// visitor's cookie).
public enum StreamRoutes {
    public static func register(_ r: inout Router) {
        r.get("/ws", handshake(systemChannel: true))
        r.get("/api/stream/system", handshake(systemChannel: true))
        r.get("/api/stream/events", handshake(systemChannel: false))
    }

    static func handshake(systemChannel: Bool) -> Handler {
        { req, ctx in
            if systemChannel && ctx.config.publicRead { return Response(status: 204) }
            let p = try Auth.requireRole(.viewer, req, ctx)
            if p.viaCookie, let origin = req.header("origin"),
               !isAllowed(origin: origin, req, allowed: ctx.config.allowedOrigins) {
                throw APIError(403, "origin_not_allowed",
                               "A cookie-authenticated subscription must come from this site or from CC_ALLOWED_ORIGINS")
            }
            return Response(status: 204)
        }
    }

    /// The served origin (RFC 6454: scheme, host and port as the client
    /// addressed this server) or one listed; compared case-insensitively.
    static func isAllowed(origin: String, _ req: Request, allowed: [String]) -> Bool {
        let o = origin.lowercased()
        if let host = req.header("host"), o == (req.isHTTPS ? "https://" : "http://") + host.lowercased() { return true }
        return allowed.contains(o)
    }
}
