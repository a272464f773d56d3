import Foundation
import Glibc

/// The settings only nginx's configuration uses (rendered by
/// `control-center nginx-config`); defaults are in Config.settings' table
/// and here, nowhere else.
public struct NginxSettings: Sendable, Equatable {
    /// Address nginx listens on (CC_HTTP_ADDR), an IPv4 or IPv6 literal
    /// without brackets.
    public var httpAddress: String
    /// nginx worker processes (CC_NGINX_WORKERS).
    public var workers: Int
    /// Messages nchan keeps per channel, and for how many seconds
    /// (CC_STREAM_BUFFER, `COUNT/SECONDS`).
    public var streamBufferLength: Int
    public var streamBufferSeconds: Int
    /// Live subscriptions per client address (CC_STREAM_MAX_PER_IP).
    public var streamMaxPerIP: Int
    /// Channels the system channel is split into (CC_STREAM_SHARDS): nginx
    /// puts each client address in one, and the collector publishes to
    /// them one after another, so that no single fan-out holds nginx's
    /// workers for long.
    public var streamShards: Int
    /// limit_req rate on /api/, requests per second per client (CC_RATE_LIMIT).
    public var rateLimit: Int
    /// limit_req burst (CC_RATE_BURST).
    public var rateBurst: Int
    /// Login attempts per minute per client (CC_LOGIN_RATE_LIMIT).
    public var loginRateLimit: Int
    /// Kept-alive FastCGI connections per upstream, nil = none
    /// (CC_NGINX_KEEPALIVE; only for measuring: harmful with libfcgi).
    public var upstreamKeepalive: Int?
    /// Proxies whose X-Forwarded-For nginx believes (CC_TRUSTED_PROXIES).
    public var trustedProxies: [CIDR]
    /// Client networks exempt from nginx's limit_req (CC_RATE_LIMIT_EXEMPT).
    public var rateLimitExempt: [CIDR]
    /// Host header names served, lowercase, without port (CC_ALLOWED_HOSTS).
    public var allowedHosts: [String]
    /// User nginx's workers run as (CC_NGINX_USER); nil leaves nginx's
    /// workers as the user that starts nginx.
    public var user: String?
    /// The dashboard's static files that nginx serves under `/ui/`
    /// (CC_WEB_DIR); absolute.
    public var webDir: String

    /// Lists whose empty value means "none" rather than "the default".
    static let emptyIsAValue: Set<String> = ["CC_TRUSTED_PROXIES", "CC_RATE_LIMIT_EXEMPT"]

    /// The `web/` folder of the source tree this binary was built from: what
    /// Scripts/run and the tests serve. An installed binary sets CC_WEB_DIR.
    static let sourceWebDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("web").path

    static let loopbackHosts = ["localhost", "127.0.0.1", "[::1]"]

    init(_ p: Config.Parser, isRoot: Bool = geteuid() == 0) throws {
        var addr = p.string("CC_HTTP_ADDR") ?? "127.0.0.1"
        if addr.hasPrefix("[") && addr.hasSuffix("]") { addr = String(addr.dropFirst().dropLast()) }
        guard let parsed = try? CIDR(parsing: addr), !addr.contains("/") else {
            throw ConfigError("CC_HTTP_ADDR must be an IPv4 or IPv6 address, got '\(addr)'")
        }
        httpAddress = parsed.address
        workers = try p.int("CC_NGINX_WORKERS", default: 2, range: 1...256)
        (streamBufferLength, streamBufferSeconds) = try Self.streamBuffer(p.string("CC_STREAM_BUFFER") ?? "120/120")
        streamMaxPerIP = try p.int("CC_STREAM_MAX_PER_IP", default: 50, range: 1...1_000_000)
        streamShards = try p.int("CC_STREAM_SHARDS", default: 16, range: 1...64)
        rateLimit = try p.int("CC_RATE_LIMIT", default: 50, range: 1...1_000_000)
        rateBurst = try p.int("CC_RATE_BURST", default: 100, range: 0...1_000_000)
        loginRateLimit = try p.int("CC_LOGIN_RATE_LIMIT", default: 10, range: 1...100_000)
        upstreamKeepalive = p.string("CC_NGINX_KEEPALIVE") == nil
            ? nil : try p.int("CC_NGINX_KEEPALIVE", default: 0, range: 1...10_000)
        trustedProxies = try CIDR.list(p.values["CC_TRUSTED_PROXIES"] ?? "", setting: "CC_TRUSTED_PROXIES")
        rateLimitExempt = try CIDR.list(p.values["CC_RATE_LIMIT_EXEMPT"] ?? "127.0.0.0/8,::1", setting: "CC_RATE_LIMIT_EXEMPT")
        allowedHosts = try Self.hosts(p.string("CC_ALLOWED_HOSTS"), listen: httpAddress)
        if let u = p.string("CC_NGINX_USER") {
            guard u.range(of: #"^[a-z_][a-z0-9_.-]{0,31}$"#, options: .regularExpression) != nil else {
                throw ConfigError("CC_NGINX_USER must be a user name, got '\(u)'")
            }
            user = u
        } else {
            user = isRoot ? "www-data" : nil
        }
        webDir = Config.absolute(p.string("CC_WEB_DIR") ?? Self.sourceWebDir)
    }

    /// `COUNT/SECONDS`, both whole and positive.
    static func streamBuffer(_ text: String) throws -> (Int, Int) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), let s = Int(parts[1]), (1...100_000).contains(n),
              (1...86_400).contains(s) else {
            throw ConfigError("CC_STREAM_BUFFER must be COUNT/SECONDS (1...100000 messages, 1...86400 s), got '\(text)'")
        }
        return (n, s)
    }

    /// The Host names served. Unset: the loopback names, plus the listen
    /// address itself when that is not loopback (a client that reaches it by
    /// address); a wildcard listen address has no such default and needs
    /// the setting. Names are case-insensitive (RFC 9110 section 4.2.3), so
    /// they are kept lowercase; a port is never part of them.
    static func hosts(_ text: String?, listen: String) throws -> [String] {
        guard let text else {
            if CIDR.isLoopback(listen) { return loopbackHosts }
            if listen == "0.0.0.0" || listen == "::" {
                throw ConfigError("CC_HTTP_ADDR \(listen) listens on every address: set CC_ALLOWED_HOSTS to the names clients use")
            }
            return loopbackHosts + [listen.contains(":") ? "[\(listen)]" : listen]
        }
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        for n in names {
            // Names go into nginx's configuration: nothing that could end a token.
            let ok = n.range(of: #"^(\[[0-9a-f:.]+\]|\*?[a-z0-9.-]+)$"#, options: .regularExpression) != nil
            guard ok else { throw ConfigError("CC_ALLOWED_HOSTS: '\(n)' is not a host name or address (no port)") }
        }
        guard !names.isEmpty else { throw ConfigError("CC_ALLOWED_HOSTS is empty: no request could be served") }
        return names
    }
}
