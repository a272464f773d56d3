@testable import ControlCenterCore
import XCTest

/// The pure rules behind the auth routes, without a database or a request.
final class AuthRulesTests: XCTestCase {
    func testUsernameFolding() {
        XCTAssertEqual(Username.fold("PROBE-VIEWER"), "probe-viewer")
        XCTAssertEqual(Username.fold("ＡＤＭＩＮ"), "admin")
        XCTAssertEqual(Username.fold("Straße"), "strasse")
        XCTAssertEqual(Username.fold("Re\u{0301}ne"), "r\u{e9}ne")
        XCTAssertEqual(Username.fold("ﬁle"), "file", "compatibility ligature")
        for s in ["PROBE-VIEWER", "ＡＤＭＩＮ", "Straße", "Ǆemal", "ΣΊΣΥΦΟΣ"] {
            XCTAssertEqual(Username.fold(Username.fold(s)), Username.fold(s), "folding is idempotent: \(s)")
        }
    }

    func testUsernameProblems() {
        for ok in ["admin", "probe-viewer", "jörg", "名前", "r\u{e9}ne", "a b", "नमस्ते"] {
            XCTAssertNil(Username.problem(ok), ok)
        }
        for bad in ["", " lead", "trail ", "ad\u{202E}nim", "ad\u{200B}min", "x\u{FEFF}", "a\u{200D}b", "\u{2066}x",
                    "\u{0301}abc", "a\u{0301}\u{0302}\u{0303}", "\u{3164}x", "a\u{FE0F}", "tab\there", "nul\u{0}",
                    "a\u{E000}", "line\u{2028}break", String(repeating: "a", count: 65)] {
            XCTAssertNotNil(Username.problem(bad), bad.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " "))
        }
    }

    func testPasswordPolicy() {
        XCTAssertNil(PasswordPolicy.problem("twelve-chars"))
        XCTAssertNil(PasswordPolicy.problem("  spaced  out  "))
        XCTAssertNotNil(PasswordPolicy.problem("eleven-char"))
        XCTAssertNotNil(PasswordPolicy.problem(String(repeating: " ", count: 20)))
        XCTAssertNotNil(PasswordPolicy.problem(String(repeating: "\u{3000}", count: 20)), "ideographic spaces are white space too")
        XCTAssertNil(PasswordPolicy.problem(String(repeating: "x", count: 1024)))
        XCTAssertNotNil(PasswordPolicy.problem(String(repeating: "x", count: 1025)))
    }

    func testStrictJSON() {
        for ok in [#"{"a":1}"#, #"{"a":[1,2],"b":{"a":1}}"#, #"{"s":"x,}\",]"}"#, #"[{"a":1},{"a":1}]"#, "{ }", "[ ]"] {
            XCTAssertNil(StrictJSON.problem(Array(ok.utf8)), ok)
        }
        for bad in [#"{"a":1,}"#, #"[1,2 , ]"#, #"{"a":{"b":1,}}"#, #"{"a":1,"a":2}"#, #"{"a":1,"\u0061":2}"#,
                    #"{"x":{"k":1,"k":2}}"#] {
            XCTAssertNotNil(StrictJSON.problem(Array(bad.utf8)), bad)
        }
    }

    func testJSONMediaType() {
        for ok in ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/json;charset=\"UTF-8\""] {
            XCTAssertTrue(JSONInput.isJSONMediaType(ok), ok)
        }
        for bad in [nil, "", "application/not-json", "text/json", "application/json-seq", "application/x-www-form-urlencoded",
                    "application/json; charset=latin1", "application/json; boundary=x", "application/jsonx"] as [String?] {
            XCTAssertFalse(JSONInput.isJSONMediaType(bad), bad ?? "nil")
        }
    }

    func testFoldingPlanRenamesOrNamesEveryCollision() throws {
        let plan = try UsernameFolding.plan([(1, "admin"), (2, "Alice"), (3, "ＢＯＢ")]).get()
        XCTAssertEqual(plan.map(\.id), [2, 3])
        XCTAssertEqual(plan.map(\.to), ["alice", "bob"])
        guard case .failure(let c) = UsernameFolding.plan([(1, "admin"), (5, "Admin"), (7, "x"), (8, "X"), (9, "y")]) else {
            return XCTFail("collision expected")
        }
        XCTAssertEqual(c.groups.map(\.folded), ["admin", "x"])
        XCTAssertTrue(c.description.contains("'admin' (id 1), 'Admin' (id 5) all fold to 'admin'"), c.description)
        XCTAssertTrue(c.description.contains("'x' (id 7), 'X' (id 8)"), c.description)
    }

    func testReservedEventSource() {
        for s in ["audit", "AUDIT", " audit", "ａｕｄｉｔ", "au\u{200B}dit", "Au\u{00AD}dit"] {
            XCTAssertTrue(EventRoutes.isReserved(s), s)
        }
        for s in ["audits", "api", "audit-export", "aud it x", "alert"] { XCTAssertFalse(EventRoutes.isReserved(s), s) }
        for s in ["alerts", "ALERTS", " alerts "] { XCTAssertTrue(EventRoutes.isReserved(s), "alert transitions are the collector's: \(s)") }
    }
}
