import Foundation
import Glibc
import XCTest

/// Auth and events through the real stack: nginx, the storage pool, the
/// master's migration and first-admin bootstrap.
final class AuthThroughNginxTests: XCTestCase {
    nonisolated(unsafe) static var server: TestServer?

    override class func setUp() {
        server = try? TestServer(env: ["CC_TEST_ROUTES": "true", "CC_LOGIN_RATE_LIMIT": "600"])
    }

    override class func tearDown() {
        server?.stop()
        server = nil
    }

    var server: TestServer { get throws { try XCTUnwrap(Self.server, "test server did not start") } }

    /// The generated first-admin password: in a 0600 file the log names,
    /// never in the log itself.
    func adminPassword() throws -> String {
        let path = try server.stateDir + "/first-admin-password"
        let lines = try server.log().split(separator: "\n").filter { $0.contains("created the first admin") }
        XCTAssertEqual(lines.count, 1, "logged exactly once")
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(obj["password_file"] as? String, path)
        XCTAssertNil(obj["password"])
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let pw = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .newlines)
        XCTAssertNotEqual(pw, "admin123")
        XCTAssertGreaterThanOrEqual(pw.count, 20)
        XCTAssertFalse(try server.log().contains(pw), "the password is never logged")
        return pw
    }

    func post(_ path: String, _ json: Any, token: String? = nil) throws -> HTTPResponse {
        var h = ["Content-Type": "application/json"]
        if let token { h["Authorization"] = "Bearer \(token)" }
        return try server.request("POST", path, headers: h, body: Array(try JSONSerialization.data(withJSONObject: json)))
    }

    func testFirstAdminLoginEventsAndLogout() throws {
        XCTAssertEqual(try post("/api/auth/login", ["username": "admin", "password": "admin123"]).status, 401)
        let generated = try adminPassword()
        let login = try post("/api/auth/login", ["username": "admin", "password": generated])
        XCTAssertEqual(login.status, 200, login.text)
        let first = try XCTUnwrap(login.json?["access_token"] as? String)
        XCTAssertEqual(login.json?["token_type"] as? String, "bearer")
        let early = try post("/api/events", ["message": "too early"], token: first)
        XCTAssertEqual(early.status, 403)
        XCTAssertEqual(early.errorCode, "password_change_required")
        let changed = try post("/api/auth/change-password", ["current_password": generated,
                                                             "new_password": "a-better-admin-password"], token: first)
        XCTAssertEqual(changed.status, 200, changed.text)
        let token = try XCTUnwrap(changed.json?["access_token"] as? String)

        let none = try server.get("/api/auth/me")
        XCTAssertEqual(none.status, 401)
        XCTAssertEqual(none.errorCode, "unauthorized")
        XCTAssertEqual(none.headers["www-authenticate"], "Bearer")

        let created = try post("/api/events", ["message": "through nginx", "level": "info", "source": "it"], token: token)
        XCTAssertEqual(created.status, 201, created.text)
        let list = try server.get("/api/events?source=it", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(list.json?["count"] as? Int, 1)

        XCTAssertEqual(try post("/api/auth/logout", [String: String](), token: token).status, 200)
        let after = try server.get("/api/auth/me", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(after.status, 401, "revoked for every storage worker")
        XCTAssertEqual(after.errorCode, "invalid_token")
    }

    func testReadyReportsTheDatabase() throws {
        let r = try server.get("/health/ready")
        let checks = try XCTUnwrap(r.json?["checks"] as? [String: [String: Any]])
        XCTAssertEqual(checks["database"]?["ok"] as? Bool, true, r.text)
    }

    func testSlowDatabaseDoesNotHoldTheMainPool() throws {
        let slow = (0..<4).map { _ in
            Thread { _ = try? HTTPClient.request(port: Self.server!.port, path: "/api/test/db-sleep?ms=1500", timeout: 10) }
        }
        slow.forEach { $0.start() }
        Thread.sleep(forTimeInterval: 0.2)
        let started = Date()
        for _ in 0..<20 { XCTAssertEqual(try server.get("/health").status, 200) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "/health answered by the main pool meanwhile")
        Thread.sleep(forTimeInterval: 1.5)
    }
}
