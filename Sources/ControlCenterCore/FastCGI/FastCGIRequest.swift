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
            if let (name, value) = headerPair(entry) { out[name] = value }
            p += 1
        }
        if let ct = param("CONTENT_TYPE", envp), !ct.isEmpty { out["content-type"] = ct }
        if let cl = param("CONTENT_LENGTH", envp), !cl.isEmpty { out["content-length"] = cl }
        return out
    }

    /// `HTTP_X_FOO=bar` -> ("x-foo", "bar"), working on bytes: this runs for
    /// every header of every request.
    static func headerPair(_ entry: UnsafeMutablePointer<CChar>) -> (String, String)? {
        let raw = UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self)
        guard raw[0] == 0x48, raw[1] == 0x54, raw[2] == 0x54, raw[3] == 0x50, raw[4] == 0x5F else { return nil }
        var name: [UInt8] = []
        var i = 5
        while raw[i] != 0 && raw[i] != UInt8(ascii: "=") {
            let c = raw[i]
            name.append(c == UInt8(ascii: "_") ? UInt8(ascii: "-") : (c >= 65 && c <= 90 ? c + 32 : c))
            i += 1
        }
        guard raw[i] == UInt8(ascii: "=") else { return nil }
        return (String(decoding: name, as: UTF8.self), String(cString: raw + i + 1))
    }

    enum BodyResult {
        case ok([UInt8]), tooLarge, invalid
        /// stdin ended (error, timeout, EOF) before the declared length.
        case incomplete
    }

    /// Reads at most `limit` bytes. A larger declared length is refused
    /// before reading; the caller drains whatever is left either way. A body
    /// shorter than declared is `.incomplete`, never handed on as if whole.
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
        return got == declared ? .ok(body) : .incomplete
    }

    /// Reads the rest of stdin so libfcgi can close without lingering.
    static func drain(_ stream: UnsafeMutablePointer<FCGX_Stream>?) {
        var buf = [CChar](repeating: 0, count: 16384)
        while FCGX_GetStr(&buf, Int32(buf.count), stream) > 0 {}
    }

    static func write(_ response: Response, requestID: String, headOnly: Bool,
                      to stream: UnsafeMutablePointer<FCGX_Stream>?) -> Int {
        var out: [UInt8] = []
        out.reserveCapacity(256 + (headOnly ? 0 : response.body.count))
        out.append(contentsOf: "Status: ".utf8)
        appendDecimal(response.status, to: &out)
        out.append(0x20)
        out.append(contentsOf: Response.reasonPhrase(response.status).utf8)
        out.append(contentsOf: "\r\n".utf8)
        var hasType = false
        for (k, v) in response.headers {
            if !hasType && k.utf8.count == 12 && k.lowercased() == "content-type" { hasType = true }
            out.append(contentsOf: k.utf8)
            out.append(contentsOf: ": ".utf8)
            // Header injection guard: a value never carries a line break.
            for c in v.utf8 where c != 0x0D && c != 0x0A { out.append(c) }
            out.append(contentsOf: "\r\n".utf8)
        }
        if !hasType { out.append(contentsOf: "Content-Type: application/json\r\n".utf8) }
        out.append(contentsOf: "X-Request-ID: ".utf8)
        out.append(contentsOf: requestID.utf8)
        out.append(contentsOf: "\r\nContent-Length: ".utf8)
        appendDecimal(response.body.count, to: &out)
        out.append(contentsOf: "\r\n\r\n".utf8)
        if !headOnly { out.append(contentsOf: response.body) }
        out.withUnsafeBytes { raw in
            _ = FCGX_PutStr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count), stream)
        }
        return headOnly ? 0 : response.body.count
    }

    static func appendDecimal(_ v: Int, to out: inout [UInt8]) {
        if v == 0 { out.append(UInt8(ascii: "0")); return }
        var d = 1
        while d <= v / 10 { d *= 10 }
        var v = v
        while d > 0 { out.append(UInt8(ascii: "0") + UInt8(v / d)); v %= d; d /= 10 }
    }
}
