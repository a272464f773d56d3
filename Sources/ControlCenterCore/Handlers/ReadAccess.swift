/// How much of a system view a request may read; README's "What is public"
/// lists the fields each level gets.
///
/// With `CC_PUBLIC_READ=true` a request without an `Authorization` header or
/// a session cookie is anonymous; one with either must carry a valid viewer token (a bad token
/// is 401, not a quiet downgrade). With `CC_PUBLIC_READ=false` every request
/// needs a viewer token.
enum ReadAccess: Equatable {
    case anonymous
    case viewer

    static func of(_ req: Request, _ ctx: WorkerContext) throws -> ReadAccess {
        guard req.header("authorization") != nil || SessionCookie.token(req) != nil || !ctx.config.publicRead else {
            return .anonymous
        }
        try Auth.requireRole(.viewer, req, ctx)
        return .viewer
    }
}
