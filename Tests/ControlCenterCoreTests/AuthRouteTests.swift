@testable import ControlCenterCore
import Foundation
import XCTest

/// Login, me, change-password, logout, and every way a token can be refused.
class AuthRouteTests: StorageTestCase {
    func testLoginJSONAndFormReturnBearerToken() throws {
        _ = try h.makeUser("alice", role: "viewer", password: "alice-pass-1")
        for r in [h.call("POST", "/api/auth/login", json: ["username": "alice", "password": "alice-pass-1"]),
                  h.call("POST", "/api/auth/login/form", body: "username=alice&password=alice-pass-1&grant_type=password",
                         headers: ["content-type": "application/x-www-form-urlencoded"])] {
            XCTAssertEqual(r.status, 200)
            let o = try h.object(r)
            XCTAssertEqual(o["token_type"] as? String, "bearer")
            XCTAssertEqual(o["expires_in"] as? Int, 3600)
            let token = try XCTUnwrap(o["access_token"] as? String)
            let claims = try h.signer().verify(token, now: Clock.wallMillis() / 1000)
            XCTAssertEqual(claims.sub, "alice")
            XCTAssertEqual(claims.role, "viewer")
            XCTAssertEqual(claims.type, "access")
        }
        XCTAssertGreaterThanOrEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'auth.login' AND target = 'alice'"), 2)
        XCTAssertNotNil(try h.object(h.call("GET", "/api/auth/me", token: h.login("alice", "alice-pass-1")))["last_login"] as? String)
    }

    func testLoginBadInputIs4xxJSON() throws {
        let cases: [(Response, Int)] = [
            (h.call("POST", "/api/auth/login", body: "{not json", headers: ["content-type": "application/json"]), 400),
            (h.call("POST", "/api/auth/login", json: ["username": 5, "password": "x"]), 422),
            (h.call("POST", "/api/auth/login", json: ["username": "a"]), 422),
            (h.call("POST", "/api/auth/login", json: ["a", "b"]), 400),
            (h.call("POST", "/api/auth/login", json: ["username": "a", "password": true]), 422),
            (h.call("POST", "/api/auth/login", body: "", headers: [:]), 415),
            (h.call("POST", "/api/auth/login", body: "", headers: ["content-type": "application/json"]), 400),
            (h.call("POST", "/api/auth/login", body: "username=a", headers: ["content-type": "text/plain"]), 415),
            (h.call("POST", "/api/auth/login/form", body: "password=x",
                    headers: ["content-type": "application/x-www-form-urlencoded"]), 422),
            (h.call("POST", "/api/auth/login/form", json: ["username": "a", "password": "b"]), 415),
            (h.call("GET", "/api/auth/login"), 405),
        ]
        for (r, status) in cases {
            XCTAssertEqual(r.status, status, String(decoding: r.body, as: UTF8.self))
            XCTAssertNotNil(h.errorCode(r), "error envelope expected")
        }
    }

    func testWrongPasswordAndUnknownUserAre401WithChallenge() throws {
        _ = try h.makeUser("bob", role: "operator")
        for body in [["username": "bob", "password": "wrong-pass"], ["username": "nobody", "password": "whatever1"]] {
            let r = h.call("POST", "/api/auth/login", json: body)
            XCTAssertEqual(r.status, 401)
            XCTAssertEqual(r.header("WWW-Authenticate"), "Bearer")
            XCTAssertEqual(h.errorCode(r), "invalid_credentials")
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'auth.login_failed'"), 2)
    }

    func testFailedLoginsAreThrottledPerUsernameAndAddressAcrossWorkers() throws {
        _ = try h.makeUser("carol", role: "viewer", password: "carol-pass-1")
        for _ in 0..<LoginThrottle.perPair.threshold {
            XCTAssertEqual(h.call("POST", "/api/auth/login", json: ["username": "carol", "password": "nope-nope"]).status, 401)
        }
        // Even the right password is refused while locked, from the guessing address.
        let r = h.call("POST", "/api/auth/login", json: ["username": "carol", "password": "carol-pass-1"])
        XCTAssertEqual(r.status, 429)
        XCTAssertNotNil(r.header("Retry-After"))
        XCTAssertEqual(h.errorCode(r), "too_many_attempts")
        // Another worker (a second context on the same database) sees the same lock.
        let other = WorkerContext(config: h.config, log: Log(path: "off"))
        func fromOther(_ remote: String) -> Int {
            h.router.handle(Request(method: "POST", path: "/api/auth/login", headers: ["content-type": "application/json"],
                                    body: Array(#"{"username":"carol","password":"carol-pass-1"}"#.utf8),
                                    remoteAddress: remote), context: other).status
        }
        XCTAssertEqual(fromOther("10.0.0.1"), 429)
        XCTAssertEqual(fromOther("10.9.9.9"), 200, "the owner elsewhere is not locked out")
        StorageService.shared(other).close()
    }

    func testFailedLoginsAreThrottledPerAddress() throws {
        for i in 0..<LoginThrottle.perAddress.threshold {
            _ = h.call("POST", "/api/auth/login", json: ["username": "u\(i)", "password": "nope-nope"], remote: "192.0.2.7")
        }
        let r = h.call("POST", "/api/auth/login", json: ["username": "admin", "password": "nope-nope"], remote: "192.0.2.7")
        XCTAssertEqual(r.status, 429)
        XCTAssertEqual(h.call("POST", "/api/auth/login", json: ["username": "zed", "password": "nope-nope"],
                              remote: "192.0.2.8").status, 401)
    }

    func testMeNeedsAValidToken() throws {
        let (_, token) = try h.makeUser("dave", role: "viewer")
        let me = try h.object(h.call("GET", "/api/auth/me", token: token))
        XCTAssertEqual(me["username"] as? String, "dave")
        XCTAssertEqual(me["role"] as? String, "viewer")
        XCTAssertNil(me["password_hash"])

        let s = h.signer(), now = Clock.wallMillis() / 1000
        let claims = try s.verify(token, now: now)
        var expired = claims
        expired.iat = now - 7200
        expired.exp = now - 3600
        var parts = token.split(separator: ".").map(String.init)
        parts[1] = Base64URL.encode(Array(#"{"sub":"dave","user_id":1,"role":"admin","iat":1,"exp":99999999999,"jti":"x","type":"access","tv":0}"#.utf8))
        let forged = parts.joined(separator: ".")
        let otherKey = JWTSigner(secret: Array("another-secret-another-secret-xx".utf8)).sign(claims)
        let cases: [(String?, [String: String], String)] = [
            (nil, [:], "unauthorized"),
            (nil, ["authorization": "Basic YWRtaW46YWRtaW4="], "unauthorized"),
            ("garbage", [:], "invalid_token"),
            (s.sign(expired), [:], "invalid_token"),
            (forged, [:], "invalid_token"),
            (otherKey, [:], "invalid_token"),
        ]
        for (t, headers, code) in cases {
            let r = h.call("GET", "/api/auth/me", token: t, headers: headers)
            XCTAssertEqual(r.status, 401)
            XCTAssertEqual(h.errorCode(r), code)
            XCTAssertTrue(r.header("WWW-Authenticate")?.hasPrefix("Bearer") ?? false)
        }
    }

    func testUpdateMeChangesOnlyProfileFields() throws {
        let (_, token) = try h.makeUser("erin", role: "viewer")
        let evil = injectionStrings[0]
        let r = h.call("PUT", "/api/auth/me", json: ["email": "erin@example.com", "full_name": evil], token: token)
        XCTAssertEqual(r.status, 200)
        let o = try h.object(r)
        XCTAssertEqual(o["email"] as? String, "erin@example.com")
        XCTAssertEqual(o["full_name"] as? String, evil)
        XCTAssertEqual(h.call("PUT", "/api/auth/me", json: ["role": "admin"], token: token).status, 422)
        XCTAssertEqual(h.call("PUT", "/api/auth/me", json: ["email": "not-an-email"], token: token).status, 422)
        XCTAssertEqual(h.call("PUT", "/api/auth/me", json: ["full_name": 12], token: token).status, 422)
        XCTAssertEqual(h.call("PUT", "/api/auth/me", json: ["full_name": "x"]).status, 401)
        XCTAssertEqual(try h.object(h.call("GET", "/api/auth/me", token: token))["role"] as? String, "viewer")
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM users"), 2)
    }

    func testChangePasswordRevokesEveryOlderToken() throws {
        let (_, t1) = try h.makeUser("frank", role: "operator", password: "frank-old-12")
        let t2 = try h.login("frank", "frank-old-12")
        XCTAssertEqual(h.call("POST", "/api/auth/change-password",
                              json: ["current_password": "wrong-one", "new_password": "frank-new-12"], token: t1).status, 400)
        XCTAssertEqual(h.call("POST", "/api/auth/change-password",
                              json: ["current_password": "frank-old-12", "new_password": "short"], token: t1).status, 422)
        let r = h.call("POST", "/api/auth/change-password",
                       json: ["current_password": "frank-old-12", "new_password": "frank-new-12"], token: t1)
        XCTAssertEqual(r.status, 200)
        let fresh = try XCTUnwrap(try h.object(r)["access_token"] as? String)
        XCTAssertEqual(h.call("GET", "/api/auth/me", token: t1).status, 401)
        XCTAssertEqual(h.call("GET", "/api/auth/me", token: t2).status, 401)
        XCTAssertEqual(h.call("GET", "/api/auth/me", token: fresh).status, 200)
        XCTAssertEqual(h.call("POST", "/api/auth/login", json: ["username": "frank", "password": "frank-old-12"]).status, 401)
        XCTAssertEqual(h.call("POST", "/api/auth/login", json: ["username": "frank", "password": "frank-new-12"]).status, 200)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'auth.change_password' AND target = 'frank'"), 1)
    }

    func testLogoutRevokesTheTokenForEveryWorker() throws {
        let (_, token) = try h.makeUser("gina", role: "viewer")
        let other = try h.login("gina", "password-123")
        XCTAssertEqual(h.call("POST", "/api/auth/logout", token: token).status, 200)
        let r = h.call("GET", "/api/auth/me", token: token)
        XCTAssertEqual(r.status, 401)
        XCTAssertEqual(h.errorCode(r), "invalid_token")
        // A second worker context sees the revocation at once.
        let ctx2 = WorkerContext(config: h.config, log: Log(path: "off"))
        XCTAssertEqual(h.router.handle(Request(method: "GET", path: "/api/auth/me",
                                               headers: ["authorization": "Bearer \(token)"]), context: ctx2).status, 401)
        StorageService.shared(ctx2).close()
        XCTAssertEqual(h.call("GET", "/api/auth/me", token: other).status, 200, "other sessions stay valid")
        XCTAssertEqual(h.call("POST", "/api/auth/logout", token: token).status, 401)
        XCTAssertEqual(h.call("POST", "/api/auth/logout").status, 401)
    }

    func testDemotionAndDeactivationApplyOnTheNextRequest() throws {
        let (id, token) = try h.makeUser("hank", role: "operator")
        XCTAssertEqual(h.call("POST", "/api/events", json: ["message": "hi"], token: token).status, 201)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["role": "viewer"], token: h.adminToken).status, 200)
        let r = h.call("POST", "/api/events", json: ["message": "hi"], token: token)
        XCTAssertEqual(r.status, 403)
        XCTAssertTrue(r.header("WWW-Authenticate")?.hasPrefix("Bearer") ?? false)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["is_active": false], token: h.adminToken).status, 200)
        XCTAssertEqual(h.call("GET", "/api/auth/me", token: token).status, 401)
        XCTAssertEqual(h.call("POST", "/api/auth/login", json: ["username": "hank", "password": "password-123"]).status, 401)
    }

    func testInjectionStringsAsCredentialsDoNothing() throws {
        for s in injectionStrings {
            let r = h.call("POST", "/api/auth/login", json: ["username": s, "password": s])
            XCTAssertEqual(r.status, 401)
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM users"), 1)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'auth.login_failed' AND target = ?",
                                   [.text(Username.fold(injectionStrings[0]))]), 1)
    }
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class AuthRoutePostgresTests: AuthRouteTests {
    override class var engine: TestEngine { .postgres }
    override func testLoginJSONAndFormReturnBearerToken() throws { try super.testLoginJSONAndFormReturnBearerToken() }
    override func testLoginBadInputIs4xxJSON() throws { try super.testLoginBadInputIs4xxJSON() }
    override func testWrongPasswordAndUnknownUserAre401WithChallenge() throws { try super.testWrongPasswordAndUnknownUserAre401WithChallenge() }
    override func testFailedLoginsAreThrottledPerUsernameAndAddressAcrossWorkers() throws { try super.testFailedLoginsAreThrottledPerUsernameAndAddressAcrossWorkers() }
    override func testFailedLoginsAreThrottledPerAddress() throws { try super.testFailedLoginsAreThrottledPerAddress() }
    override func testMeNeedsAValidToken() throws { try super.testMeNeedsAValidToken() }
    override func testUpdateMeChangesOnlyProfileFields() throws { try super.testUpdateMeChangesOnlyProfileFields() }
    override func testChangePasswordRevokesEveryOlderToken() throws { try super.testChangePasswordRevokesEveryOlderToken() }
    override func testLogoutRevokesTheTokenForEveryWorker() throws { try super.testLogoutRevokesTheTokenForEveryWorker() }
    override func testDemotionAndDeactivationApplyOnTheNextRequest() throws { try super.testDemotionAndDeactivationApplyOnTheNextRequest() }
    override func testInjectionStringsAsCredentialsDoNothing() throws { try super.testInjectionStringsAsCredentialsDoNothing() }
}
