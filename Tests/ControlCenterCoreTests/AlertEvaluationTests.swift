@testable import ControlCenterCore
import Foundation
import XCTest

/// The alert state machine, without processes or a database.
final class AlertEvaluationTests: XCTestCase {
    let cond = AlertCondition(comparator: .greater, threshold: 90, clearThreshold: 85, forSeconds: 10, keepFiringForSeconds: 5)

    /// Feeds (time, value) pairs and returns the transitions in order.
    func run(_ c: AlertCondition, _ samples: [(Double, Double?)], from start: AlertSeriesState = AlertSeriesState()) -> Run {
        var s = start
        var out: [(Double, AlertState)] = []
        for (t, v) in samples {
            let (next, change) = AlertEvaluation.step(s, c, value: v, now: t)
            s = next
            if let change { out.append((t, change)) }
        }
        return Run(state: s, times: out.map(\.0), states: out.map(\.1))
    }

    struct Run {
        var state: AlertSeriesState
        var times: [Double]
        var states: [AlertState]
    }

    func testPendingThenFiringAfterForThenResolvedAfterKeepFiringFor() {
        let r = run(cond, [(0, 50), (1, 95), (5, 96), (10.9, 97), (11, 97), (12, 80), (16.9, 80), (17, 80), (18, 80)])
        XCTAssertEqual(r.times, [1, 11, 17])
        XCTAssertEqual(r.states, [.pending, .firing, .resolved])
        XCTAssertEqual(r.state, AlertSeriesState(state: .resolved), "no timer survives the resolve")
    }

    func testHysteresisKeepsAFiringAlertBetweenTheThresholds() {
        // 86..89 is below the threshold but above the clear threshold: still firing, no flapping.
        var samples: [(Double, Double?)] = [(0, 95), (10, 95)]
        for t in 11...60 { samples.append((Double(t), t % 2 == 0 ? 89.0 : 91.0)) }
        let r = run(cond, samples)
        XCTAssertEqual(r.states, [.pending, .firing])
        XCTAssertEqual(r.state.state, .firing)
        XCTAssertNil(r.state.clearSince)
    }

    func testHysteresisKeepsAPendingAlertBetweenTheThresholdsToo() {
        // 86..89: below the threshold, above the clear threshold: still pending, then firing after `for`.
        let r = run(cond, [(0, 95), (3, 88), (6, 86), (9, 89), (10, 88)])
        XCTAssertEqual(r.states, [.pending, .firing])
        XCTAssertEqual(r.times, [0, 10])
        XCTAssertEqual(run(cond, [(0, 95), (3, 85)]).states, [.pending, .inactive], "85 is clear of > 85")
    }

    func testValueBackAboveClearThresholdRestartsTheKeepFiringTimer() {
        let r = run(cond, [(0, 95), (10, 95), (11, 80), (14, 80), (15, 87), (16, 80), (20, 80), (21, 80)])
        XCTAssertEqual(r.states, [.pending, .firing, .resolved])
        XCTAssertEqual(r.times.last, 21, "5 s clear counted from 16, not from 11")
    }

    func testPendingThatClearsGoesBackToInactiveAndStartsOverLater() {
        let r = run(cond, [(0, 95), (5, 80), (6, 95), (15, 95), (16, 95)])
        XCTAssertEqual(r.states, [.pending, .inactive, .pending, .firing])
        XCTAssertEqual(r.times.last, 16, "the second episode's timer starts at 6")
    }

    func testZeroForFiresAtOnceAndAResolvedAlertCanFireAgain() {
        let c = AlertCondition(comparator: .greater, threshold: 90, clearThreshold: 90, forSeconds: 0, keepFiringForSeconds: 0)
        let r = run(c, [(0, 95), (1, 50), (2, 95)])
        XCTAssertEqual(r.states, [.firing, .resolved, .firing])
    }

    func testLowerBoundComparatorAndMissingValueCountsAsClear() {
        let c = AlertCondition(comparator: .lessOrEqual, threshold: 10, clearThreshold: 20, forSeconds: 0, keepFiringForSeconds: 0)
        let r = run(c, [(0, 10), (1, 15), (2, 25)])
        XCTAssertEqual(r.states, [.firing, .resolved])
        XCTAssertEqual(r.times.last, 2, "15 is not yet clear of 20")
        let gone = run(cond, [(0, 95), (10, 95), (11, nil), (16, nil)])
        XCTAssertEqual(gone.states, [.pending, .firing, .resolved])
    }

    func testAFiringStateTakenBackAfterARestartDoesNotFireAgain() {
        // What the engine does with an open row at start: firing, timers from now.
        let r = run(cond, [(100, 95), (101, 80), (106, 80)], from: AlertSeriesState(state: .firing, breachedSince: 100))
        XCTAssertEqual(r.states, [.resolved])
    }

    // MARK: rules

    func rule(_ o: [String: Any]) throws -> AlertRule {
        var body: [String: Any] = ["name": "r", "metric": "cpu", "comparator": ">", "threshold": 90]
        for (k, v) in o { body[k] = v }
        return try AlertRule.parse(body, allow: [try CIDR(parsing: "127.0.0.0/8")])
    }

    func invalidField(_ o: [String: Any]) -> String? {
        do {
            _ = try rule(o)
            return nil
        } catch let e as AlertRule.Invalid {
            return e.field
        } catch {
            return "\(error)"
        }
    }

    func testRuleDefaultsAndValidation() throws {
        let r = try rule([:])
        XCTAssertEqual(r.condition.clearThreshold, 90)
        XCTAssertEqual(r.condition.forSeconds, 0)
        XCTAssertEqual(r.severity, .warning)
        XCTAssertTrue(r.enabled)
        XCTAssertEqual(r.targets, [])
        XCTAssertEqual(try rule(["metric": "disk", "label": "/data"]).label, "/data")
        XCTAssertEqual(try rule(["metric": "net_rx", "label": "eth0"]).label, "eth0")

        XCTAssertEqual(invalidField(["metric": "bogus"]), "metric")
        XCTAssertEqual(invalidField(["label": "/"]), "label", "cpu has no label")
        XCTAssertEqual(invalidField(["comparator": "=="]), "comparator")
        XCTAssertEqual(invalidField(["threshold": "90"]), "threshold")
        XCTAssertEqual(invalidField(["threshold": true]), "threshold")
        XCTAssertEqual(invalidField(["clear_threshold": 95]), "clear_threshold", "above the threshold of a > rule")
        XCTAssertNil(invalidField(["comparator": "<", "threshold": 10, "clear_threshold": 15]))
        XCTAssertEqual(invalidField(["comparator": "<", "threshold": 10, "clear_threshold": 5]), "clear_threshold")
        XCTAssertEqual(invalidField(["for_seconds": -1]), "for_seconds")
        XCTAssertEqual(invalidField(["keep_firing_for_seconds": 1e9]), "keep_firing_for_seconds")
        XCTAssertEqual(invalidField(["severity": "page"]), "severity")
        XCTAssertEqual(invalidField(["enabled": 1]), "enabled")
        XCTAssertEqual(invalidField(["name": ""]), "name")
        XCTAssertEqual(invalidField(["nme": "typo"]), "nme")
    }

    func testTargetsAreHTTPOnlyAndMaskedForNonAdmins() throws {
        let ok = try rule(["targets": [["type": "webhook", "url": "https://127.0.0.1/x?token=s3cret", "headers": ["Authorization": "Bearer abc"]],
                                       ["type": "alertmanager", "url": "http://127.0.0.1:9093"]]])
        XCTAssertEqual(ok.targets.count, 2)
        XCTAssertEqual(try AlertRule.targets(fromJSON: ok.targetsJSON), ok.targets, "stored and parsed by one type")
        for bad: Any in [["type": "webhook", "url": "ftp://x/"], ["type": "webhook", "url": "file:///etc/passwd"],
                         ["type": "webhook", "url": "https://user:pw@x/"], ["type": "email", "url": "https://x/"],
                         ["type": "webhook", "url": "https:///nohost"], ["type": "webhook", "url": "https://127.0.0.1/", "headers": ["A": "b\r\nX: y"]],
                         ["type": "webhook", "url": "https://127.0.0.1/", "headers": ["Bad Name": "v"]],
                         ["type": "webhook", "url": "https://10.1.2.3/"], "https://x/"] {
            // The shape is the rule's to refuse, the URL and headers NotificationTarget's.
            let refusal = invalidField(["targets": [bad]])
            XCTAssertTrue(refusal?.hasPrefix("targets") == true || refusal?.contains("invalid_target") == true, "\(bad): \(refusal ?? "accepted")")
        }
        var w = JSONWriter()
        ok.write(&w, secrets: false)
        let masked = String(decoding: w.bytes, as: UTF8.self)
        XCTAssertFalse(masked.contains("s3cret") || masked.contains("Bearer") || masked.contains("/x"), masked)
        XCTAssertTrue(masked.contains("\"masked\":true"), masked)
        var full = JSONWriter()
        ok.write(&full, secrets: true)
        XCTAssertTrue(String(decoding: full.bytes, as: UTF8.self).contains("Bearer abc"))
    }

    // MARK: metrics and the levels file

    func testMetricsFromAStatsBodyAndFromTheTestFile() throws {
        let prefix = Array(#"{"cpu":{"usage_percent":42.5,"load_avg":[1.5,1.0,0.5]},"memory":{"percent":61.2,"swap":{"percent":3.0}},"disks":[{"mount":"/","percent":71.0},{"mount":"/data","percent":93.5}],"snapshot":{"taken_at_ms":1}}"#.utf8)
        let v = AlertMetrics.values(statsBody: prefix[...])
        XCTAssertEqual(v[.init("cpu")], 42.5)
        XCTAssertEqual(v[.init("load5")], 1.0)
        XCTAssertEqual(v[.init("memory")], 61.2)
        XCTAssertEqual(v[.init("swap")], 3.0)
        XCTAssertEqual(v[.init("disk", "/data")], 93.5)
        XCTAssertEqual(v.count, 8)
        let net = NetworkRates.Rates(rxBytesPerSecond: 5, txBytesPerSecond: 7, interfaces: ["eth0": .init(rxBytesPerSecond: 5, txBytesPerSecond: 7)])
        let withNet = AlertMetrics.values(statsBody: prefix[...], network: net)
        XCTAssertEqual(withNet[.init("net_rx", "eth0")], 5)
        XCTAssertEqual(withNet[.init("net_tx", "eth0")], 7)
        XCTAssertEqual(withNet.count, 10)
        let path = NSTemporaryDirectory() + "cc-metrics-\(UUID().uuidString.prefix(8)).json"
        defer { unlink(path) }
        try Data(#"{"cpu": 95, "disk:/mnt/x:y": 97, "bad": "x"}"#.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(AlertMetrics.values(testFile: path), [.init("cpu"): 95, .init("disk", "/mnt/x:y"): 97])
        XCTAssertEqual(AlertMetrics.values(testFile: path + ".missing"), [:])
    }

    func testSyntheticSourceNeedsTestRoutes() throws {
        XCTAssertNil(try Config(values: ["CC_TEST_METRICS_FILE": "/tmp/m.json"]).testMetricsFile, "ignored in production")
        XCTAssertEqual(try Config(values: ["CC_TEST_METRICS_FILE": "/tmp/m.json", "CC_TEST_ROUTES": "true"]).testMetricsFile, "/tmp/m.json")
    }

    func testLevelsFileRoundTripsAndAgesOut() throws {
        let dir = NSTemporaryDirectory() + "cc-levels-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = AlertLevels(levels: ["disk": "critical"], rules: [
            .init(name: "disk full", metric: "disk", label: nil, comparator: ">", threshold: 95, severity: "critical", enabled: true)])
        XCTAssertTrue(l.write(runDir: dir))
        XCTAssertEqual(AlertLevels.read(runDir: dir, maxAge: 30), l)
        XCTAssertNil(AlertLevels.read(runDir: dir, maxAge: 30, now: Clock.wallSeconds() + 60), "an old file is no answer")
        var old = (timespec(tv_sec: time(nil) - 120, tv_nsec: 0), timespec(tv_sec: time(nil) - 120, tv_nsec: 0))
        XCTAssertEqual(withUnsafePointer(to: &old) { $0.withMemoryRebound(to: timespec.self, capacity: 2) { utimensat(AT_FDCWD, AlertLevels.path(runDir: dir), $0, 0) } }, 0)
        XCTAssertNil(AlertLevels.read(runDir: dir, maxAge: 30))
        XCTAssertTrue(AlertLevels.touch(runDir: dir))
        XCTAssertEqual(AlertLevels.read(runDir: dir, maxAge: 30), l, "a touched file is current again")
        XCTAssertFalse(AlertLevels.touch(runDir: dir + "/none"))
        XCTAssertEqual(HealthRoutes.level("disk", l), "critical")
        XCTAssertEqual(HealthRoutes.level("cpu", l), "ok")
        XCTAssertEqual(HealthRoutes.level("cpu", nil), "unknown")
    }
}
