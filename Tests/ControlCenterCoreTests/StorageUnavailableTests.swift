@testable import ControlCenterCore
import Foundation
import XCTest

/// Failure modes that need no server: a refused port and an unroutable host.
final class StorageUnavailableTests: XCTestCase {
    func context(_ url: String) throws -> WorkerContext {
        WorkerContext(config: try Config(values: ["CC_STATE_DIR": NSTemporaryDirectory(), "CC_DATABASE_URL": url,
                                                  "CC_JWT_SECRET": StorageHarness.secret]), log: Log(path: "off"))
    }

    func testRefusedAndUnroutableFailFastAsJSON503() throws {
        for url in ["postgres://cc@127.0.0.1:1/none", "postgres://cc@10.255.255.1:5432/none?connect_timeout=30"] {
            let ctx = try context(url)
            let router = Application.makeRouter(config: ctx.config)
            let token = JWTSigner(secret: Array(StorageHarness.secret.utf8)).sign(
                JWTClaims(sub: "a", userID: 1, role: "admin", iat: Clock.wallMillis() / 1000,
                          exp: Clock.wallMillis() / 1000 + 60, jti: "j"))
            var started = Clock.monotonicSeconds()
            let r = router.handle(Request(method: "GET", path: "/api/events", headers: ["authorization": "Bearer \(token)"]), context: ctx)
            XCTAssertEqual(r.status, 503, url)
            XCTAssertTrue(String(decoding: r.body, as: UTF8.self).contains("database_unavailable"))
            XCTAssertLessThan(Clock.monotonicSeconds() - started, 1.2, url)
            // While backing off, no new connect attempt: instant.
            started = Clock.monotonicSeconds()
            let ready = router.handle(Request(method: "GET", path: "/health/ready"), context: ctx)
            XCTAssertEqual(ready.status, 503)
            XCTAssertTrue(String(decoding: ready.body, as: UTF8.self).contains("\"database\":{\"ok\":false"))
            XCTAssertLessThan(Clock.monotonicSeconds() - started, 0.1)
            XCTAssertEqual(router.handle(Request(method: "GET", path: "/health"), context: ctx).status, 200)
        }
    }

    func testPlaceholderNumberingSkipsQuotedText() {
        XCTAssertEqual(numberedPlaceholders("SELECT '?', \"a?\" FROM t WHERE a = ? AND b LIKE ? ESCAPE '\\'"),
                       "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b LIKE $2 ESCAPE '\\'")
    }
}
