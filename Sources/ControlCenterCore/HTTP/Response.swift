/// What a handler returns; the FastCGI layer turns it into CGI output.
public struct Response: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The JSON error envelope's `code` when this is an APIError, for the
    /// metrics counted at the request seam (database errors, login failures).
    public var errorCode: String?

    public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: Int = 200, _ build: (inout JSONWriter) -> Void) -> Response {
        var w = JSONWriter()
        build(&w)
        return Response(status: status, headers: [("Content-Type", "application/json")], body: w.bytes)
    }

    public static func json(_ status: Int = 200, bytes: [UInt8]) -> Response {
        Response(status: status, headers: [("Content-Type", "application/json")], body: bytes)
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Payload Too Large"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Entity"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}
