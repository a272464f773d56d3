import Foundation
import Glibc

/// A blocking HTTP/1.1 client over a loopback TCP socket: one request per
/// connection, no threads of its own, so tests can run hundreds in parallel.
struct HTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] }
    var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
}

enum HTTPClientError: Error { case connect(Int32), io(String), timeout, malformed }

enum HTTPClient {
    /// `source`: the loopback address to connect from (Linux answers on all
    /// of 127.0.0.0/8), so one test can act as many clients. A `Host` in
    /// `headers` replaces the default `127.0.0.1`.
    static func request(port: Int, method: String = "GET", path: String, headers: [String: String] = [:],
                        body: [UInt8] = [], timeout: Double = 15, source: String? = nil) throws -> HTTPResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(headers["Host"] ?? "127.0.0.1")\r\nConnection: close\r\n"
        for (k, v) in headers where k != "Host" { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return try exchange(port: port, Array(head.utf8) + body, method: method, timeout: timeout, source: source)
    }

    /// Sends `out` as it is (a request nginx may have to refuse, too) and
    /// reads the answer to EOF.
    static func exchange(port: Int, _ out: [UInt8], method: String = "GET", timeout: Double = 15,
                         source: String? = nil) throws -> HTTPResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError.connect(errno) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { throw HTTPClientError.connect(errno) }
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw HTTPClientError.connect(errno) }
        var off = 0
        while off < out.count {
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if errno == EINTR { continue }
                // The server may answer (413) before reading the whole body.
                break
            }
            off += n
        }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw HTTPClientError.timeout }
                if data.isEmpty { throw HTTPClientError.io(String(cString: strerror(errno))) }
                break
            }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        return try parse(data, method: method)
    }

    static func parse(_ data: [UInt8], method: String) throws -> HTTPResponse {
        guard let sep = find(data, Array("\r\n\r\n".utf8)) else { throw HTTPClientError.malformed }
        let headText = String(decoding: data[0..<sep], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw HTTPClientError.malformed }
        var headers: [String: String] = [:]
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(data[(sep + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPResponse(status: status, headers: headers, body: method == "HEAD" ? [] : body)
    }

    static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }

    static func dechunk(_ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            guard let eol = find(Array(b[i...]), [13, 10]) else { break }
            let sizeText = String(decoding: b[i..<(i + eol)], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = i + eol + 2
            out.append(contentsOf: b[start..<min(b.count, start + size)])
            i = start + size + 2
        }
        return out
    }
}
