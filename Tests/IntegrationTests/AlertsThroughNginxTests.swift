import Foundation
import Glibc
import XCTest

/// Alerts through the real stack: the collector (sampling every 0.2 s)
/// evaluates a rule against the synthetic metric source
/// (CC_TEST_METRICS_FILE), the routes go through nginx to the storage
/// pool, and the transitions' events come on the live events channel.
class AlertsThroughNginxTests: XCTestCase {
    /// The server's database; the PostgreSQL variant overrides it.
    func databaseSettings() throws -> [String: String] { [:] }

    func token(_ s: TestServer) throws -> String { try LiveChannelTests.adminTokenUncached(s) }

    func call(_ s: TestServer, _ method: String, _ path: String, _ json: Any? = nil, token: String?) throws -> HTTPResponse {
        var h: [String: String] = [:]
        if let token { h["Authorization"] = "Bearer \(token)" }
        var body: [UInt8] = []
        if let json {
            h["Content-Type"] = "application/json"
            body = Array(try JSONSerialization.data(withJSONObject: json))
        }
        return try s.request(method, path, headers: h, body: body)
    }

    func setMetrics(_ path: String, _ values: [String: Double]) throws {
        // Written whole and renamed, so the collector never reads half a file.
        try JSONSerialization.data(withJSONObject: values).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    func alertEvents(_ s: TestServer, _ token: String) throws -> [[String: Any]] {
        let r = try call(s, "GET", "/api/events?source=alerts&limit=100", token: token)
        XCTAssertEqual(r.status, 200, r.text)
        return ((r.json?["events"] as? [[String: Any]]) ?? []).reversed()
    }

    func testPendingFiringNoFlappingResolvedWithOneEventEachAckAndSilence() throws {
        var env = try databaseSettings()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-alerts-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let metrics = dir + "/metrics.json"
        try setMetrics(metrics, ["cpu": 10])
        env["CC_STATE_DIR"] = dir
        env["CC_COLLECT_INTERVAL"] = "0.2"
        env["CC_TEST_ROUTES"] = "true"
        env["CC_TEST_METRICS_FILE"] = metrics
        let s = try TestServer(env: env)
        defer { s.stop() }
        let admin = try token(s)

        // The default cpu rule would also watch cpu: take it out, and watch cpu with a quick rule.
        let rules = try XCTUnwrap(try call(s, "GET", "/api/alerts/rules", token: admin).json?["rules"] as? [[String: Any]])
        let cpuHigh = try XCTUnwrap(rules.first { $0["name"] as? String == "cpu high" }?["id"] as? Int)
        XCTAssertEqual(try call(s, "DELETE", "/api/alerts/rules/\(cpuHigh)", token: admin).status, 200)
        // The rule's notifications go to a real webhook receiver, through the collector's Notifier.
        let receiver = try NotificationDeliveryTests.startReceiver(in: dir)
        defer { ExternalTool.stop(receiver.process) }
        let created = try call(s, "POST", "/api/alerts/rules", ["name": "cpu test", "metric": "cpu", "comparator": ">", "threshold": 80,
                                                              "clear_threshold": 60, "for_seconds": 1, "keep_firing_for_seconds": 1,
                                                              "severity": "critical",
                                                              "targets": [["type": "webhook", "url": "http://127.0.0.1:\(receiver.port)/hook"]]],
                                token: admin)
        XCTAssertEqual(created.status, 201, created.text)
        let bad = try call(s, "POST", "/api/alerts/rules", ["name": "x", "metric": "cpu", "comparator": "!", "threshold": 1], token: admin)
        XCTAssertEqual(bad.status, 400, bad.text)
        XCTAssertEqual(bad.errorCode, "validation_error")

        let (op, _) = try operatorToken(s, admin)
        // From here on the events are: pending, firing, ack, silence, resolved.
        let live = try LiveClient.start(.ws, port: s.port, path: "/api/stream/events", count: 5, headers: ["Authorization": "Bearer \(admin)"])
        XCTAssertTrue(live.waitUntilOpen(), "subscribed")

        try setMetrics(metrics, ["cpu": 95])
        XCTAssertTrue(waitUntil(5) { (try? self.call(s, "GET", "/api/alerts/active", token: nil).json?["count"] as? Int) == 1 })
        XCTAssertTrue(waitUntil(5) {
            ((try? self.call(s, "GET", "/api/alerts/active", token: nil).json?["alerts"] as? [[String: Any]])?.first?["state"] as? String) == "firing"
        }, "firing after for_seconds")
        let health = try XCTUnwrap(try s.get("/health/detailed").json)
        XCTAssertEqual(health["status"] as? String, "critical", "\(health)")
        XCTAssertEqual(((health["system"] as? [String: Any])?["cpu"] as? [String: Any])?["status"] as? String, "critical")
        XCTAssertTrue((health["thresholds"] as? [[String: Any]])?.contains { $0["name"] as? String == "cpu test" } ?? false, "\(health)")

        // Between the clear threshold and the threshold: still firing, no new event.
        for v in [70.0, 85, 65, 90, 70] {
            try setMetrics(metrics, ["cpu": v])
            usleep(300_000)
        }
        let active = try XCTUnwrap((try call(s, "GET", "/api/alerts/active", token: nil).json?["alerts"] as? [[String: Any]])?.first)
        XCTAssertEqual(active["state"] as? String, "firing")
        let id = try XCTUnwrap(active["id"] as? Int)

        let ack = try call(s, "POST", "/api/alerts/\(id)/ack", token: op)
        XCTAssertEqual(ack.status, 200, ack.text)
        XCTAssertEqual(ack.json?["acked_by"] as? String, "otto")
        let silence = try call(s, "POST", "/api/alerts/silences", ["matcher": ["rule_name": "cpu test"], "ends_at": "2999-01-01T00:00:00Z"], token: op)
        XCTAssertEqual(silence.status, 201, silence.text)
        XCTAssertEqual(silence.json?["created_by"] as? String, "otto")

        try setMetrics(metrics, ["cpu": 20])
        XCTAssertTrue(waitUntil(5) { (try? self.call(s, "GET", "/api/alerts/active", token: nil).json?["count"] as? Int) == 0 }, "resolved")
        let past = try XCTUnwrap((try call(s, "GET", "/api/alerts/history", token: nil).json?["alerts"] as? [[String: Any]])?.first)
        XCTAssertEqual(past["state"] as? String, "resolved")
        XCTAssertEqual(past["acked_by"] as? String, "otto")
        XCTAssertNotNil(past["fired_at"] as? String)

        let events = try alertEvents(s, admin)
        XCTAssertEqual(events.compactMap { $0["action"] as? String }, ["alert.pending", "alert.firing", "alert.resolved"])
        XCTAssertEqual(events.map { $0["level"] as? String }, ["info", "critical", "info"])
        XCTAssertEqual((events.last?["data"] as? [String: Any])?["silenced"] as? Bool, true)
        let got = try live.finish().compactMap { m -> String? in
            guard let e = (try? m.object())?["event"] as? [String: Any], e["source"] as? String == "alerts" else { return nil }
            return e["action"] as? String
        }
        XCTAssertEqual(got, ["alert.pending", "alert.firing", "alert.resolved"], "each transition once on the events channel")
        // The firing went to the receiver once; the resolution did not, as a silence matched it.
        XCTAssertTrue(waitUntil(5) { !receiver.records().isEmpty }, "the webhook got the firing alert")
        usleep(500_000)
        let hooks = receiver.records().compactMap { ($0["body"] as? [String: Any])?["status"] as? String }
        XCTAssertEqual(hooks, ["firing"], "\(receiver.records())")
        let audit = try call(s, "GET", "/api/events?source=audit&limit=100", token: admin).json?["events"] as? [[String: Any]] ?? []
        let byOtto = audit.filter { $0["actor"] as? String == "otto" && ($0["action"] as? String)?.hasPrefix("alert") == true }
            .compactMap { $0["action"] as? String }
        XCTAssertEqual(Set(byOtto), ["alert.ack", "alert_silence.create"])
    }

    func operatorToken(_ s: TestServer, _ admin: String) throws -> (String, Int) {
        let r = try call(s, "POST", "/api/auth/register", ["username": "otto", "password": "operator-password-1", "role": "operator"], token: admin)
        XCTAssertEqual(r.status, 201, r.text)
        let login = try call(s, "POST", "/api/auth/login", ["username": "otto", "password": "operator-password-1"], token: nil)
        return (try XCTUnwrap(login.json?["access_token"] as? String, login.text), try XCTUnwrap(r.json?["id"] as? Int))
    }
}

/// The same on PostgreSQL (needs CC_TEST_POSTGRES_URL; its `public` schema is emptied first).
final class AlertsThroughNginxPostgresTests: AlertsThroughNginxTests {
    override func databaseSettings() throws -> [String: String] {
        guard let url = ProcessInfo.processInfo.environment["CC_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw XCTSkip("PostgreSQL variant skipped: CC_TEST_POSTGRES_URL is not set")
        }
        let reset = try ExternalTool.capture("/usr/bin/psql", [url, "-q", "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public"])
        XCTAssertEqual(reset.status, 0, reset.output)
        return ["CC_DATABASE_URL": url]
    }

    override func testPendingFiringNoFlappingResolvedWithOneEventEachAckAndSilence() throws {
        try super.testPendingFiringNoFlappingResolvedWithOneEventEachAckAndSilence()
    }
}
