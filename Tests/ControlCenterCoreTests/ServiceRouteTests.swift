@testable import ControlCenterCore
import Foundation
import XCTest

/// The service registry routes and `services import`, on each engine.
class ServiceRouteTests: StorageTestCase {
    func service(_ name: String, _ extra: [String: Any] = [:]) -> [String: Any] {
        var o: [String: Any] = ["name": name, "command": ["/bin/sleep", "100"], "description": "svc \(name)"]
        for (k, v) in extra { o[k] = v }
        return o
    }

    @discardableResult
    func create(_ body: [String: Any], status: Int = 201, file: StaticString = #filePath, line: UInt = #line) -> Response {
        let r = h.call("POST", "/api/services", json: body, token: h.adminToken)
        XCTAssertEqual(r.status, status, String(decoding: r.body, as: UTF8.self), file: file, line: line)
        return r
    }

    func servicesRows() throws -> Int { try h.count("SELECT COUNT(*) FROM services") }

    func testCreateGetUpdateDeleteWithAudit() throws {
        let r = create(service("web", ["environment": ["TOKEN": "s3cret"], "port": 8080, "working_directory": "/tmp"]))
        let o = try h.object(r)
        XCTAssertEqual(o["name"] as? String, "web")
        XCTAssertEqual(o["command"] as? [String], ["/bin/sleep", "100"])
        XCTAssertEqual(o["restart_policy"] as? String, "on-failure")
        XCTAssertEqual((o["environment"] as? [String: String])?["TOKEN"], "s3cret")
        XCTAssertEqual(o["status"] as? String, "stopped")
        XCTAssertEqual(create(service("web"), status: 409).status, 409)

        let (_, viewer) = try h.makeUser("vera", role: "viewer")
        let seen = try h.object(h.call("GET", "/api/services/web", token: viewer))
        XCTAssertEqual(seen["port"] as? Int, 8080)
        XCTAssertNil(seen["environment"], "the environment is for admins only")
        XCTAssertNotNil(try h.object(h.call("GET", "/api/services/web", token: h.adminToken))["environment"])

        let up = h.call("PUT", "/api/services/web", json: ["command": ["/bin/sleep", "5"], "autostart": true], token: h.adminToken)
        XCTAssertEqual(up.status, 200, String(decoding: up.body, as: UTF8.self))
        let after = try h.object(up)
        XCTAssertEqual(after["command"] as? [String], ["/bin/sleep", "5"])
        XCTAssertEqual(after["autostart"] as? Bool, true)
        XCTAssertEqual(after["environment"] as? [String: String], [:], "PUT replaces the whole definition")
        XCTAssertEqual(h.call("PUT", "/api/services/nope", json: ["command": ["x"]], token: h.adminToken).status, 404)

        XCTAssertEqual(h.call("DELETE", "/api/services/web", token: h.adminToken).status, 200)
        XCTAssertEqual(h.call("DELETE", "/api/services/web", token: h.adminToken).status, 404)
        XCTAssertEqual(h.call("GET", "/api/services/web", token: h.adminToken).status, 404)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE source = 'audit' AND target = 'web' AND actor = 'admin' AND data LIKE '%\"role\":\"admin\"%' AND action IN ('service.create', 'service.update', 'service.delete')"), 3)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE data LIKE '%s3cret%' OR message LIKE '%s3cret%'"), 0, "no environment in the audit log")
    }

    func testRootNeedsAnAdminAndIsAuditedAsAWarning() throws {
        let (_, op) = try h.makeUser("oscar", role: "operator")
        XCTAssertEqual(h.call("POST", "/api/services", json: service("rooty", ["user": "root"]), token: op).status, 403)
        XCTAssertEqual(try servicesRows(), 0, "an operator cannot make a service run as root")
        create(service("rooty", ["user": "root"]))
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'service.create' AND target = 'rooty' AND level = 'warning' AND message LIKE '%runs as root%'"), 1)
        // Without `user` a service runs as CC_USER, never root: an ordinary change.
        create(service("plain"))
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'service.create' AND target = 'plain' AND level = 'info' AND message NOT LIKE '%root%'"), 1)
        let up = h.call("PUT", "/api/services/plain", json: ["command": ["/bin/true"], "user": "root"], token: h.adminToken)
        XCTAssertEqual(up.status, 200, String(decoding: up.body, as: UTF8.self))
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'service.update' AND target = 'plain' AND level = 'warning' AND message LIKE '%runs as root%'"), 1)
    }

    func testListKeepsTheOldShapeAndPages() throws {
        for i in 0..<5 { create(service("s\(i)", ["port": 9000 + i])) }
        let (_, viewer) = try h.makeUser("vic", role: "viewer")
        let o = try h.object(h.call("GET", "/api/services?page=2&page_size=2", token: viewer))
        XCTAssertEqual(o["success"] as? Bool, true)
        XCTAssertEqual(o["count"] as? Int, 2)
        let list = try XCTUnwrap(o["services"] as? [[String: Any]])
        XCTAssertEqual(list.map { $0["name"] as? String }, ["s2", "s3"])
        for k in ["name", "description", "status", "pid", "port", "uptime_seconds", "last_run_time"] {
            XCTAssertTrue(list[0].keys.contains(k), k)
        }
        XCTAssertNil(list[0]["environment"])
        let meta = try XCTUnwrap(o["meta"] as? [String: Any])
        XCTAssertEqual(meta["total"] as? Int, 5)
        XCTAssertEqual(meta["page"] as? Int, 2)
        XCTAssertEqual(meta["page_size"] as? Int, 2)
        XCTAssertEqual(meta["total_pages"] as? Int, 3)
        XCTAssertEqual(meta["has_next"] as? Bool, true)
        XCTAssertEqual(meta["has_prev"] as? Bool, true)
        let last = try h.object(h.call("GET", "/api/services?page=3&page_size=2", token: viewer))
        XCTAssertEqual((last["meta"] as? [String: Any])?["has_next"] as? Bool, false)
        let defaults = try h.object(h.call("GET", "/api/services", token: viewer))
        XCTAssertEqual((defaults["meta"] as? [String: Any])?["page_size"] as? Int, 50)
        for q in ["page=0", "page_size=0", "page_size=201", "page=x"] {
            XCTAssertEqual(h.call("GET", "/api/services?\(q)", token: viewer).status, 400, q)
        }
    }

    func testDependenciesAndCycles() throws {
        create(service("a"))
        create(service("b", ["depends_on": ["a"]]))
        let missing = create(service("c", ["depends_on": ["zzz"]]), status: 400)
        XCTAssertTrue(String(decoding: missing.body, as: UTF8.self).contains("not registered"))
        let cycle = h.call("PUT", "/api/services/a", json: ["command": ["x"], "depends_on": ["b"]], token: h.adminToken)
        XCTAssertEqual(cycle.status, 400)
        XCTAssertEqual(h.errorCode(cycle), "validation_error")
        XCTAssertTrue(String(decoding: cycle.body, as: UTF8.self).contains("a -> b -> a"), String(decoding: cycle.body, as: UTF8.self))
        XCTAssertEqual(try h.object(h.call("GET", "/api/services/a", token: h.adminToken))["depends_on"] as? [String], [],
                       "the refused change wrote nothing")
        let busy = h.call("DELETE", "/api/services/a", token: h.adminToken)
        XCTAssertEqual(busy.status, 409)
        XCTAssertEqual(h.errorCode(busy), "service_has_dependents")
        XCTAssertEqual(try servicesRows(), 2)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action LIKE 'service.%'"), 2)
    }

    func testBadInputIs400AndWritesNothing() throws {
        let bad: [Any] = [
            service("web", ["command": "python3 -m http.server 8000"]),
            service("web", ["shell": true]),
            service("a/b"), service(".."), service("../etc"), service("Web"),
            service("web", ["working_directory": "/no/such/directory"]),
            service("web", ["health_check": ["type": "http", "url": "http://example.com/"]]),
            service("web", ["user": "no-such-user-x"]),
            service("web", ["depends_on": ["web"]]),
            ["web"],
        ]
        for body in bad {
            let r = h.call("POST", "/api/services", json: body, token: h.adminToken)
            XCTAssertEqual(r.status, 400, "\(body): \(String(decoding: r.body, as: UTF8.self))")
            XCTAssertNotNil(h.errorCode(r))
        }
        XCTAssertEqual(h.call("POST", "/api/services", body: "{\"name\":\"x\",\"name\":\"y\"}", token: h.adminToken,
                              headers: ["content-type": "application/json"]).status, 400)
        XCTAssertEqual(h.call("POST", "/api/services", body: "name=x", token: h.adminToken,
                              headers: ["content-type": "application/x-www-form-urlencoded"]).status, 415)
        for p in ["/api/services/a..b", "/api/services/A", "/api/services/a%2Fb", "/api/services/" + String(repeating: "a", count: 64)] {
            XCTAssertEqual(h.call("GET", p, token: h.adminToken).status, 400, p)
            XCTAssertEqual(h.call("PUT", p, json: ["command": ["x"]], token: h.adminToken).status, 400, p)
        }
        for evil in injectionStrings {
            XCTAssertEqual(h.call("POST", "/api/services", json: service(evil), token: h.adminToken).status, 400, evil)
        }
        XCTAssertEqual(try servicesRows(), 0)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action LIKE 'service.%'"), 0)
    }

    func testMutationsNeedAdminAndReadsNeedAToken() throws {
        create(service("web"))
        let (_, op) = try h.makeUser("oscar", role: "operator")
        let (_, viewer) = try h.makeUser("vera", role: "viewer")
        let writes: [(String, String, Any?)] = [
            ("POST", "/api/services", service("new")),
            ("PUT", "/api/services/web", ["command": ["x"]]),
            ("DELETE", "/api/services/web", nil),
        ]
        for (m, p, body) in writes {
            XCTAssertEqual(h.call(m, p, json: body).status, 401, "\(m) \(p) anonymous")
            for t in [op, viewer] {
                XCTAssertEqual(h.call(m, p, json: body, token: t).status, 403, "\(m) \(p)")
            }
        }
        for p in ["/api/services", "/api/services/web"] {
            XCTAssertEqual(h.call("GET", p).status, 401, p)
            XCTAssertEqual(h.call("GET", p, token: op).status, 200, p)
        }
        XCTAssertEqual(try servicesRows(), 1)
        XCTAssertEqual(try h.object(h.call("GET", "/api/services/web", token: op))["command"] as? [String], ["/bin/sleep", "100"])
    }

    func testActionsAreQueuedAndWaitersAreBounded() throws {
        create(service("web"))
        var started = Clock.monotonicSeconds()
        let waited = h.call("POST", "/api/services/web/start?wait=0.3", token: h.adminToken)
        XCTAssertEqual(waited.status, 202, "no supervisor here: the action stays pending")
        XCTAssertGreaterThanOrEqual(Clock.monotonicSeconds() - started, 0.3)
        XCTAssertEqual(try h.object(waited)["status"] as? String, "pending")
        // Every wait slot taken: the next waiter answers at once.
        let slots = (0..<max(1, h.config.storageWorkers / 2)).compactMap { _ in ServiceActionRoutes.waitSlot(h.config) }
        XCTAssertEqual(slots.count, max(1, h.config.storageWorkers / 2))
        started = Clock.monotonicSeconds()
        XCTAssertEqual(h.call("POST", "/api/services/web/stop?wait=5", token: h.adminToken).status, 202)
        XCTAssertLessThan(Clock.monotonicSeconds() - started, 1)
        slots.forEach { $0.unlock() }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM service_actions WHERE service = 'web' AND status = 'pending'"), 2)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE source = 'audit' AND action IN ('service.start', 'service.stop') AND data LIKE '%\"role\":\"admin\"%'"), 2)
        XCTAssertEqual(h.call("POST", "/api/services/none/start", token: h.adminToken).status, 404)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM service_actions WHERE service = 'none'"), 0)
    }

    func testImportIsIdempotentAndAllOrNothing() throws {
        let file: [[String: Any]] = [service("db"), service("app", ["depends_on": ["db"], "user": "root"])]
        func load(_ any: Any) throws -> [ServiceDefinition] {
            try ServiceImport.parse(Array(try JSONSerialization.data(withJSONObject: any)))
        }
        let db = try h.openConnection()
        defer { db.close() }
        let first = try ServiceImport.apply(db, try load(file), actor: "cli")
        XCTAssertEqual(first, ServiceImport.Result(created: ["db", "app"]))
        let events = try h.count("SELECT COUNT(*) FROM events")
        XCTAssertEqual(try ServiceImport.apply(db, try load(file), actor: "cli"),
                       ServiceImport.Result(unchanged: ["db", "app"]))
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events"), events, "an unchanged import writes no event")

        var changed = file
        changed[0]["description"] = "changed"
        XCTAssertEqual(try ServiceImport.apply(db, try load(changed), actor: "cli"),
                       ServiceImport.Result(updated: ["db"], unchanged: ["app"]))

        let cyclic = [service("db", ["depends_on": ["app"]]), service("new")]
        XCTAssertThrowsError(try ServiceImport.apply(db, try load(cyclic), actor: "cli")) {
            XCTAssertTrue("\($0)".contains("cycle"), "\($0)")
        }
        XCTAssertEqual(try servicesRows(), 2, "a refused import writes nothing")
        XCTAssertThrowsError(try load([service("x"), service("x")]))
        XCTAssertThrowsError(try load([service("x", ["command": "sleep 1"])])) {
            XCTAssertTrue("\($0)".contains("services[0] (x): command"), "\($0)")
        }
        XCTAssertThrowsError(try ServiceImport.parse(Array("{\"name\":\"x\"}".utf8)))
    }
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class ServiceRoutePostgresTests: ServiceRouteTests {
    override class var engine: TestEngine { .postgres }
    override func testCreateGetUpdateDeleteWithAudit() throws { try super.testCreateGetUpdateDeleteWithAudit() }
    override func testRootNeedsAnAdminAndIsAuditedAsAWarning() throws { try super.testRootNeedsAnAdminAndIsAuditedAsAWarning() }
    override func testListKeepsTheOldShapeAndPages() throws { try super.testListKeepsTheOldShapeAndPages() }
    override func testDependenciesAndCycles() throws { try super.testDependenciesAndCycles() }
    override func testBadInputIs400AndWritesNothing() throws { try super.testBadInputIs400AndWritesNothing() }
    override func testMutationsNeedAdminAndReadsNeedAToken() throws { try super.testMutationsNeedAdminAndReadsNeedAToken() }
    override func testImportIsIdempotentAndAllOrNothing() throws { try super.testImportIsIdempotentAndAllOrNothing() }
    override func testActionsAreQueuedAndWaitersAreBounded() throws { try super.testActionsAreQueuedAndWaitersAreBounded() }
}
