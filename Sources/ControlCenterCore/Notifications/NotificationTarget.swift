import Foundation
import Glibc

/// Where the collector sends an alert rule's notifications: a generic JSON
/// webhook (Alertmanager's webhook shape) or an Alertmanager (`POST
/// {url}/api/v2/alerts`). Stored with the rule as JSON: `{"type", "url",
/// "headers"}`; `headers` may be left out.
///
/// The URL and header values may hold secrets (a token in a query or an
/// `Authorization` header): viewers get `masked`, never the stored form.
public struct NotificationTarget: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        case webhook, alertmanager
    }

    public var type: Kind
    public var url: String
    /// Extra request headers (an `Authorization` header, say).
    public var headers: [String: String]

    public init(type: Kind, url: String, headers: [String: String] = [:]) {
        self.type = type
        self.url = url
        self.headers = headers
    }

    private enum CodingKeys: String, CodingKey { case type, url, headers }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(Kind.self, forKey: .type)
        url = try c.decode(String.self, forKey: .url)
        headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
    }

    /// Limits that keep a target small and its headers well-formed.
    public static let maxURLBytes = 2048
    public static let maxHeaders = 20
    public static let maxHeaderValueBytes = 4096
    /// Headers the sender sets itself (RFC 9110 framing and the JSON body).
    public static let reservedHeaders: Set<String> = ["host", "content-type", "content-length", "transfer-encoding",
                                                      "connection", "expect", "te", "upgrade"]
    /// What `masked` shows in place of a hidden part.
    public static let hidden = "***"

    /// Checks the target for storing with a rule; throws a 400 APIError
    /// (code `invalid_target`) naming the first problem:
    /// - the URL is http or https, with a host and no userinfo (RFC 3986
    ///   §3.2.1: credentials in a URL end up in logs; use a header);
    /// - every address the host resolves to (`resolve`, getaddrinfo(3) by
    ///   default) is inside `allow` (CC_ALERT_TARGET_ALLOW), so that a rule
    ///   cannot make the collector reach into networks it should not. The
    ///   Notifier checks again each address it connects to, as a name may
    ///   resolve elsewhere later;
    /// - an Alertmanager URL is a base (no query): `/api/v2/alerts` is appended;
    /// - header names are RFC 9110 tokens, not one the sender sets itself,
    ///   and values hold no CR, LF or NUL.
    public func validate(allow: [CIDR], resolve: (String) -> [String]? = NotificationTarget.resolve) throws {
        func bad(_ message: String) -> APIError { APIError.badRequest(message, code: "invalid_target") }
        guard url.utf8.count <= Self.maxURLBytes else { throw bad("target url is longer than \(Self.maxURLBytes) bytes") }
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased() else {
            throw bad("target url is not a URL")
        }
        guard scheme == "http" || scheme == "https" else { throw bad("target url must be http or https, got \(scheme)") }
        guard c.user == nil && c.password == nil else {
            throw bad("target url must not carry credentials (user:password@); send them in a header")
        }
        guard let host = Self.bareHost(c.host), !host.isEmpty else { throw bad("target url has no host") }
        if type == .alertmanager && (c.query != nil || c.fragment != nil) {
            throw bad("an alertmanager url is its base, such as http://127.0.0.1:9093, with no query")
        }
        let addresses = Self.isAddressLiteral(host) ? [host] : (resolve(host) ?? [])
        guard !addresses.isEmpty else { throw bad("target host \(host) does not resolve") }
        for address in addresses where !Self.isAllowed(address, allow: allow) {
            throw bad("target host \(host) is \(address), outside CC_ALERT_TARGET_ALLOW")
        }
        guard headers.count <= Self.maxHeaders else { throw bad("a target has at most \(Self.maxHeaders) headers") }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else { throw bad("header name '\(name)' is not a token") }
            guard !Self.reservedHeaders.contains(name.lowercased()) else { throw bad("header \(name) is set by the sender") }
            guard value.utf8.count <= Self.maxHeaderValueBytes, !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
                throw bad("header \(name): the value is longer than \(Self.maxHeaderValueBytes) bytes or holds CR, LF or NUL")
            }
        }
    }

    /// The form a viewer may see: scheme, host and port of the URL, its path
    /// and query replaced by `hidden`, and every header value hidden.
    public var masked: NotificationTarget {
        var shown = Self.hidden
        if let c = URLComponents(string: url), let scheme = c.scheme, let host = Self.bareHost(c.host) {
            shown = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)\(c.port.map { ":\($0)" } ?? "")"
            if !(c.percentEncodedPath.isEmpty || c.percentEncodedPath == "/") || c.query != nil || c.fragment != nil {
                shown += "/" + Self.hidden
            }
        }
        return NotificationTarget(type: type, url: shown, headers: headers.mapValues { _ in Self.hidden })
    }

    /// True when `address` (an IP literal) is inside one of `allow`; an
    /// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as its IPv4 address.
    public static func isAllowed(_ address: String, allow: [CIDR]) -> Bool {
        var candidates = [address]
        let lower = address.lowercased()
        if lower.hasPrefix("::ffff:"), isAddressLiteral(String(lower.dropFirst(7))) { candidates.append(String(lower.dropFirst(7))) }
        return candidates.contains { a in allow.contains { $0.contains(a) } }
    }

    /// The addresses getaddrinfo(3) gives for `host` (as inet_ntop(3) prints
    /// them), nil when it fails.
    public static func resolve(_ host: String) -> [String]? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return nil }
        defer { freeaddrinfo(list) }
        var out: [String] = []
        var node = list
        while let n = node {
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if n.pointee.ai_family == AF_INET {
                n.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { var a = $0.pointee.sin_addr; _ = inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count)) }
            } else if n.pointee.ai_family == AF_INET6 {
                n.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { var a = $0.pointee.sin6_addr; _ = inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) }
            }
            let text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !text.isEmpty && !out.contains(text) { out.append(text) }
            node = n.pointee.ai_next
        }
        return out
    }

    static func isAddressLiteral(_ host: String) -> Bool {
        var buf = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, host, &buf) == 1 || inet_pton(AF_INET6, host, &buf) == 1
    }

    /// URLComponents keeps an IPv6 literal's brackets on some platforms.
    static func bareHost(_ host: String?) -> String? {
        guard var h = host else { return nil }
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        return h
    }

    /// RFC 9110 §5.6.2 tchar.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }
}
