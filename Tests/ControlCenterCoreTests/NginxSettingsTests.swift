@testable import ControlCenterCore
import Foundation
import XCTest

/// The nginx-only settings (NginxSettings) and check-config's sources.
final class NginxSettingsTests: XCTestCase {
    private func settings(_ v: [String: String], root: Bool = false) throws -> NginxSettings {
        try NginxSettings(Config.Parser(values: v), isRoot: root)
    }

    func testDefaults() throws {
        let s = try settings([:])
        XCTAssertEqual(s.httpAddress, "127.0.0.1")
        XCTAssertEqual(s.workers, 2)
        XCTAssertEqual([s.streamBufferLength, s.streamBufferSeconds, s.streamMaxPerIP], [120, 120, 50])
        XCTAssertEqual([s.rateLimit, s.rateBurst, s.loginRateLimit], [50, 100, 10])
        XCTAssertNil(s.upstreamKeepalive)
        XCTAssertEqual(s.trustedProxies, [], "X-Forwarded-For is believed from nobody by default")
        XCTAssertEqual(s.rateLimitExempt.map(\.description), ["127.0.0.0/8", "::1"])
        XCTAssertEqual(s.allowedHosts, ["localhost", "127.0.0.1", "[::1]"])
    }

    /// The live channels are always on: a file still naming CC_NCHAN is refused like any unknown setting.
    func testNchanIsNoLongerASetting() throws {
        let file = NSTemporaryDirectory() + "cc-nchan-\(getpid()).conf"
        try "CC_NCHAN=false\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        XCTAssertThrowsError(try Config.load(environment: ["CC_CONFIG_FILE": file])) {
            XCTAssertTrue("\($0)".contains("unknown setting CC_NCHAN"), "\($0)")
        }
    }

    func testStreamBufferIsCountSlashSeconds() throws {
        let s = try settings(["CC_STREAM_BUFFER": "10/30"])
        XCTAssertEqual([s.streamBufferLength, s.streamBufferSeconds], [10, 30])
        for bad in ["10", "10/", "/30", "0/30", "10/0", "a/b", "10/30/5", "-1/30"] {
            XCTAssertThrowsError(try settings(["CC_STREAM_BUFFER": bad]), bad)
        }
    }

    func testNginxUserDefaultsToWwwDataOnlyForRoot() throws {
        XCTAssertEqual(try settings([:], root: true).user, "www-data")
        XCTAssertNil(try settings([:], root: false).user)
        XCTAssertEqual(try settings(["CC_NGINX_USER": "nginx"], root: false).user, "nginx")
        XCTAssertThrowsError(try settings(["CC_NGINX_USER": "www-data; daemon on"]))
    }

    func testCIDRListsAreValidated() throws {
        let s = try settings(["CC_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32,192.0.2.1", "CC_RATE_LIMIT_EXEMPT": ""])
        XCTAssertEqual(s.trustedProxies.map(\.description), ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"])
        XCTAssertEqual(s.rateLimitExempt, [], "an empty exemption list exempts nobody")
        for bad in ["10.0.0.0/33", "2001:db8::/129", "example.com", "10.0.0", "1.2.3.4/x", "10.0.0.0/8;"] {
            XCTAssertThrowsError(try settings(["CC_TRUSTED_PROXIES": bad]), bad)
            XCTAssertThrowsError(try settings(["CC_RATE_LIMIT_EXEMPT": bad]), bad)
        }
    }

    func testAllowedHostsFollowTheListenAddress() throws {
        XCTAssertEqual(try settings(["CC_HTTP_ADDR": "::1"]).allowedHosts, ["localhost", "127.0.0.1", "[::1]"])
        XCTAssertEqual(try settings(["CC_HTTP_ADDR": "[::1]"]).httpAddress, "::1")
        XCTAssertEqual(try settings(["CC_HTTP_ADDR": "192.0.2.10"]).allowedHosts.last, "192.0.2.10")
        XCTAssertEqual(try settings(["CC_HTTP_ADDR": "2001:db8::5"]).allowedHosts.last, "[2001:db8::5]")
        XCTAssertThrowsError(try settings(["CC_HTTP_ADDR": "0.0.0.0"]), "a wildcard listen needs CC_ALLOWED_HOSTS")
        XCTAssertThrowsError(try settings(["CC_HTTP_ADDR": "::"]))
        XCTAssertEqual(try settings(["CC_HTTP_ADDR": "0.0.0.0", "CC_ALLOWED_HOSTS": "CC.Example.org, *.example.net"]).allowedHosts,
                       ["cc.example.org", "*.example.net"])
        for bad in ["example.org:8080", "a b", "x;y", "\"x\"", ","] {
            XCTAssertThrowsError(try settings(["CC_ALLOWED_HOSTS": bad]), bad)
        }
        XCTAssertThrowsError(try settings(["CC_HTTP_ADDR": "localhost"]), "an address, not a name")
    }

    func testLoopbackAddresses() {
        for a in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] { XCTAssertTrue(CIDR.isLoopback(a), a) }
        for a in ["10.0.0.1", "::", "0.0.0.0", "2001:db8::1"] { XCTAssertFalse(CIDR.isLoopback(a), a) }
    }

    func testCheckConfigSourcesAndMasking() throws {
        let file = NSTemporaryDirectory() + "cc-sources-\(getpid()).conf"
        try "CC_WORKERS=6\nCC_RATE_LIMIT=7\nCC_DATABASE_URL=postgres://cc:filepw@db/cc\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let rows = try Config.settingSources(environment: [
            "CC_CONFIG_FILE": file, "CC_RATE_LIMIT": "9", "CC_RATE_LIMIT_EXEMPT": "", "CC_JWT_SECRET": String(repeating: "s", count: 40),
        ])
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0.name, ($0.value, $0.source)) })
        XCTAssertEqual(rows.count, Config.settings.count, "every setting is printed")
        XCTAssertEqual(byName["CC_WORKERS"]?.0, "6"); XCTAssertEqual(byName["CC_WORKERS"]?.1, .file)
        XCTAssertEqual(byName["CC_RATE_LIMIT"]?.0, "9"); XCTAssertEqual(byName["CC_RATE_LIMIT"]?.1, .environment)
        XCTAssertEqual(byName["CC_RATE_BURST"]?.0, "100"); XCTAssertEqual(byName["CC_RATE_BURST"]?.1, .default)
        XCTAssertEqual(byName["CC_RATE_LIMIT_EXEMPT"]?.0, "(empty)", "an empty exemption list is a value")
        XCTAssertEqual(byName["CC_RATE_LIMIT_EXEMPT"]?.1, .environment)
        XCTAssertEqual(byName["CC_DATABASE_URL"]?.0, "postgres://cc:***@db/cc")
        XCTAssertEqual(byName["CC_JWT_SECRET"]?.0, "*** (40 bytes)")
        XCTAssertFalse(rows.contains { $0.value.contains("filepw") || $0.value.contains("ssss") })
        XCTAssertEqual(Config.masked("CC_DATABASE_URL", "postgresql://db/cc?user=a&password=p1&sslmode=require"),
                       "postgresql://db/cc?user=a&password=***&sslmode=require")
        XCTAssertEqual(Config.masked("CC_DATABASE_URL", "sqlite:///var/cc.db"), "sqlite:///var/cc.db")
    }

    func testDefaultsThatDependOnOtherSettingsAreShownResolved() throws {
        let env = ["CC_STATE_DIR": "/srv/cc", "CC_HTTP_ADDR": "192.0.2.4"]
        let loaded = try Config(values: env)
        let rows = try Config.settingSources(environment: env, loaded: loaded)
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0.name, $0.value) })
        XCTAssertEqual(byName["CC_LISTEN"], "unix:/srv/cc/run/fcgi.sock")
        XCTAssertEqual(byName["CC_PID_FILE"], "/srv/cc/run/master.pid")
        XCTAssertEqual(byName["CC_ALLOWED_HOSTS"], "localhost,127.0.0.1,[::1],192.0.2.4")
        XCTAssertEqual(byName["CC_RATE_LIMIT"], "50")
    }
}
