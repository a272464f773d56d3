@testable import ControlCenterCore
import Foundation
import XCTest

final class RouterTests: XCTestCase {
    func context() throws -> WorkerContext {
        WorkerContext(config: try Config(values: ["CC_STATE_DIR": NSTemporaryDirectory() + "cc-router"]), log: Log(path: "off"))
    }

    func json(_ r: Response) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
    }

    func router() -> Router {
        var r = Router()
        r.get("/a") { _, _ in .json { $0.beginObject(); $0.field("route", "a"); $0.endObject() } }
        r.post("/a") { _, _ in Response(status: 201) }
        r.get("/items/{id}") { req, _ in .json { $0.beginObject(); $0.field("id", req.parameter("id")); $0.endObject() } }
        r.delete("/items/{id}") { _, _ in Response(status: 204) }
        r.get("/items/{id}/children/{child}") { req, _ in
            .json { $0.beginObject(); $0.field("c", req.parameter("child")); $0.endObject() }
        }
        r.get("/boom") { _, _ in throw APIError.badRequest("nope", code: "invalid_parameter") }
        r.get("/crash") { _, _ in struct Oops: Error {}; throw Oops() }
        return r
    }

    func testStaticAndParameterRoutes() throws {
        let r = router(), ctx = try context()
        XCTAssertEqual(try json(r.handle(Request(method: "GET", path: "/a"), context: ctx))["route"] as? String, "a")
        XCTAssertEqual(r.handle(Request(method: "POST", path: "/a"), context: ctx).status, 201)
        XCTAssertEqual(try json(r.handle(Request(method: "GET", path: "/items/42"), context: ctx))["id"] as? String, "42")
        XCTAssertEqual(try json(r.handle(Request(method: "GET", path: "/items/a%20b"), context: ctx))["id"] as? String, "a b")
        XCTAssertEqual(try json(r.handle(Request(method: "GET", path: "/items/1/children/x"), context: ctx))["c"] as? String, "x")
    }

    /// nginx's `location = /api/auth/login` does not match `/api/auth/login/`;
    /// the router must not either, or the login limit zone is bypassed.
    func testMatchingIsExactLikeNginxLocations() throws {
        var r = router()
        r.get("/", { _, _ in Response(status: 200) })
        let ctx = try context()
        for path in ["/a/", "/a//", "//a", "/items/42/", "/items//children/x", "/items/", "/items/1/children/x/"] {
            XCTAssertEqual(r.handle(Request(method: "GET", path: path), context: ctx).status, 404, path)
        }
        XCTAssertEqual(r.handle(Request(method: "POST", path: "/a/"), context: ctx).status, 404,
                       "not 405: /a/ is no route under any method")
        XCTAssertEqual(r.handle(Request(method: "GET", path: "/"), context: ctx).status, 200, "the root is itself")
        let app = Application.makeRouter(config: try Config(values: ["CC_STATE_DIR": NSTemporaryDirectory() + "cc-router"]))
        XCTAssertEqual(app.handle(Request(method: "POST", path: "/api/auth/login/", body: Array(#"{}"#.utf8)),
                                  context: ctx).status, 404)
    }

    func testHeadUsesGet() throws {
        XCTAssertEqual(router().handle(Request(method: "HEAD", path: "/a"), context: try context()).status, 200)
    }

    func testNotFound() throws {
        let resp = router().handle(Request(method: "GET", path: "/zzz", requestID: "rid-1"), context: try context())
        XCTAssertEqual(resp.status, 404)
        let err = try XCTUnwrap(try json(resp)["error"] as? [String: Any])
        XCTAssertEqual(err["code"] as? String, "not_found")
        XCTAssertEqual(err["request_id"] as? String, "rid-1")
        XCTAssertNotNil(err["message"] as? String)
        XCTAssertEqual(router().handle(Request(method: "GET", path: "/items/1/other"), context: try context()).status, 404)
    }

    func testMethodNotAllowedListsAllow() throws {
        let r = router(), ctx = try context()
        let s = r.handle(Request(method: "PUT", path: "/a"), context: ctx)
        XCTAssertEqual(s.status, 405)
        XCTAssertEqual(s.header("Allow"), "GET, HEAD, POST")
        let p = r.handle(Request(method: "POST", path: "/items/3"), context: ctx)
        XCTAssertEqual(p.status, 405)
        XCTAssertEqual(p.header("Allow"), "DELETE, GET, HEAD")
    }

    func testErrorsBecomeEnvelopes() throws {
        let r = router(), ctx = try context()
        let bad = r.handle(Request(method: "GET", path: "/boom"), context: ctx)
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual((try json(bad)["error"] as? [String: Any])?["code"] as? String, "invalid_parameter")
        let crash = r.handle(Request(method: "GET", path: "/crash"), context: ctx)
        XCTAssertEqual(crash.status, 500)
        XCTAssertEqual((try json(crash)["error"] as? [String: Any])?["code"] as? String, "internal_error")
    }

    func testUnauthorizedCarriesBearerChallenge() {
        let r = APIError.unauthorized().response(requestID: "x")
        XCTAssertEqual(r.status, 401)
        XCTAssertEqual(r.header("WWW-Authenticate"), "Bearer")
        XCTAssertEqual(r.header("content-type"), "application/json")
    }

    func testPublicReadFalseGuardsEverySystemRoute() throws {
        let dir = NSTemporaryDirectory() + "cc-public-read-\(UUID().uuidString.prefix(8))"
        let config = try Config(values: ["CC_STATE_DIR": dir, "CC_PUBLIC_READ": "false"])
        let ctx = WorkerContext(config: config, log: Log(path: "off"))
        let app = Application.makeRouter(config: config)
        let systemRoutes = app.routes.filter { $0.pattern.hasPrefix("/api/system/") }
        XCTAssertEqual(Set(systemRoutes.map(\.pattern)), [
            "/api/system/stats", "/api/system/network", "/api/system/info", "/api/system/processes",
            "/api/system/processes/{pid}", "/api/system/processes/{pid}/signal", "/api/system/connections",
            "/api/system/ports", "/api/system/history"])
        for route in systemRoutes {
            let path = route.pattern.replacingOccurrences(of: "{pid}", with: "1")
            let r = app.handle(Request(method: route.method, path: path), context: ctx)
            XCTAssertEqual(r.status, 401, path)
            XCTAssertEqual(r.header("WWW-Authenticate"), "Bearer", path)
        }
    }

    func testApplicationRoutesIncludeHealth() throws {
        let app = Application.makeRouter(config: try Config(values: [:]))
        let paths = Set(app.routes.map(\.pattern))
        for p in ["/", "/health", "/health/live", "/health/ready", "/health/startup", "/health/detailed", "/api/pool/status"] {
            XCTAssertTrue(paths.contains(p), p)
        }
        XCTAssertFalse(paths.contains("/api/test/sleep"), "test routes are off by default")
        let withTests = Application.makeRouter(config: try Config(values: ["CC_TEST_ROUTES": "true"]))
        XCTAssertTrue(withTests.routes.contains { $0.pattern == "/api/test/sleep" })
    }
}
