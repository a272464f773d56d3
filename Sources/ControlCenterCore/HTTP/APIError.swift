/// An error with an HTTP status, rendered in the one envelope every error uses:
/// `{"error":{"code","message","request_id"}}`.
public struct APIError: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var message: String
    public var headers: [String: String]

    public init(_ status: Int, _ code: String, _ message: String, headers: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public static func badRequest(_ message: String, code: String = "bad_request") -> APIError {
        APIError(400, code, message)
    }
    public static func notFound(_ message: String = "Not found") -> APIError { APIError(404, "not_found", message) }
    public static func unauthorized(_ message: String = "Authentication required") -> APIError {
        APIError(401, "unauthorized", message, headers: ["WWW-Authenticate": "Bearer"])
    }
    public static func forbidden(_ message: String = "Insufficient role") -> APIError {
        APIError(403, "forbidden", message, headers: ["WWW-Authenticate": "Bearer error=\"insufficient_scope\""])
    }
    public static func unavailable(_ message: String) -> APIError { APIError(503, "service_unavailable", message) }
    public static func `internal`(_ message: String = "Internal server error") -> APIError {
        APIError(500, "internal_error", message)
    }

    public func response(requestID: String) -> Response {
        var r = Response.json(status) { w in
            w.beginObject()
            w.beginObject("error")
            w.field("code", code)
            w.field("message", message)
            w.field("request_id", requestID)
            w.endObject()
            w.endObject()
        }
        for (k, v) in headers.sorted(by: { $0.key < $1.key }) { r.headers.append((k, v)) }
        r.errorCode = code
        return r
    }
}
