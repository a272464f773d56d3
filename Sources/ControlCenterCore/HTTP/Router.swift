/// Everything a handler may use besides the request: config, clocks, storage.
/// One per worker process; handlers run one at a time, so it needs no locks.
public typealias Handler = (Request, WorkerContext) throws -> Response

/// Method + path routing with `{name}` parameters.
///
/// Static paths are one dictionary lookup; parameterised routes are matched
/// segment by segment. A path that exists under another method gives 405 with
/// `Allow`, and anything else 404, both in the JSON envelope.
///
/// Matching is exact, as nginx's `location =` is: `/a/` is not `/a`, and an
/// empty segment matches no `{name}`. A route that nginx limits (the login
/// zone, the loopback-only pool status) cannot then be reached under a
/// spelling that nginx sends to another location.
public struct Router {
    public struct Route {
        public let method: String
        public let pattern: String
        let segments: [Substring]
        let handler: Handler
    }

    private var staticRoutes: [String: [String: Handler]] = [:]   // path -> method -> handler
    private var patternRoutes: [Route] = []
    public private(set) var routes: [(method: String, pattern: String)] = []

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        routes.append((method, pattern))
        if pattern.contains("{") {
            patternRoutes.append(Route(method: method, pattern: pattern,
                                       segments: pattern.split(separator: "/", omittingEmptySubsequences: false),
                                       handler: handler))
        } else {
            staticRoutes[pattern, default: [:]][method] = handler
        }
    }

    public mutating func get(_ p: String, _ h: @escaping Handler) { add("GET", p, h) }
    public mutating func post(_ p: String, _ h: @escaping Handler) { add("POST", p, h) }
    public mutating func put(_ p: String, _ h: @escaping Handler) { add("PUT", p, h) }
    public mutating func delete(_ p: String, _ h: @escaping Handler) { add("DELETE", p, h) }

    public enum Match {
        /// The handler, the path's `{name}` values and the route's pattern.
        case found(Handler, [String: String], route: String)
        case methodNotAllowed([String])
        case notFound
    }

    public func match(method: String, path: String) -> Match {
        // HEAD is served by the GET handler; the FastCGI layer drops the body.
        let lookup = method == "HEAD" ? "GET" : method
        if let byMethod = staticRoutes[path] {
            if let h = byMethod[lookup] { return .found(h, [:], route: path) }
            return .methodNotAllowed(Self.allowList(byMethod.keys))
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        var allowed: [String] = []
        for route in patternRoutes where route.segments.count == segments.count {
            var params: [String: String] = [:]
            var ok = true
            for (p, s) in zip(route.segments, segments) {
                if p.first == "{" && p.last == "}" && !s.isEmpty {
                    params[String(p.dropFirst().dropLast())] = QueryParameters.decode(s)
                } else if p != s {
                    ok = false
                    break
                }
            }
            guard ok else { continue }
            if route.method == lookup { return .found(route.handler, params, route: route.pattern) }
            allowed.append(route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(Self.allowList(allowed))
    }

    /// The pattern of the route `method` and `path` reach, for requests
    /// accounted for without being routed (dropped, skipped, too large).
    public func pattern(method: String, path: String) -> String? {
        if case .found(_, _, let route) = match(method: method, path: path) { return route }
        return nil
    }

    private static func allowList<S: Sequence>(_ methods: S) -> [String] where S.Element == String {
        var set = Set(methods)
        if set.contains("GET") { set.insert("HEAD") }
        return set.sorted()
    }

    /// Runs the matched handler and turns every failure into the JSON envelope.
    public func handle(_ request: Request, context: WorkerContext) -> Response {
        route(request, context: context).response
    }

    /// `handle`, plus the matched route's pattern (nil when no route
    /// matched): the `route` label of the request metrics, which must not
    /// grow with the paths clients send.
    public func route(_ request: Request, context: WorkerContext) -> (response: Response, route: String?) {
        var request = request
        switch match(method: request.method, path: request.path) {
        case .notFound:
            return (APIError.notFound("No route for \(request.path)").response(requestID: request.requestID), nil)
        case .methodNotAllowed(let allow):
            var r = APIError(405, "method_not_allowed", "\(request.method) is not allowed on \(request.path)")
                .response(requestID: request.requestID)
            r.headers.append(("Allow", allow.joined(separator: ", ")))
            return (r, nil)
        case .found(let handler, let params, let route):
            request.pathParameters = params
            do {
                return (try handler(request, context), route)
            } catch let e as APIError {
                return (e.response(requestID: request.requestID), route)
            } catch {
                context.log.error("handler failed", ["path": request.path, "request_id": request.requestID,
                                                     "error": String(describing: error)])
                return (APIError.internal().response(requestID: request.requestID), route)
            }
        }
    }
}
