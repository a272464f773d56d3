extension NginxRender {
    /// One JSON error page for every answer nginx makes itself, in the
    /// workers' envelope `{"error":{"code","message","request_id"}}`, with the
    /// security headers (each location includes them: it has add_header lines
    /// of its own, or may get some, and would lose the inherited ones).
    /// nginx's 494 (its own code for a header too large) is sent as 431
    /// (RFC 6585 section 5). A request whose line nginx could not read (400,
    /// 414) has no URI, and nginx refuses to redirect those to a named
    /// location ("empty URI"), so their pages are internal URI locations.
    var errorPages: String {
        let headers = path("control-center-headers.conf")
        let pages: [(code: Int, status: Int, name: String, message: String, retry: Bool)] = [
            (400, 400, "bad_request", "Malformed HTTP request", false),
            (403, 403, "forbidden", "Not allowed from this address", false),
            (405, 405, "method_not_allowed", "Method not allowed here", false),
            (413, 413, "payload_too_large", "Request body exceeds \(config.maxBody) bytes", false),
            (414, 414, "uri_too_long", "Request URI too long", false),
            (421, 421, "misdirected_request", "This server does not serve that Host", false),
            (429, 429, "rate_limited", "Too many requests; retry later", true),
            (494, 431, "header_too_large", "Request header fields too large", false),
            (502, 502, "bad_gateway", "The worker handling this request failed", false),
            (503, 503, "service_unavailable", "No worker available", true),
            (504, 504, "gateway_timeout", "The request exceeded \(Self.trimmed(config.requestTimeout)) s", false),
        ]
        func target(_ code: Int) -> String { Self.unparsedRequestCodes.contains(code) ? "\(Self.errorURIPrefix)\(code)" : "@cc_\(code)" }
        var out = pages.map { "error_page \($0.code) = \(target($0.code));\n" }.joined() + "limit_req_status 429;\n"
        for p in pages {
            let isInternal = Self.unparsedRequestCodes.contains(p.code)
            out += """

                location \(isInternal ? "= " : "")\(target(p.code)) {\(isInternal ? "\n    internal;" : "")
                    default_type application/json;
                    include \(headers);\(p.retry ? "\n    add_header Retry-After 1 always;" : "")
                    return \(p.status) '{"error":{"code":"\(p.name)","message":"\(p.message)","request_id":"$request_id"}}\\n';
                }

                """
        }
        return out
    }

    static let unparsedRequestCodes: Set<Int> = [400, 414]
    /// Internal URIs of those pages; control-center-http.conf exempts them
    /// from the Host check, which an internal redirect runs again.
    static let errorURIPrefix = "/.cc-error/"

    /// 10 as "10", 0.5 as "0.5".
    static func trimmed(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}
