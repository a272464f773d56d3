import CFastCGI
import Glibc

/// Turns libfcgi's CGI environment into a `Request`, and a `Response` into
/// CGI output. Kept apart from the accept loop so it can be reasoned about
/// (and its limits tested) on its own.
enum FastCGIExchange {
    static func param(_ name: String, _ envp: FCGX_ParamArray?) -> String? {
        guard let envp, let v = FCGX_GetParam(name, envp) else { return nil }
        return String(cString: v)
    }

    /// Header names from `HTTP_*` params, lower-cased with dashes.
    static func headers(_ envp: FCGX_ParamArray?) -> [String: String] {
        var out: [String: String] = [:]
        guard var p = envp else { return out }
        while let entry = p.pointee {
            let s = String(cString: entry)
            if s.hasPrefix("HTTP_"), let eq = s.firstIndex(of: "=") {
                let name = s[s.index(s.startIndex, offsetBy: 5)..<eq].lowercased().replacingOccurrences(of: "_", with: "-")
                out[name] = String(s[s.index(after: eq)...])
            }
            p += 1
        }
        if let ct = param("CONTENT_TYPE", envp), !ct.isEmpty { out["content-type"] = ct }
        if let cl = param("CONTENT_LENGTH", envp), !cl.isEmpty { out["content-length"] = cl }
        return out
    }

    enum BodyResult { case ok([UInt8]), tooLarge, invalid }

    /// Reads at most `limit` bytes. A larger declared length is refused
    /// before reading; the caller drains whatever is left either way.
    static func readBody(_ stream: UnsafeMutablePointer<FCGX_Stream>?, contentLength: String?, limit: Int) -> BodyResult {
        guard let contentLength, !contentLength.isEmpty else { return .ok([]) }
        guard let declared = Int(contentLength), declared >= 0 else { return .invalid }
        if declared > limit { return .tooLarge }
        if declared == 0 { return .ok([]) }
        var body = [UInt8](repeating: 0, count: declared)
        var got = 0
        while got < declared {
            let n = body.withUnsafeMutableBytes { raw in
                FCGX_GetStr(raw.baseAddress!.assumingMemoryBound(to: CChar.self) + got, Int32(declared - got), stream)
            }
            if n <= 0 { break }
            got += Int(n)
        }
        return .ok(got == declared ? body : Array(body.prefix(got)))
    }

    /// Reads the rest of stdin so libfcgi can close without lingering.
    static func drain(_ stream: UnsafeMutablePointer<FCGX_Stream>?) {
        var buf = [CChar](repeating: 0, count: 16384)
        while FCGX_GetStr(&buf, Int32(buf.count), stream) > 0 {}
    }

    static func write(_ response: Response, requestID: String, headOnly: Bool,
                      to stream: UnsafeMutablePointer<FCGX_Stream>?) -> Int {
        var head = "Status: \(response.status) \(Response.reasonPhrase(response.status))\r\n"
        var hasType = false
        for (k, v) in response.headers {
            if k.lowercased() == "content-type" { hasType = true }
            // Header injection guard: a value never carries a line break.
            let clean = v.contains(where: { $0 == "\r" || $0 == "\n" })
                ? String(v.filter { $0 != "\r" && $0 != "\n" }) : v
            head += "\(k): \(clean)\r\n"
        }
        if !hasType { head += "Content-Type: application/json\r\n" }
        head += "X-Request-ID: \(requestID)\r\nContent-Length: \(response.body.count)\r\n\r\n"
        var out = Array(head.utf8)
        if !headOnly { out.append(contentsOf: response.body) }
        out.withUnsafeBytes { raw in
            _ = FCGX_PutStr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count), stream)
        }
        return headOnly ? 0 : response.body.count
    }
}
