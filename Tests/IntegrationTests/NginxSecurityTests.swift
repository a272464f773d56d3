@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The nginx side of issue 9's security findings, through a real nginx and
/// pool: who the client is (X-Forwarded-For, the rate-limit exemption), the
/// Host check, nginx's own error answers, and the nginx user.
final class NginxSecurityTests: XCTestCase {
    /// The workers' access-log line of one request.
    private func accessLine(_ s: TestServer, _ requestID: String) throws -> [String: Any] {
        XCTAssertTrue(waitUntil(5) { s.accessLog().contains(requestID) }, "access line for \(requestID)")
        let line = try XCTUnwrap(s.accessLog().split(separator: "\n").first { $0.contains(requestID) })
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    private func assertSecurityHeaders(_ r: HTTPResponse, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.headers["x-content-type-options"], "nosniff", what, file: file, line: line)
        XCTAssertEqual(r.headers["x-frame-options"], "DENY", what, file: file, line: line)
        XCTAssertEqual(r.headers["cache-control"], "no-store", what, file: file, line: line)
        XCTAssertNotNil(r.headers["content-security-policy"], what, file: file, line: line)
        XCTAssertEqual(r.headers["content-type"], "application/json", what, file: file, line: line)
    }

    func testXForwardedForIsIgnoredUnlessTheProxyIsTrusted() throws {
        let plain = try TestServer()
        let r = try plain.get("/health", headers: ["X-Forwarded-For": "1.2.3.4"])
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try accessLine(plain, try XCTUnwrap(r.headers["x-request-id"]))["remote"] as? String, "127.0.0.1",
                       "by default the client is the peer, whatever it claims")
        plain.stop()

        let proxied = try TestServer(env: ["CC_TRUSTED_PROXIES": "127.0.0.1/32,::1"])
        defer { proxied.stop() }
        let p = try proxied.get("/health", headers: ["X-Forwarded-For": "1.2.3.4"])
        XCTAssertEqual(try accessLine(proxied, try XCTUnwrap(p.headers["x-request-id"]))["remote"] as? String, "1.2.3.4",
                       "a trusted proxy names the client")
    }

    func testRateLimitExemptionCanBeTurnedOffAndLimitsAnswerJSON() throws {
        let s = try TestServer(env: ["CC_RATE_LIMIT_EXEMPT": "", "CC_RATE_LIMIT": "1", "CC_RATE_BURST": "0"])
        defer { s.stop() }
        var limited: HTTPResponse?
        for _ in 0..<5 {
            let r = try s.get("/api/system/stats", source: "127.0.0.7")
            if r.status == 429 { limited = r; break }
        }
        let r = try XCTUnwrap(limited, "127.0.0.7 is limited once loopback is no longer exempt")
        XCTAssertEqual(r.errorCode, "rate_limited")
        XCTAssertEqual(r.headers["retry-after"], "1")
        assertSecurityHeaders(r, "429")
        XCTAssertNotEqual(try s.get("/api/system/stats", source: "127.0.0.8").status, 429, "another address is another client")
    }

    func testOnlyAllowedHostsAreServed() throws {
        let s = try TestServer()
        defer { s.stop() }
        for host in ["127.0.0.1:\(s.port)", "localhost", "LOCALHOST:\(s.port)", "[::1]:\(s.port)", "127.0.0.1"] {
            XCTAssertEqual(try s.get("/health", headers: ["Host": host]).status, 200, host)
        }
        for host in ["evil.example", "evil.example:\(s.port)", "127.0.0.2", "localhost.evil.example"] {
            let r = try s.get("/health", headers: ["Host": host])
            XCTAssertEqual(r.status, 421, host)
            XCTAssertEqual(r.errorCode, "misdirected_request", host)
            assertSecurityHeaders(r, host)
        }
        // 127.0.0.1 for TestServer's own readiness check.
        let other = try TestServer(env: ["CC_ALLOWED_HOSTS": "cc.example.org,127.0.0.1"])
        defer { other.stop() }
        XCTAssertEqual(try other.get("/health", headers: ["Host": "cc.example.org:\(other.port)"]).status, 200)
        XCTAssertEqual(try other.get("/health", headers: ["Host": "localhost"]).status, 421)
    }

    func testNginxOwnErrorsAreJSONWithTheSecurityHeaders() throws {
        let s = try TestServer()
        defer { s.stop() }
        let cases: [(String, [UInt8], Int, String)] = [
            ("bad request line", Array("GARBAGE\r\n\r\n".utf8), 400, "bad_request"),
            ("long URI", Array("GET /\(String(repeating: "a", count: 10_000)) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8),
             414, "uri_too_long"),
            ("huge header", Array("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: \(String(repeating: "b", count: 10_000))\r\n\r\n".utf8),
             431, "header_too_large"),
            ("TRACE", Array("TRACE / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8), 405, "method_not_allowed"),
        ]
        for (what, bytes, status, code) in cases {
            let r = try HTTPClient.exchange(port: s.port, bytes, timeout: 10)
            XCTAssertEqual(r.status, status, what)
            XCTAssertEqual(r.errorCode, code, "\(what): \(r.text)")
            XCTAssertNotNil((r.json?["error"] as? [String: Any])?["request_id"] as? String, what)
            assertSecurityHeaders(r, what)
        }
    }

    func testBenchLocationsAreNotServed() throws {
        let s = try TestServer()
        defer { s.stop() }
        for path in ["/__bench/return200", "/__bench/static/processes.json", "/__bench/fcgi-bare"] {
            XCTAssertEqual(try s.get(path).status, 404, path)
        }
    }

    func testViewsGoToWorkersForRequestsWithCredentials() throws {
        let s = try TestServer(env: ["CC_CACHE_TTL_STATS": "30"])
        defer { s.stop() }
        XCTAssertEqual(try s.get("/api/system/stats").status, 200) // a worker writes the view
        usleep(30_000)
        let anonymous = try s.get("/api/system/stats")
        XCTAssertEqual(try accessLine(s, try XCTUnwrap(anonymous.headers["x-request-id"]))["served_by"] as? String,
                       "nginx-view", "the anonymous view")
        for headers in [["Authorization": "Bearer x.y.z"], ["Cookie": "cc_session=abc"],
                        ["Cookie": "theme=dark; cc_session=abc"]] {
            let r = try s.get("/api/system/stats", headers: headers)
            let id = try XCTUnwrap(r.headers["x-request-id"], "\(headers)")
            XCTAssertNil(try accessLine(s, id)["served_by"], "\(headers): a worker answers (by role)")
        }
        let otherCookie = try s.get("/api/system/stats", headers: ["Cookie": "theme=dark"])
        XCTAssertEqual(try accessLine(s, try XCTUnwrap(otherCookie.headers["x-request-id"]))["served_by"] as? String,
                       "nginx-view", "a cookie that is no session changes nothing")
    }

    func testSocketsAreSharedWithNginxsGroupOnlyAndNginxWorkersAreNotRoot() throws {
        // A private state directory (mktemp -d makes 0700) must still let
        // nginx's workers reach the sockets: the master adds search permission.
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("cc-priv-\(getpid())-\(UUID().uuidString.prefix(6))").path
        XCTAssertEqual(mkdir(state, 0o700), 0)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let s = try TestServer(env: ["CC_STATE_DIR": state])
        defer { s.stop() }
        let root = geteuid() == 0
        for name in ["fcgi.sock", "fcgi-storage.sock"] {
            var st = stat()
            XCTAssertEqual(stat(s.stateDir + "/run/" + name, &st), 0)
            XCTAssertEqual(st.st_mode & 0o777, 0o660, name)
            XCTAssertEqual(st.st_gid, root ? getpwnam("www-data").pointee.pw_gid : getegid(), name)
        }
        XCTAssertEqual(try s.get("/health").status, 200)
        XCTAssertEqual(try s.get("/api/system/processes?limit=1").status, 200)
        guard root else { throw XCTSkip("nginx's user is only set when started as root") }
        let master = try XCTUnwrap(Int32(try String(contentsOfFile: s.stateDir + "/nginx/nginx.pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        let workers = TestServer.children(of: master)
        XCTAssertFalse(workers.isEmpty)
        let wwwData = getpwnam("www-data").pointee.pw_uid
        for w in workers {
            let status = try String(contentsOfFile: "/proc/\(w)/status", encoding: .utf8)
            let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().first
            XCTAssertEqual(uid.flatMap { UInt32($0) }, wwwData, "nginx worker \(w) runs as www-data")
        }
    }
}
