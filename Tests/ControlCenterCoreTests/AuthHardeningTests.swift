@testable import ControlCenterCore
import Foundation
import XCTest

/// The findings of issue 9 §3 on accounts and storage: lockout by strangers,
/// the first admin's password, the last-admin race, look-alike usernames,
/// weak passwords, forged audit events, tokens that outlive a disable, and
/// lenient JSON.
class AuthHardeningTests: StorageTestCase {
    func login(_ user: String, _ password: String, from remote: String) -> Response {
        h.call("POST", "/api/auth/login", json: ["username": user, "password": password], remote: remote)
    }

    // MARK: lockout

    func testStrangersGuessingFromManyAddressesCannotLockTheOwnerOut() throws {
        _ = try h.makeUser("owner", role: "operator", password: "owner-password-1")
        var throttled = 0
        for attempt in 0..<1000 {
            let r = login("owner", "guess-\(attempt)", from: "127.0.0.\(attempt % 50 + 1)")
            XCTAssertTrue(r.status == 401 || r.status == 429, "attempt \(attempt): \(r.status)")
            if r.status == 429 {
                throttled += 1
                XCTAssertNotNil(r.header("Retry-After"))
            }
        }
        XCTAssertGreaterThan(throttled, 500, "guessing stays throttled per address and pair")
        let started = Date()
        let r = login("owner", "owner-password-1", from: "127.0.0.200")
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
    }

    func testFailuresLockTheUsernameAndAddressPairOnly() throws {
        _ = try h.makeUser("pairuser", role: "viewer", password: "pairuser-pass-1")
        for _ in 0..<LoginThrottle.perPair.threshold {
            XCTAssertEqual(login("pairuser", "wrong-password", from: "198.51.100.1").status, 401)
        }
        let locked = login("pairuser", "pairuser-pass-1", from: "198.51.100.1")
        XCTAssertEqual(locked.status, 429, "the guessing address stays locked even with the right password")
        XCTAssertEqual(h.errorCode(locked), "too_many_attempts")
        XCTAssertEqual(login("PairUser", "pairuser-pass-1", from: "198.51.100.1").status, 429, "the pair key folds the name")
        XCTAssertEqual(login("pairuser", "pairuser-pass-1", from: "198.51.100.2").status, 200)
        XCTAssertEqual(login("admin", StorageHarness.adminPassword, from: "198.51.100.1").status, 200,
                       "other accounts from that address are limited only by the address's own budget")
    }

    // MARK: first admin

    func testFirstAdminPasswordGoesToA0600FileAndMustBeChanged() throws {
        let fresh = try StorageHarness(Self.engine, changeFirstAdminPassword: false)
        let path = fresh.dir + "/first-admin-password"
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let generated = fresh.generatedAdminPassword
        XCTAssertGreaterThanOrEqual(generated.count, 20)
        let log = try String(contentsOfFile: fresh.logPath, encoding: .utf8)
        XCTAssertTrue(log.contains(path), "the log names the file")
        XCTAssertFalse(log.contains(generated), "the log never holds the password")

        let first = try fresh.login("admin", generated)
        for (method, route) in [("GET", "/api/auth/users"), ("GET", "/api/events"), ("GET", "/api/auth/stats"),
                                ("PUT", "/api/auth/users/1")] {
            let r = fresh.call(method, route, json: method == "PUT" ? ["full_name": "x"] : nil, token: first)
            XCTAssertEqual(r.status, 403, "\(method) \(route)")
            XCTAssertEqual(fresh.errorCode(r), "password_change_required")
        }
        let me = fresh.call("GET", "/api/auth/me", token: first)
        XCTAssertEqual(me.status, 200)
        XCTAssertEqual(try fresh.object(me)["must_change_password"] as? Bool, true)
        let changed = fresh.call("POST", "/api/auth/change-password",
                                 json: ["current_password": generated, "new_password": "a-new-admin-password"], token: first)
        XCTAssertEqual(changed.status, 200)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the changed password's file is deleted")
        let token = try XCTUnwrap(try fresh.object(changed)["access_token"] as? String)
        XCTAssertEqual(fresh.call("GET", "/api/auth/users", token: token).status, 200)
        XCTAssertEqual(try fresh.object(fresh.call("GET", "/api/auth/me", token: token))["must_change_password"] as? Bool, false)

        // Only the generated admin is marked, and a restart marks nobody.
        let other = fresh.call("POST", "/api/auth/register", json: ["username": "second", "password": "second-admin-pw",
                                                                    "role": "admin"], token: token)
        XCTAssertEqual(try fresh.object(other)["must_change_password"] as? Bool, false)
        XCTAssertNil(try StorageSetup.prepare(fresh.config, log: Log(path: "off")).adminPasswordFile)
        XCTAssertEqual(try fresh.count("SELECT COUNT(*) FROM users WHERE must_change_password = 1"), 0)
    }

    func testLogoutStaysOpenBeforeThePasswordChange() throws {
        let fresh = try StorageHarness(Self.engine, changeFirstAdminPassword: false)
        let first = try fresh.login("admin", fresh.generatedAdminPassword)
        XCTAssertEqual(fresh.call("POST", "/api/auth/logout", token: first).status, 200)
    }

    // MARK: last admin

    /// Two admins remove each other at the same moment, each from its own
    /// worker (connection), many times over: there is always an admin left.
    func testConcurrentAdminRemovalsNeverLeaveNoAdmin() throws {
        var admins: [(id: Int64, token: String)] = [(h.adminID, h.adminToken)]
        let rounds = 20
        for round in 0..<rounds {
            while admins.count < 2 {
                let name = "adm\(round)x\(admins.count)"
                let r = h.call("POST", "/api/auth/register", json: ["username": name, "password": "admin-pass-long", "role": "admin"],
                               token: admins[0].token)
                XCTAssertEqual(r.status, 201, String(decoding: r.body, as: UTF8.self))
                let id = try XCTUnwrap(try h.object(r)["id"] as? Int)
                admins.append((Int64(id), try h.login(name, "admin-pass-long")))
            }
            let (a, b) = (admins[0], admins[1])
            // Alternate the ways an admin can be removed.
            let bodyAB: Any? = round % 3 == 1 ? ["role": "viewer"] : round % 3 == 2 ? ["is_active": false] : nil
            let bodyBA: Any? = round % 3 == 1 ? ["is_active": false] : round % 3 == 2 ? ["role": "operator"] : nil
            let method = round % 3 == 0 ? "DELETE" : "PUT"
            let statuses = try race([(method, "/api/auth/users/\(b.id)", bodyAB, a.token),
                                     (method, "/api/auth/users/\(a.id)", bodyBA, b.token)])
            let left = try h.count("SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active = 1")
            XCTAssertGreaterThanOrEqual(left, 1, "round \(round): \(statuses) left no admin")
            if left == 0 { return }
            XCTAssertTrue(statuses.contains(409) || statuses.contains(401) || statuses.contains(403), "round \(round): \(statuses)")
            admins = admins.filter { (try? h.count("SELECT COUNT(*) FROM users WHERE id = ? AND role = 'admin' AND is_active = 1",
                                                   [.int($0.id)])) == 1 }
        }
    }

    /// Runs the requests at once, each on its own worker context and thread.
    func race(_ calls: [(String, String, Any?, String)]) throws -> [Int] {
        let box = RaceBox(config: h.config, router: h.router, calls: calls.map { c in
            var bytes: [UInt8] = []
            var headers = ["authorization": "Bearer \(c.3)"]
            if let json = c.2 {
                bytes = Array(try! JSONSerialization.data(withJSONObject: json))
                headers["content-type"] = "application/json"
            }
            return Request(method: c.0, path: c.1, headers: headers, body: bytes, remoteAddress: "10.0.0.1")
        })
        box.run()
        return box.statuses
    }

    // MARK: usernames and passwords

    func testUsernamesAreFoldedAndInvisibleCharactersRefused() throws {
        let r = h.call("POST", "/api/auth/register", json: ["username": "PROBE-VIEWER", "password": "probe-viewer-pw"],
                       token: h.adminToken)
        XCTAssertEqual(r.status, 201)
        XCTAssertEqual(try h.object(r)["username"] as? String, "probe-viewer")
        for twin in ["probe-viewer", "Probe-Viewer", "ＰＲＯＢＥ-ｖｉｅｗｅｒ"] {
            let dup = h.call("POST", "/api/auth/register", json: ["username": twin, "password": "probe-viewer-pw"],
                             token: h.adminToken)
            XCTAssertEqual(dup.status, 409, twin)
        }
        XCTAssertEqual(login("Probe-VIEWER", "probe-viewer-pw", from: "10.0.0.5").status, 200)
        XCTAssertEqual(login("ｐｒｏｂｅ-ｖｉｅｗｅｒ", "probe-viewer-pw", from: "10.0.0.5").status, 200)

        let composed = h.call("POST", "/api/auth/register", json: ["username": "Re\u{0301}ne", "password": "rene-password"],
                              token: h.adminToken)
        XCTAssertEqual(try h.object(composed)["username"] as? String, "r\u{e9}ne")
        XCTAssertEqual(login("R\u{c9}NE", "rene-password", from: "10.0.0.5").status, 200)

        for bad in ["ad\u{202E}nim", "ad\u{200B}min", "x\u{FEFF}", "\u{2066}evil", "a\u{200D}b", "\u{0301}abc",
                    "a\u{0301}\u{0302}\u{0303}\u{0304}", "\u{3164}x", "line\u{2028}break", "tab\there", "a\u{E000}"] {
            let r = h.call("POST", "/api/auth/register", json: ["username": bad, "password": "long-enough-pw"],
                           token: h.adminToken)
            XCTAssertEqual(r.status, 422, bad.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " "))
        }
    }

    func testPasswordRulesApplyWhenAPasswordIsSet() throws {
        for bad in ["short-pass1", String(repeating: " ", count: 12), String(repeating: "\t", count: 16),
                    String(repeating: "p", count: 1025)] {
            let r = h.call("POST", "/api/auth/register", json: ["username": "pw-user", "password": bad], token: h.adminToken)
            XCTAssertEqual(r.status, 422, "\(bad.count) characters")
        }
        XCTAssertEqual(h.call("POST", "/api/auth/register", json: ["username": "pw-user", "password": String(repeating: "p", count: 1024)],
                              token: h.adminToken).status, 201)
        let (id, token) = try h.makeUser("pw-two", role: "viewer", password: "twelve-chars")
        XCTAssertEqual(h.call("POST", "/api/auth/change-password", json: ["current_password": "twelve-chars",
                                                                          "new_password": "        "], token: token).status, 422)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["password": "eleven-char"], token: h.adminToken).status, 422)
    }

    func testUserAddFoldsTheNameAndChecksThePassword() throws {
        let u = try StorageSetup.addUser(h.config, username: "CLI-User", role: .operator, password: "cli-user-password")
        XCTAssertEqual(u.username, "cli-user")
        XCTAssertEqual(login("cli-USER", "cli-user-password", from: "10.0.0.8").status, 200)
        XCTAssertThrowsError(try StorageSetup.addUser(h.config, username: "Cli-User", role: .viewer, password: "cli-user-password")) {
            XCTAssertEqual(String(describing: $0), "user cli-user already exists")
        }
        XCTAssertThrowsError(try StorageSetup.addUser(h.config, username: "short", role: .viewer, password: "too-short")) {
            XCTAssertTrue(String(describing: $0).contains("at least 12"), "\($0)")
        }
        XCTAssertThrowsError(try StorageSetup.addUser(h.config, username: "rlo\u{202E}x", role: .viewer, password: "long-enough-pw"))
    }

    func testAnOldShortPasswordStillLogsIn() throws {
        let hash = try PasswordHasher.hash("old-8chr")
        try StorageService.shared(h.ctx).run { db in
            _ = try UserRepository(db).create(username: "legacy", passwordHash: hash, role: .viewer, email: nil, fullName: nil)
        }
        let r = login("legacy", "old-8chr", from: "10.0.0.9")
        XCTAssertEqual(r.status, 200)
        let token = try XCTUnwrap(try h.object(r)["access_token"] as? String)
        XCTAssertEqual(h.call("POST", "/api/auth/change-password", json: ["current_password": "old-8chr",
                                                                          "new_password": "new-9chrs"], token: token).status, 422)
    }

    func testMigrationFoldsStoredUsernamesAndKeepsPasswords() throws {
        let hash = try PasswordHasher.hash("mixed-case-pw")
        let db = try h.openConnection()
        defer { db.close() }
        try db.execute("DELETE FROM schema_migrations WHERE version = 4", [])
        for name in ["Alice", "ＢＯＢ", "carol"] {
            _ = try UserRepository(db).create(username: name, passwordHash: hash, role: .viewer, email: nil, fullName: nil)
        }
        XCTAssertEqual(try Migrations.run(db), [4])
        let names = try db.query("SELECT username FROM users ORDER BY id", []).compactMap { $0.string(0) }
        XCTAssertEqual(names, ["admin", "alice", "bob", "carol"])
        XCTAssertEqual(login("alice", "mixed-case-pw", from: "10.0.0.7").status, 200)
        XCTAssertEqual(login("Bob", "mixed-case-pw", from: "10.0.0.7").status, 200)
    }

    func testMigrationStopsOnAFoldingCollisionNamingTheAccounts() throws {
        let db = try h.openConnection()
        defer { db.close() }
        try db.execute("DELETE FROM schema_migrations WHERE version = 4", [])
        let hash = try PasswordHasher.hash("collision-pw")
        let twin = try UserRepository(db).create(username: "ADMIN", passwordHash: hash, role: .viewer, email: nil, fullName: nil)
        _ = try UserRepository(db).create(username: "Zed", passwordHash: hash, role: .viewer, email: nil, fullName: nil)
        XCTAssertThrowsError(try Migrations.run(db)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("'admin' (id 1)"), text)
            XCTAssertTrue(text.contains("'ADMIN' (id \(twin.id))"), text)
        }
        XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM schema_migrations WHERE version = 4", [])?.int(0), 0, "nothing applied")
        XCTAssertEqual(try db.query("SELECT username FROM users ORDER BY id", []).compactMap { $0.string(0) },
                       ["admin", "ADMIN", "Zed"], "no name changed")
    }

    // MARK: events, tokens

    func testClientsCannotWriteAuditEvents() throws {
        let (_, op) = try h.makeUser("opsy", role: "operator")
        let before = try h.count("SELECT COUNT(*) FROM events WHERE source = 'audit'")
        for forged in ["audit", "AUDIT", " audit ", "ａｕｄｉｔ", "au\u{200B}dit", "Audit\u{202E}"] {
            let r = h.call("POST", "/api/events", json: ["message": "user.delete by admin", "source": forged], token: op)
            XCTAssertEqual(r.status, 422, forged)
            XCTAssertEqual(h.errorCode(r), "validation_error")
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE source = 'audit'"), before)
        XCTAssertEqual(h.call("POST", "/api/events", json: ["message": "m", "source": "audit-export"], token: op).status, 201)
    }

    func testDisablingRevokesTokensForGood() throws {
        let (id, token) = try h.makeUser("sleeper", role: "viewer")
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["is_active": false], token: h.adminToken).status, 200)
        XCTAssertEqual(h.call("PUT", "/api/auth/users/\(id)", json: ["is_active": true], token: h.adminToken).status, 200)
        let r = h.call("GET", "/api/auth/me", token: token)
        XCTAssertEqual(r.status, 401)
        XCTAssertEqual(h.errorCode(r), "invalid_token")
        XCTAssertEqual(login("sleeper", "password-123", from: "10.0.0.3").status, 200, "a fresh login works again")
    }

    // MARK: JSON bodies

    func testBodiesMustBeStrictJSONWithAJSONContentType() throws {
        let (_, op) = try h.makeUser("jsonop", role: "operator")
        let cases: [(String, String?, Int)] = [
            (#"{"message":"m",}"#, "application/json", 400),
            (#"{"message":"m","data":[1,2,]}"#, "application/json", 400),
            (#"{"message":"m","message":"n"}"#, "application/json", 400),
            (#"{"message":"m","mess\u0061ge":"n"}"#, "application/json", 400),
            (#"{"message":"m"}"#, "application/not-json", 415),
            (#"{"message":"m"}"#, nil, 415),
            (#"{"message":"m"}"#, "text/json", 415),
            (#"{"message":"m"}"#, "application/json; charset=latin1", 415),
            ("", nil, 415),
            (#"{"message":"ok, fine,]"}"#, "application/json", 201),
            (#"{"message":"m"}"#, "application/json; charset=utf-8", 201),
            (#"{"message":"m"}"#, "Application/JSON;Charset=\"UTF-8\"", 201),
            (#"{"message":"m","data":{"a":{"x":1},"b":{"x":2}}}"#, "application/json", 201),
        ]
        for (body, type, status) in cases {
            let r = h.call("POST", "/api/events", body: body, token: op, headers: type.map { ["content-type": $0] } ?? [:])
            XCTAssertEqual(r.status, status, "\(body) as \(type ?? "no type"): \(String(decoding: r.body, as: UTF8.self))")
            if status >= 400 {
                XCTAssertEqual(h.errorCode(r), status == 415 ? "unsupported_media_type" : "invalid_json")
            }
        }
        let login = h.call("POST", "/api/auth/login", body: #"{"username":"jsonop","password":"password-123",}"#,
                           headers: ["content-type": "application/json"])
        XCTAssertEqual(login.status, 400)
    }
}

/// Requests started together on their own threads, each with its own
/// worker context (so its own database connection), as two workers would.
final class RaceBox: @unchecked Sendable {
    let config: Config
    let router: Router
    let calls: [Request]
    private let lock = NSLock()
    private(set) var statuses: [Int] = []

    init(config: Config, router: Router, calls: [Request]) {
        self.config = config
        self.router = router
        self.calls = calls
    }

    func run() {
        let contexts = calls.map { _ in WorkerContext(config: config, log: Log(path: "off"), pool: "storage") }
        // Connect first, so the race is between the requests, not the connects.
        for c in contexts { _ = try? StorageService.shared(c).run { try $0.ping() } }
        let ready = DispatchGroup(), go = DispatchSemaphore(value: 0), done = DispatchGroup()
        for (i, req) in calls.enumerated() {
            ready.enter()
            done.enter()
            let ctx = UncheckedBox(contexts[i])
            Thread {
                ready.leave()
                go.wait()
                let r = self.router.handle(req, context: ctx.value)
                self.lock.lock()
                self.statuses.append(r.status)
                self.lock.unlock()
                done.leave()
            }.start()
        }
        ready.wait()
        for _ in calls { go.signal() }
        done.wait()
        for c in contexts { StorageService.shared(c).close() }
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

final class AuthHardeningPostgresTests: AuthHardeningTests {
    override class var engine: TestEngine { .postgres }
    override func testStrangersGuessingFromManyAddressesCannotLockTheOwnerOut() throws { try super.testStrangersGuessingFromManyAddressesCannotLockTheOwnerOut() }
    override func testFailuresLockTheUsernameAndAddressPairOnly() throws { try super.testFailuresLockTheUsernameAndAddressPairOnly() }
    override func testFirstAdminPasswordGoesToA0600FileAndMustBeChanged() throws { try super.testFirstAdminPasswordGoesToA0600FileAndMustBeChanged() }
    override func testLogoutStaysOpenBeforeThePasswordChange() throws { try super.testLogoutStaysOpenBeforeThePasswordChange() }
    override func testConcurrentAdminRemovalsNeverLeaveNoAdmin() throws { try super.testConcurrentAdminRemovalsNeverLeaveNoAdmin() }
    override func testUsernamesAreFoldedAndInvisibleCharactersRefused() throws { try super.testUsernamesAreFoldedAndInvisibleCharactersRefused() }
    override func testPasswordRulesApplyWhenAPasswordIsSet() throws { try super.testPasswordRulesApplyWhenAPasswordIsSet() }
    override func testUserAddFoldsTheNameAndChecksThePassword() throws { try super.testUserAddFoldsTheNameAndChecksThePassword() }
    override func testAnOldShortPasswordStillLogsIn() throws { try super.testAnOldShortPasswordStillLogsIn() }
    override func testMigrationFoldsStoredUsernamesAndKeepsPasswords() throws { try super.testMigrationFoldsStoredUsernamesAndKeepsPasswords() }
    override func testMigrationStopsOnAFoldingCollisionNamingTheAccounts() throws { try super.testMigrationStopsOnAFoldingCollisionNamingTheAccounts() }
    override func testClientsCannotWriteAuditEvents() throws { try super.testClientsCannotWriteAuditEvents() }
    override func testDisablingRevokesTokensForGood() throws { try super.testDisablingRevokesTokensForGood() }
    override func testBodiesMustBeStrictJSONWithAJSONContentType() throws { try super.testBodiesMustBeStrictJSONWithAJSONContentType() }
}
