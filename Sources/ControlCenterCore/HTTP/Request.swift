/// One HTTP request as the worker sees it, built from FastCGI params.
public struct Request: Sendable {
    public var method: String
    public var path: String
    public var rawQuery: String
    public var query: QueryParameters
    /// Lower-cased header names.
    public var headers: [String: String]
    public var body: [UInt8]
    public var requestID: String
    public var remoteAddress: String
    /// The client used HTTPS, directly or through a trusted proxy that says
    /// so (nginx's `HTTPS` FastCGI param, `$cc_https`).
    public var isHTTPS = false
    /// Filled by the router from `{name}` segments.
    public var pathParameters: [String: String] = [:]

    public init(method: String, path: String, rawQuery: String = "", headers: [String: String] = [:],
                body: [UInt8] = [], requestID: String = "", remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.rawQuery = rawQuery
        self.query = QueryParameters(parsing: rawQuery)
        self.headers = headers
        self.body = body
        self.requestID = requestID
        self.remoteAddress = remoteAddress
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// A path parameter the route declared; the router guarantees it exists.
    public func parameter(_ name: String) -> String { pathParameters[name] ?? "" }

    /// True when the request came from this host, as nginx saw it.
    public var isLoopback: Bool {
        remoteAddress == "127.0.0.1" || remoteAddress == "::1" || remoteAddress.hasPrefix("127.")
            || remoteAddress == "unix:" || remoteAddress.isEmpty
    }
}
