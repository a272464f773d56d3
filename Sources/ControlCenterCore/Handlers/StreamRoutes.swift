/// The live channels' handshakes. nginx's nchan serves `/ws`,
/// `/api/stream/system` and `/api/stream/events` itself
/// (NginxRender.liveServer); a request reaches these routes only as nginx's
/// auth_request subrequest, once per subscriber connection, carrying the
/// subscriber's own headers. 204 lets the subscription through; 401 or 403
/// refuses it with that status (nginx makes any other answer a 503).
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
        r.post("/api/stream/ticket", ticket)
    }

    /// The subscriber's `?ticket=`, which nginx passes to the check as this
    /// header (control-center-live.conf).
    static let ticketHeader = "x-cc-stream-ticket"

    /// `POST /api/stream/ticket` (viewer): a single-use ticket for one
    /// subscription within 60 s, for clients that can send neither a header
    /// nor the cookie on their subscribe request.
    static func ticket(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.viewer, req, ctx)
        let issued = try Store.writeStatement(ctx) { try StreamTicketRepository($0).issue(userID: p.user.id) }
        return .json(201) { w in
            w.beginObject()
            w.field("ticket", issued.ticket)
            w.field("expires_in", StreamTicketRepository.lifetime)
            w.field("expires_at", timestamp: Double(issued.expiresAt) / 1000)
            w.endObject()
        }
    }

    static func handshake(systemChannel: Bool) -> Handler {
        { req, ctx in
            if systemChannel && ctx.config.publicRead { return Response(status: 204) }
            if let ticket = req.header(ticketHeader), !ticket.isEmpty { return try redeem(ticket, ctx) }
            let p = try Auth.requireRole(.viewer, req, ctx)
            if p.viaCookie, let origin = req.header("origin"),
               !isAllowed(origin: origin, req, allowed: ctx.config.allowedOrigins) {
                throw APIError(403, "origin_not_allowed",
                               "A cookie-authenticated subscription must come from this site or from CC_ALLOWED_ORIGINS")
            }
            return Response(status: 204)
        }
    }

    /// A ticket admits one subscription of an active user; used or not, it
    /// is gone afterwards.
    static func redeem(_ ticket: String, _ ctx: WorkerContext) throws -> Response {
        let user = try Store.write(ctx) { db -> User? in
            guard let id = try StreamTicketRepository(db).redeem(ticket) else { return nil }
            return try UserRepository(db).find(id: id)
        }
        guard let user, user.isActive, user.role.includes(.viewer) else {
            throw APIError(401, "invalid_ticket", "The stream ticket is unknown, used or expired; get a new one (POST /api/stream/ticket)")
        }
        return Response(status: 204)
    }

    /// The served origin (RFC 6454: scheme, host and port as the client
    /// addressed this server) or one listed; compared case-insensitively.
    static func isAllowed(origin: String, _ req: Request, allowed: [String]) -> Bool {
        let o = origin.lowercased()
        if let host = req.header("host"), o == (req.isHTTPS ? "https://" : "http://") + host.lowercased() { return true }
        return allowed.contains(o)
    }
}
