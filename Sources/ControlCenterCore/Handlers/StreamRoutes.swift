/// The live channels' handshakes. nginx's nchan serves `/ws` and
/// `/api/stream/system` itself (NginxRender.liveServer); a request reaches
/// these routes only as nchan's authorize subrequest, once per subscriber
/// connection, carrying the subscriber's own headers. 204 lets the
/// subscription through; any error answer refuses it with that status.
///
/// nginx asks for the system channel only when it is not public
/// (CC_PUBLIC_READ=false), and always for the events channel.
public enum StreamRoutes {
    public static func register(_ r: inout Router) {
        r.get("/ws", Auth.readGuarded(allow))
        r.get("/api/stream/system", Auth.readGuarded(allow))
        r.get("/api/stream/events") { req, ctx in
            try Auth.requireRole(.viewer, req, ctx)
            return Response(status: 204)
        }
    }

    static func allow(_ req: Request, _ ctx: WorkerContext) throws -> Response { Response(status: 204) }
}
