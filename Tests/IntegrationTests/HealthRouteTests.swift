import Foundation
import XCTest

final class HealthRouteTests: XCTestCase {
    nonisolated(unsafe) static var server: TestServer?

    override class func setUp() {
        server = try? TestServer(env: ["CC_TEST_ROUTES": "true"])
    }

    override class func tearDown() {
        server?.stop()
        server = nil
    }

    var server: TestServer { get throws { try XCTUnwrap(Self.server, "test server did not start") } }

    func testHealthFields() throws {
        let r = try server.get("/health")
        XCTAssertEqual(r.status, 200)
        let j = try XCTUnwrap(r.json)
        XCTAssertEqual(j["status"] as? String, "healthy")
        XCTAssertNotNil(j["timestamp"] as? String)
        XCTAssertEqual(j["version"] as? String, "0.1.0")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(j["uptime_seconds"] as? Double), 0)
        XCTAssertEqual(r.headers["content-type"], "application/json")
        XCTAssertEqual(r.headers["x-request-id"]?.count, 32, "nginx's $request_id comes back")
        XCTAssertEqual(r.headers["x-content-type-options"], "nosniff")
    }

    func testLiveStartupRoot() throws {
        XCTAssertEqual(try server.get("/health/live").json?["status"] as? String, "alive")
        XCTAssertEqual(try server.get("/health/startup").json?["status"] as? String, "started")
        let root = try server.get("/")
        XCTAssertEqual(root.json?["name"] as? String, "Control Center")
        XCTAssertNotNil(root.json?["links"] as? [String: Any])
    }

    func testReadyListsChecks() throws {
        let r = try server.get("/health/ready")
        XCTAssertEqual(r.status, 200, r.text)
        let checks = try XCTUnwrap(r.json?["checks"] as? [String: Any])
        XCTAssertNotNil(checks["workers"])
        XCTAssertNotNil(checks["cache_dir"])
        let groups = try XCTUnwrap(r.json?["groups"] as? [[String: Any]])
        XCTAssertEqual(groups.compactMap { $0["name"] as? String }, ["main", "storage", "collector"])
        XCTAssertEqual(groups.compactMap { $0["decides_readiness"] as? Bool }, [true, true, false],
                       "both pools serve requests; the collector is only listed")
    }

    func testReadyIs503WhenCacheDirIsUnreadable() throws {
        let s = try server
        let cache = s.stateDir + "/cache"
        try FileManager.default.moveItem(atPath: cache, toPath: cache + ".moved")
        XCTAssertTrue(FileManager.default.createFile(atPath: cache, contents: Data("not a directory".utf8)))
        defer {
            try? FileManager.default.removeItem(atPath: cache)
            try? FileManager.default.moveItem(atPath: cache + ".moved", toPath: cache)
        }
        let r = try s.get("/health/ready")
        XCTAssertEqual(r.status, 503, r.text)
        XCTAssertEqual(r.json?["status"] as? String, "not_ready")
    }

    func testDetailedHasPoolAndSystem() throws {
        let j = try XCTUnwrap(try server.get("/health/detailed").json)
        let pool = try XCTUnwrap(j["pool"] as? [String: Any])
        XCTAssertEqual(pool["workers"] as? Int, 4)
        let system = try XCTUnwrap(j["system"] as? [String: Any])
        let mem = try XCTUnwrap(system["memory"] as? [String: Any])
        let pct = try XCTUnwrap(mem["percent"] as? Double)
        XCTAssert((0...100).contains(pct))
        XCTAssertNotNil((system["disk"] as? [String: Any])?["percent"] as? Double)
        // The levels come from the collector's evaluation of the default rules on the host's own figures.
        let s = try server
        XCTAssertTrue(waitUntil(5) { ((try? s.get("/health/detailed").json)?["thresholds"] as? [[String: Any]])?.isEmpty == false })
        let later = try XCTUnwrap(try s.get("/health/detailed").json)
        let names = (later["thresholds"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        XCTAssertEqual(names, ["cpu high", "memory high", "disk almost full", "disk full", "swap high"])
        let status = ((later["system"] as? [String: Any])?["memory"] as? [String: Any])?["status"] as? String
        XCTAssertTrue(["ok", "warning", "critical"].contains(status ?? ""), "a level from the rules, not unknown: \(status ?? "nil")")
    }

    func testNotFoundAndMethodNotAllowedAreJSON() throws {
        let nf = try server.get("/no/such/route")
        XCTAssertEqual(nf.status, 404)
        XCTAssertEqual(nf.errorCode, "not_found")
        XCTAssertEqual((nf.json?["error"] as? [String: Any])?["request_id"] as? String, nf.headers["x-request-id"])
        let na = try server.request("DELETE", "/health")
        XCTAssertEqual(na.status, 405)
        XCTAssertEqual(na.errorCode, "method_not_allowed")
        XCTAssertEqual(na.headers["allow"], "GET, HEAD")
    }

    func testBodyOverLimitIs413JSON() throws {
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: (1 << 20) + 1)
        let r = try server.request("POST", "/api/test/echo", headers: ["Content-Type": "application/octet-stream"], body: big)
        XCTAssertEqual(r.status, 413)
        XCTAssertEqual(r.errorCode, "payload_too_large")
        let ok = try server.request("POST", "/api/test/echo", body: [UInt8](repeating: 1, count: (1 << 20) - 10))
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(ok.json?["bytes"] as? Int, (1 << 20) - 10)
    }

    func testHeadHasNoBody() throws {
        let r = try server.request("HEAD", "/health")
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.body.isEmpty)
    }

    func testAccessLogHasOneJSONLinePerRequest() throws {
        let s = try server
        let r = try s.get("/health/live")
        let id = try XCTUnwrap(r.headers["x-request-id"])
        XCTAssertTrue(waitUntil(3) { s.accessLog().contains(id) })
        let line = try XCTUnwrap(s.accessLog().split(separator: "\n").first { $0.contains(id) })
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(j["path"] as? String, "/health/live")
        XCTAssertEqual(j["status"] as? Int, 200)
        XCTAssertEqual(j["method"] as? String, "GET")
        XCTAssertNotNil(j["duration_ms"] as? Double)
        XCTAssertNotNil(j["pid"] as? Int)
        XCTAssertNotNil(j["bytes"] as? Int)
        XCTAssertNotNil(j["time"] as? String)
    }

    func testCrashInHandlerFailsOnlyThatRequest() throws {
        let s = try server
        let before = s.poolWorkers("storage")
        let r = try s.get("/api/test/crash")
        XCTAssertEqual(r.status, 502)
        XCTAssertEqual(r.errorCode, "bad_gateway")
        XCTAssertEqual(try s.get("/health").status, 200)
        XCTAssertTrue(waitUntil(3) { s.poolWorkers("storage").count == before.count }, "crashed worker replaced")
        XCTAssertTrue(waitUntil(3) { s.log().contains("worker died") })
    }

    func testPoolStatusListsWorkers() throws {
        let j = try XCTUnwrap(try server.get("/api/pool/status").json)
        let workers = try XCTUnwrap(j["workers"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(workers.count, 4)
        let me = try XCTUnwrap(workers.first { $0["state"] as? String == "busy" }, "the worker serving this is busy")
        XCTAssertEqual(me["path"] as? String, "/api/pool/status")
        XCTAssertNotNil(me["elapsed_ms"] as? Int)
        let pools = try XCTUnwrap(j["pools"] as? [[String: Any]])
        let main = try XCTUnwrap(pools.first { $0["name"] as? String == "main" })
        XCTAssertGreaterThan(main["accepted_requests"] as? Int ?? 0, 0)
        XCTAssertNotNil(main["listen_queue"] as? Int, "Linux exposes the unix listen queue via sock_diag")
        let groups = try XCTUnwrap(j["groups"] as? [[String: Any]], "every child group is listed")
        let mainGroup = try XCTUnwrap(groups.first { $0["name"] as? String == "main" })
        XCTAssertEqual(mainGroup["serves_requests"] as? Bool, true)
        XCTAssertEqual(mainGroup["live"] as? Int, main["target_workers"] as? Int)
        XCTAssertEqual(mainGroup["reload_on_hup"] as? Bool, true)
    }

    func testPoolStatusIsLoopbackOnly() throws {
        // Another loopback address than 127.0.0.1 is another client to nginx.
        let r = try server.get("/api/pool/status", source: "127.0.0.9")
        XCTAssertEqual(r.status, 403)
        XCTAssertEqual(r.errorCode, "forbidden")
    }
}
