@testable import ControlCenterCore
import Foundation
import XCTest

/// Alert rules, the engine's evaluation against the database, alerts and
/// silences through the routes, on each engine.
class AlertRouteTests: StorageTestCase {
    func body(_ r: Response) -> String { String(decoding: r.body, as: UTF8.self) }

    func rule(_ extra: [String: Any] = [:]) -> [String: Any] {
        var o: [String: Any] = ["name": "cpu busy", "metric": "cpu", "comparator": ">", "threshold": 80, "clear_threshold": 70,
                                "for_seconds": 10, "keep_firing_for_seconds": 5]
        for (k, v) in extra { o[k] = v }
        return o
    }

    func createRule(_ o: [String: Any], token: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let r = h.call("POST", "/api/alerts/rules", json: o, token: token ?? h.adminToken)
        XCTAssertEqual(r.status, 201, body(r), file: file, line: line)
        return try XCTUnwrap(try h.object(r)["id"] as? Int, file: file, line: line)
    }

    func evaluate(_ engine: AlertEngine, _ values: [AlertMetrics.Key: Double], at t: Double) throws -> [AlertTransition] {
        try StorageService.shared(h.ctx).run { db in
            try engine.evaluate(values, db: db, monotonic: t, wall: 1_800_000_000_000 + Int64(t * 1000)).transitions
        }
    }

    func alertEvents() throws -> Int { try h.count("SELECT COUNT(*) FROM events WHERE source = 'alerts'") }

    func testDefaultRulesAreThereOnceAndEditableForGood() throws {
        let list = try h.object(h.call("GET", "/api/alerts/rules", token: h.adminToken))
        let rules = try XCTUnwrap(list["rules"] as? [[String: Any]])
        XCTAssertEqual(rules.map { $0["name"] as? String }, ["cpu high", "memory high", "disk almost full", "disk full", "swap high"])
        XCTAssertEqual(rules.first?["threshold"] as? Double, 90)
        XCTAssertEqual(rules.first?["for_seconds"] as? Double, 300)
        let diskFull = try XCTUnwrap(rules.first { $0["name"] as? String == "disk full" })
        XCTAssertEqual(diskFull["severity"] as? String, "critical")
        let id = try XCTUnwrap(rules.first?["id"] as? Int)
        XCTAssertEqual(h.call("DELETE", "/api/alerts/rules/\(id)", token: h.adminToken).status, 200)
        // Running the migrations again (as every start does) recreates nothing.
        try StorageService.shared(h.ctx).run { db in XCTAssertEqual(try Migrations.run(db), []) }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alert_rules WHERE name = 'cpu high'"), 0)
    }

    /// A database of the previous release (schema 6, with its users and
    /// events) gets the alert tables and the defaults, and keeps its rows.
    func testUpgradeFromThePreviousSchemaAddsTablesAndDefaults() throws {
        let users = try h.count("SELECT COUNT(*) FROM users")
        let events = try h.count("SELECT COUNT(*) FROM events")
        try StorageService.shared(h.ctx).run { db in
            for t in ["alert_silences", "alerts", "alert_rules"] { try db.execute("DROP TABLE \(t)", []) }
            try db.execute("DELETE FROM schema_migrations WHERE version = 8", [])
            XCTAssertEqual(try Migrations.run(db), [8])
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alert_rules"), AlertSchema.defaults.count)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM users"), users)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events"), events)
        XCTAssertEqual(h.call("GET", "/api/alerts/active").status, 200)
    }

    func testRuleCRUDWithAuditAndRoles() throws {
        let (_, op) = try h.makeUser("otto", role: "operator")
        let (_, viewer) = try h.makeUser("vera", role: "viewer")
        XCTAssertEqual(h.call("POST", "/api/alerts/rules", json: rule(), token: viewer).status, 403)
        XCTAssertEqual(h.call("GET", "/api/alerts/rules").status, 401, "rules are for signed-in users")
        let id = try createRule(rule(["targets": [["type": "webhook", "url": "https://127.0.0.1/T0KEN", "headers": ["Authorization": "Bearer s3cret"]]]]), token: op)
        XCTAssertEqual(h.call("POST", "/api/alerts/rules", json: rule(), token: op).status, 409)

        let seen = h.call("GET", "/api/alerts/rules/\(id)", token: viewer)
        XCTAssertEqual(seen.status, 200)
        XCTAssertFalse(body(seen).contains("s3cret") || body(seen).contains("T0KEN"), body(seen))
        XCTAssertFalse(body(h.call("GET", "/api/alerts/rules", token: op)).contains("s3cret"), "operators see masked targets too")
        XCTAssertTrue(body(h.call("GET", "/api/alerts/rules/\(id)", token: h.adminToken)).contains("Bearer s3cret"))

        // An operator's PUT without targets keeps them.
        let up = h.call("PUT", "/api/alerts/rules/\(id)", json: rule(["threshold": 85, "name": "cpu busier"]), token: op)
        XCTAssertEqual(up.status, 200, body(up))
        let after = try h.object(h.call("GET", "/api/alerts/rules/\(id)", token: h.adminToken))
        XCTAssertEqual(after["threshold"] as? Double, 85)
        XCTAssertEqual(after["name"] as? String, "cpu busier")
        XCTAssertEqual((after["targets"] as? [[String: Any]])?.first?["url"] as? String, "https://127.0.0.1/T0KEN")
        XCTAssertEqual(h.call("PUT", "/api/alerts/rules/\(id)", json: rule(["name": "memory high"]), token: op).status, 409)
        XCTAssertEqual(h.call("PUT", "/api/alerts/rules/99999", json: rule(), token: op).status, 404)

        XCTAssertEqual(h.call("DELETE", "/api/alerts/rules/\(id)", token: viewer).status, 403)
        XCTAssertEqual(h.call("DELETE", "/api/alerts/rules/\(id)", token: op).status, 200)
        XCTAssertEqual(h.call("DELETE", "/api/alerts/rules/\(id)", token: op).status, 404)
        XCTAssertEqual(try h.count("""
            SELECT COUNT(*) FROM events WHERE source = 'audit' AND actor = 'otto' AND data LIKE '%"role":"operator"%'
            AND action IN ('alert_rule.create', 'alert_rule.update', 'alert_rule.delete')
            """), 3)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE data LIKE '%s3cret%' OR message LIKE '%s3cret%'"), 0)
    }

    func testBadInputIs400AndWritesNothing() throws {
        let before = try h.count("SELECT COUNT(*) FROM alert_rules")
        let bad: [[String: Any]] = [
            [:], rule(["metric": "nope"]), rule(["comparator": "=<"]), rule(["threshold": "high"]), rule(["clear_threshold": 99]),
            rule(["for_seconds": -5]), rule(["severity": "page"]), rule(["label": "/"]), rule(["enabled": "yes"]),
            rule(["targets": [["type": "webhook", "url": "gopher://x/"]]]), rule(["targets": "https://x/"]), rule(["extra": 1]),
            rule(["name": String(repeating: "n", count: 101)]),
        ]
        for b in bad {
            let r = h.call("POST", "/api/alerts/rules", json: b, token: h.adminToken)
            XCTAssertEqual(r.status, 400, "\(b): \(body(r))")
            // A target's URL is NotificationTarget's to judge (invalid_target); the rest the rule's.
            XCTAssertTrue(["validation_error", "invalid_target"].contains(h.errorCode(r) ?? ""), body(r))
        }
        XCTAssertEqual(h.call("POST", "/api/alerts/rules", body: "{", token: h.adminToken, headers: ["content-type": "application/json"]).status, 400)
        XCTAssertEqual(h.call("POST", "/api/alerts/rules", json: [1, 2], token: h.adminToken).status, 400)
        XCTAssertEqual(h.call("POST", "/api/alerts/rules", body: "x", token: h.adminToken).status, 415)
        for s in injectionStrings {
            let r = h.call("POST", "/api/alerts/rules", json: rule(["name": s, "metric": "disk", "label": s]), token: h.adminToken)
            XCTAssertEqual(r.status, 201, body(r))
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alert_rules"), before + injectionStrings.count)
        for path in ["/api/alerts/rules/abc", "/api/alerts/rules/0", "/api/alerts/rules/-1", "/api/alerts/rules/99999999999999999999"] {
            XCTAssertEqual(h.call("GET", path, token: h.adminToken).status, 400, path)
        }
        XCTAssertEqual(h.call("POST", "/api/alerts/x/ack", token: h.adminToken).status, 400)
        XCTAssertEqual(h.call("GET", "/api/alerts/history?limit=0").status, 400)
        XCTAssertEqual(h.call("GET", "/api/alerts/history?before=x").status, 400)
        let silences: [[String: Any]] = [
            [:], ["ends_at": "2999-01-01T00:00:00Z"], ["matcher": [:], "ends_at": "2999-01-01T00:00:00Z"],
            ["matcher": ["rule_name": "x"]], ["matcher": ["rule_name": "x"], "ends_at": "2000-01-01T00:00:00Z"],
            ["matcher": ["rule_name": "x"], "ends_at": "tomorrow"], ["matcher": ["severity": "page"], "ends_at": "2999-01-01T00:00:00Z"],
            ["matcher": ["owner": "x"], "ends_at": "2999-01-01T00:00:00Z"],
            ["matcher": ["rule_name": "x"], "starts_at": "2999-01-02T00:00:00Z", "ends_at": "2999-01-01T00:00:00Z"],
        ]
        for s in silences {
            let r = h.call("POST", "/api/alerts/silences", json: s, token: h.adminToken)
            XCTAssertEqual(r.status, 400, "\(s): \(body(r))")
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alert_silences"), 0)
        XCTAssertEqual(h.call("DELETE", "/api/alerts/silences/5", token: h.adminToken).status, 404)
    }

    /// The engine against the database with a fake monotonic clock: the
    /// episode's rows, one event per transition, ack and silence with the user.
    func testEvaluationWritesOneEventPerTransitionAndTheRoutesShowIt() throws {
        try StorageService.shared(h.ctx).run { db in _ = try db.execute("UPDATE alert_rules SET enabled = 0", []) }
        let id = try createRule(rule())
        let engine = AlertEngine()
        let cpu = AlertMetrics.Key("cpu")
        let events0 = try alertEvents()
        XCTAssertEqual(try evaluate(engine, [cpu: 50], at: 0), [])
        XCTAssertEqual(try evaluate(engine, [cpu: 90], at: 1).map(\.state), [.pending])
        XCTAssertEqual(try evaluate(engine, [cpu: 95], at: 5), [])
        let fired = try evaluate(engine, [cpu: 95], at: 11)
        XCTAssertEqual(fired.map(\.state), [.firing])
        XCTAssertEqual(fired.first?.labels, ["alertname": "cpu busy", "metric": "cpu", "severity": "warning"])
        XCTAssertEqual(fired.first?.startsAt, 1_800_000_011_000, "when it fired, as Prometheus tells Alertmanager")
        XCTAssertNil(fired.first?.endsAt)
        // Between the clear threshold and the threshold: no flapping.
        for t in 12...30 { XCTAssertEqual(try evaluate(engine, [cpu: t % 2 == 0 ? 75 : 85], at: Double(t)), []) }
        XCTAssertEqual(try alertEvents(), events0 + 2)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alerts"), 1)

        let active = try h.object(h.call("GET", "/api/alerts/active"))
        XCTAssertEqual(active["count"] as? Int, 1)
        let a = try XCTUnwrap((active["alerts"] as? [[String: Any]])?.first)
        XCTAssertEqual(a["rule_id"] as? Int, id)
        XCTAssertEqual(a["state"] as? String, "firing")
        XCTAssertEqual(a["threshold"] as? Double, 80)
        XCTAssertEqual(a["value"] as? Double, 85, "the value at t=21: written 10 s after the firing one, not at every sample")
        XCTAssertEqual(a["started_at"] as? String, "2027-01-15T08:00:01.000Z")
        XCTAssertTrue(a["label"] is NSNull)
        let alertID = try XCTUnwrap(a["id"] as? Int)

        let (_, op) = try h.makeUser("otto", role: "operator")
        XCTAssertEqual(h.call("POST", "/api/alerts/\(alertID)/ack").status, 401)
        let acked = h.call("POST", "/api/alerts/\(alertID)/ack", token: op)
        XCTAssertEqual(acked.status, 200, body(acked))
        XCTAssertEqual(try h.object(acked)["acked_by"] as? String, "otto")
        XCTAssertEqual(h.call("POST", "/api/alerts/99999/ack", token: op).status, 404)

        // A silence: the resolve is still recorded, marked silenced.
        let sil = h.call("POST", "/api/alerts/silences", json: ["matcher": ["rule_name": "cpu busy"], "ends_at": "2999-01-01T00:00:00Z",
                                                                 "starts_at": "2020-01-01T00:00:00Z", "comment": "maintenance"], token: op)
        XCTAssertEqual(sil.status, 201, body(sil))
        let silenceID = try XCTUnwrap(try h.object(sil)["id"] as? Int)
        XCTAssertEqual((try h.object(h.call("GET", "/api/alerts/silences", token: op))["silences"] as? [[String: Any]])?.first?["created_by"] as? String, "otto")

        XCTAssertEqual(try evaluate(engine, [cpu: 60], at: 31), [])
        let resolved = try evaluate(engine, [cpu: 60], at: 36)
        XCTAssertEqual(resolved.map(\.state), [.resolved])
        XCTAssertEqual(resolved.first?.silenced, true)
        XCTAssertEqual(resolved.first?.endsAt, 1_800_000_036_000)
        XCTAssertEqual(resolved.first?.startsAt, 1_800_000_011_000)
        XCTAssertEqual(try alertEvents(), events0 + 3)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE source = 'alerts' AND data LIKE '%\"silenced\":true%'"), 1)
        XCTAssertEqual(try h.count("SELECT notify_retries FROM alerts WHERE id = ?", [.int(Int64(alertID))]), 0)
        XCTAssertEqual(h.call("POST", "/api/alerts/\(alertID)/ack", token: op).status, 409, "a resolved alert is not acked")
        XCTAssertEqual(try h.object(h.call("GET", "/api/alerts/active"))["count"] as? Int, 0)
        let hist = try h.object(h.call("GET", "/api/alerts/history"))
        let past = try XCTUnwrap((hist["alerts"] as? [[String: Any]])?.first)
        XCTAssertEqual(past["state"] as? String, "resolved")
        XCTAssertEqual(past["acked_by"] as? String, "otto")
        XCTAssertEqual(past["resolved_at"] as? String, "2027-01-15T08:00:36.000Z")

        XCTAssertEqual(h.call("DELETE", "/api/alerts/silences/\(silenceID)", token: op).status, 200)
        XCTAssertEqual(try h.count("""
            SELECT COUNT(*) FROM events WHERE source = 'audit' AND actor = 'otto' AND data LIKE '%"role":"operator"%'
            AND action IN ('alert.ack', 'alert_silence.create', 'alert_silence.delete')
            """), 3)

        // A new episode is a new row; a restarted engine takes a firing alert back without a new event.
        XCTAssertEqual(try evaluate(engine, [cpu: 99], at: 40).map(\.state), [.pending])
        XCTAssertEqual(try evaluate(engine, [cpu: 99], at: 50).map(\.state), [.firing])
        let restarted = AlertEngine()
        // Still firing: handed to the notifier again (resumed), with no event of its own.
        let resumed = try evaluate(restarted, [cpu: 99], at: 1000)
        XCTAssertEqual(resumed.map(\.state), [.firing])
        XCTAssertEqual(resumed.map(\.resumed), [true])
        XCTAssertEqual(resumed.first?.startsAt, 1_800_000_050_000)
        XCTAssertEqual(try evaluate(restarted, [cpu: 99], at: 1000.5), [], "and only once")
        XCTAssertEqual(try evaluate(restarted, [cpu: 10], at: 1001), [], "keep_firing_for counts from the restart")
        XCTAssertEqual(try evaluate(restarted, [cpu: 10], at: 1006).first?.startsAt, 1_800_000_050_000, "the fired time survives the restart")
        XCTAssertEqual(try alertEvents(), events0 + 6)
        XCTAssertEqual(try evaluate(restarted, [cpu: 99], at: 1007).map(\.state), [.pending])
        XCTAssertEqual(try evaluate(restarted, [cpu: 99], at: 1017).map(\.state), [.firing])
        XCTAssertEqual(try alertEvents(), events0 + 8)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alerts"), 3)
        // Deleting the rule ends its firing alert at the next sample.
        XCTAssertEqual(h.call("DELETE", "/api/alerts/rules/\(id)", token: op).status, 200)
        XCTAssertEqual(try evaluate(restarted, [cpu: 99], at: 1001).map(\.state), [.resolved])
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alerts WHERE state IN ('pending', 'firing')"), 0)
    }

    func testDiskRuleWithoutLabelWatchesEveryMountAndLevelsFollowFiring() throws {
        try StorageService.shared(h.ctx).run { db in _ = try db.execute("UPDATE alert_rules SET enabled = 0", []) }
        _ = try createRule(rule(["name": "disk", "metric": "disk", "threshold": 90, "clear_threshold": 90, "for_seconds": 0,
                                 "keep_firing_for_seconds": 0, "severity": "critical"]))
        let engine = AlertEngine()
        let values: [AlertMetrics.Key: Double] = [.init("disk", "/"): 50, .init("disk", "/data"): 97]
        let (t, levels) = try StorageService.shared(h.ctx).run { db in try engine.evaluate(values, db: db, monotonic: 0, wall: 1000) }
        XCTAssertEqual(t.map(\.labels["mount"]), ["/data"])
        XCTAssertEqual(levels.levels, ["disk": "critical"])
        XCTAssertEqual(levels.rules.filter(\.enabled).map(\.name), ["disk"])
        // The mount disappears: the alert resolves rather than lingers.
        let gone = try StorageService.shared(h.ctx).run { db in try engine.evaluate([.init("disk", "/"): 50], db: db, monotonic: 1, wall: 2000) }
        XCTAssertEqual(gone.transitions.map(\.state), [.resolved])
        XCTAssertEqual(gone.levels.levels, [:])
    }

    func testActiveAndHistoryFollowPublicRead() throws {
        XCTAssertEqual(h.call("GET", "/api/alerts/active").status, 200)
        h = nil
        h = try StorageHarness(Self.engine, settings: ["CC_PUBLIC_READ": "false"])
        for p in ["/api/alerts/active", "/api/alerts/history"] {
            XCTAssertEqual(h.call("GET", p).status, 401, p)
            XCTAssertEqual(h.call("GET", p, token: h.adminToken).status, 200, p)
        }
    }
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class AlertRoutePostgresTests: AlertRouteTests {
    override class var engine: TestEngine { .postgres }
    override func testDefaultRulesAreThereOnceAndEditableForGood() throws { try super.testDefaultRulesAreThereOnceAndEditableForGood() }
    override func testUpgradeFromThePreviousSchemaAddsTablesAndDefaults() throws { try super.testUpgradeFromThePreviousSchemaAddsTablesAndDefaults() }
    override func testRuleCRUDWithAuditAndRoles() throws { try super.testRuleCRUDWithAuditAndRoles() }
    override func testBadInputIs400AndWritesNothing() throws { try super.testBadInputIs400AndWritesNothing() }
    override func testEvaluationWritesOneEventPerTransitionAndTheRoutesShowIt() throws { try super.testEvaluationWritesOneEventPerTransitionAndTheRoutesShowIt() }
    override func testDiskRuleWithoutLabelWatchesEveryMountAndLevelsFollowFiring() throws { try super.testDiskRuleWithoutLabelWatchesEveryMountAndLevelsFollowFiring() }
    override func testActiveAndHistoryFollowPublicRead() throws { try super.testActiveAndHistoryFollowPublicRead() }
}
