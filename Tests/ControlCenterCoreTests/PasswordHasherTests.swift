@testable import ControlCenterCore
import XCTest

final class PasswordHasherTests: XCTestCase {
    func testArgon2idAtInteractiveCostVerifies() throws {
        PasswordHasher.restoreDefaultCost()
        let hash = try PasswordHasher.hash("correct horse battery staple")
        XCTAssertTrue(hash.hasPrefix("$argon2id$v=19$m=65536,t=2,p=1$"), hash)
        XCTAssertTrue(PasswordHasher.verify("correct horse battery staple", hash: hash))
        XCTAssertFalse(PasswordHasher.verify("correct horse battery stapler", hash: hash))
        XCTAssertFalse(PasswordHasher.verify("", hash: hash))
        XCTAssertFalse(PasswordHasher.needsRehash(hash))
    }

    func testSaltsDifferAndGarbageHashesFail() throws {
        PasswordHasher.useMinimalCostForTests()
        defer { PasswordHasher.restoreDefaultCost() }
        let a = try PasswordHasher.hash("same-password"), b = try PasswordHasher.hash("same-password")
        XCTAssertNotEqual(a, b)
        XCTAssertFalse(PasswordHasher.verify("same-password", hash: "admin123"))
        XCTAssertFalse(PasswordHasher.verify("same-password", hash: ""))
        XCTAssertTrue(PasswordHasher.verify("pässwörd ✓", hash: try PasswordHasher.hash("pässwörd ✓")))
        PasswordHasher.restoreDefaultCost()
        XCTAssertTrue(PasswordHasher.needsRehash(a), "cheap hashes are upgraded at the next login")
    }

    func testRandomTokensAreUnique() {
        let t = Set((0..<100).map { _ in PasswordHasher.randomToken(bytes: 16) })
        XCTAssertEqual(t.count, 100)
        XCTAssertEqual(PasswordHasher.randomToken(bytes: 18).count, 24)
    }
}
