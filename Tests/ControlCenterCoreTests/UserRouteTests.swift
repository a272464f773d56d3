@testable import ControlCenterCore
import Foundation
import XCTest

/// Admin user management: register, list, get, update, delete, stats.
class UserRouteTests: StorageTestCase {
    func testRegisterCreatesUserAndAuditEvent() throws {
        let r = h.call("POST", "/api/auth/register",
                       json: ["username": "ivan", "password": "ivan-pass-123", "role": "user", "email": "ivan@example.org",
                              "full_name": "Ivan"], token: h.adminToken)
        XCTAssertEqual(r.status, 201)
        let o = try h.object(r)
        XCTAssertEqual(o["role"] as? String, "operator", "old alias user = operator")
        XCTAssertEqual(o["is_active"] as? Bool, true)
        XCTAssertNil(o["password_hash"])
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE source = 'audit' AND action = 'user.create' AND target = 'ivan' AND actor = 'admin'"), 1)
        let readonly = h.call("POST", "/api/auth/register", json: ["username": "ro", "password": "ro-pass-1234", "role": "readonly"],
                              token: h.adminToken)
        XCTAssertEqual(try h.object(readonly)["role"] as? String, "viewer")
        let dup = h.call("POST", "/api/auth/register", json: ["username": "ivan", "password": "another-pass-1"], token: h.adminToken)
        XCTAssertEqual(dup.status, 409)
        XCTAssertEqual(h.errorCode(dup), "username_taken")
    }

    func testRegisterValidatesEveryField() throws {
        let bad: [[String: Any]] = [
            [:],
            ["username": "x"],
            ["username": "x", "password": "short"],
            ["username": "", "password": "long-enough-pw"],
            ["username": String(repeating: "a", count: 65), "password": "long-enough-pw"],
            ["username": " padded", "password": "long-enough-pw"],
            ["username": "x", "password": "long-enough-pw", "role": "root"],
            ["username": "x", "password": "long-enough-pw", "role": 1],
            ["username": "x", "password": "long-enough-pw", "email": "nope"],
            ["username": "x", "password": "long-enough-pw", "is_admin": true],
            ["username": ["x"], "password": "long-enough-pw"],
            ["username": "x", "password": 12345678],
        ]
        for body in bad {
            let r = h.call("POST", "/api/auth/register", json: body, token: h.adminToken)
            XCTAssertEqual(r.status, 422, "\(body): \(String(decoding: r.body, as: UTF8.self))")
            XCTAssertEqual(h.errorCode(r), "validation_error")
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM users"), 1)
    }

    func testUserManagementNeedsAdmin() throws {
        let (opID, op) = try h.makeUser("oscar", role: "operator")
        let (_, viewer) = try h.makeUser("vera", role: "viewer")
        let routes: [(String, String, Any?)] = [
            ("POST", "/api/auth/register", ["username": "z", "password": "zzzzzzzzzzzz"]),
            ("GET", "/api/auth/users", nil),
            ("GET", "/api/auth/users/\(opID)", nil),
            ("PUT", "/api/auth/users/\(opID)", ["role": "admin"]),
            ("DELETE", "/api/auth/users/1", nil),
            ("GET", "/api/auth/stats", nil),
        ]
        for (m, p, body) in routes {
            XCTAssertEqual(h.call(m, p, json: body).status, 401, "\(m) \(p) without token")
            for t in [op, viewer] {
                let r = h.call(m, p, json: body, token: t)
                XCTAssertEqual(r.status, 403, "\(m) \(p)")
                XCTAssertEqual(h.errorCode(r), "forbidden")
            }
        }
        XCTAssertEqual(try h.object(h.call("GET", "/api/auth/me", token: op))["role"] as? String, "operator")
    }

    func testListGetUpdateDelete() throws {
        let (id, _) = try h.makeUser("judy", role: "viewer")
        let list = try h.object(h.call("GET", "/api/auth/users?limit=10", token: h.adminToken))
        XCTAssertEqual(list["total"] as? Int, 2)
        XCTAssertEqual((list["users"] as? [[String: Any]])?.map { $0["username"] as? String }, ["admin", "judy"])
        XCTAssertEqual(h.call("GET", "/api/auth/users?limit=0", token: h.adminToken).status, 400)
        XCTAssertEqual(h.call("GET", "/api/auth/users?offset=-1", token: h.adminToken).status, 400)

        XCTAssertEqual(try h.object(h.call("GET", "/api/auth/users/\(id)", token: h.adminToken))["username"] as? String, "judy")
        XCTAssertEqual(h.call("GET", "/api/auth/users/999", token: h.adminToken).status, 404)
        XCTAssertEqual(h.call("GET", "/api/auth/users/abc", token: h.adminToken).status, 400)
        XCTAssertEqual(h.call("GET", "/api/auth/users/1%20OR%201=1", token: h.adminToken).status, 400)

        let evil = injectionStrings[2]
        let up = h.call("PUT", "/api/auth/users/\(id)", json: ["role": "operator", "full_name": evil, "password": "judy-new-pass"],
                        token: h.adminToken)
        XCTAssertEqual(up.status, 200)
        XCTAssertEqual(try h.object(up)["role"] as? String, "operator")
        XCTAssertEqual(try h.object(up)["full_name"] as? String, evil)
        XCTAssertEqual(h.call("POST", "/api/auth/login", json: ["username": "judy", "password": "judy-new-pass"]).status, 200)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["is_active": "no"], token: h.adminToken).status, 422)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["is_active": 0], token: h.adminToken).status, 422)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["username": "new"], token: h.adminToken).status, 422)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/999", json: ["role": "viewer"], token: h.adminToken).status, 404)

        XCTAssertEqual(h.call("DELETE", "/api/auth/users/\(id)", token: h.adminToken).status, 200)
        XCTAssertEqual(h.call("DELETE", "/api/auth/users/\(id)", token: h.adminToken).status, 404)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM users"), 1)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action IN ('user.update', 'user.delete') AND target = 'judy'"), 2)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE data LIKE '%judy-new-pass%'"), 0, "no password in the audit data")
    }

    func testAdminCannotDeleteItselfOrRemoveTheLastAdmin() throws {
        let r = h.call("DELETE", "/api/auth/users/\(h.adminID)", token: h.adminToken)
        XCTAssertEqual(r.status, 409)
        XCTAssertEqual(h.errorCode(r), "cannot_delete_self")
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(h.adminID)", json: ["role": "viewer"], token: h.adminToken).status, 409)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(h.adminID)", json: ["is_active": false], token: h.adminToken).status, 409)
        let (id2, t2) = try h.makeUser("root2", role: "admin")
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(h.adminID)", json: ["role": "viewer"], token: t2).status, 200)
        XCTAssertEqual(h.call("DELETE", "/api/auth/users/\(h.adminID)", token: t2).status, 200)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id2)", json: ["role": "operator"], token: t2).status, 409)
    }

    func testStats() throws {
        _ = try h.makeUser("kim", role: "operator")
        _ = try h.makeUser("lee", role: "viewer")
        let o = try h.object(h.call("GET", "/api/auth/stats", token: h.adminToken))
        XCTAssertEqual(o["total_users"] as? Int, 3)
        XCTAssertEqual(o["active_users"] as? Int, 3)
        let roles = try XCTUnwrap(o["by_role"] as? [String: [String: Int]])
        XCTAssertEqual(roles["admin"]?["total"], 1)
        XCTAssertEqual(roles["operator"]?["total"], 1)
        XCTAssertEqual(roles["viewer"]?["total"], 1)
        XCTAssertNotNil(o["events"] as? Int)
    }
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class UserRoutePostgresTests: UserRouteTests {
    override class var engine: TestEngine { .postgres }
    override func testRegisterCreatesUserAndAuditEvent() throws { try super.testRegisterCreatesUserAndAuditEvent() }
    override func testRegisterValidatesEveryField() throws { try super.testRegisterValidatesEveryField() }
    override func testUserManagementNeedsAdmin() throws { try super.testUserManagementNeedsAdmin() }
    override func testListGetUpdateDelete() throws { try super.testListGetUpdateDelete() }
    override func testAdminCannotDeleteItselfOrRemoveTheLastAdmin() throws { try super.testAdminCannotDeleteItselfOrRemoveTheLastAdmin() }
    override func testStats() throws { try super.testStats() }
}
