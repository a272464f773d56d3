import Foundation
import XCTest

/// nginx and the router match paths by one rule (exact), so no spelling of a
/// path reaches a handler from outside the nginx location meant for it.
final class RouteMatchingThroughNginxTests: XCTestCase {
    func testTrailingSlashIsNotFoundJSON() throws {
        let s = try TestServer()
        let body = Array(#"{"username":"nobody","password":"wrong-password-here"}"#.utf8)
        // Outside nginx's login zone (location = /api/auth/login): must not log in.
        let login = try s.request("POST", "/api/auth/login/", headers: ["Content-Type": "application/json"], body: body)
        XCTAssertEqual(login.status, 404, login.text)
        XCTAssertEqual(login.errorCode, "not_found")
        XCTAssertNotNil((login.json?["error"] as? [String: Any])?["request_id"] as? String)
        // Outside the loopback-only location = /api/pool/status.
        XCTAssertEqual(try s.get("/api/pool/status/").status, 404)
        XCTAssertEqual(try s.get("/health/").status, 404)
        XCTAssertEqual(try s.get("/health").status, 200)
    }
}
