import Foundation
import XCTest

/// The suite's short `Scripts/loadtest ui-soak`: the overview open for 90 s in
/// headless Chromium with a sample every 0.05 s (about 1,500 live updates);
/// fails on a JS heap slope over 1 MB per 1,000 updates or DOM nodes over 1.2
/// times their count after 100 updates. The 10-minute run is the scenario's
/// default against any server (docs/performance.md).
final class DashboardSoakTests: XCTestCase {
    func testOverviewHeapAndDOMStayFlatUnderLiveUpdates() throws {
        // Alert rules read a quiet synthetic host: an alert row that comes and goes
        // with this machine's load (the default cpu rule going pending) is not the
        // growth the soak looks for.
        let quiet = NSTemporaryDirectory() + "cc-soak-metrics-\(getpid())-\(UUID().uuidString.prefix(8)).json"
        try Data(#"{"cpu": 1, "memory": 1, "swap": 0}"#.utf8).write(to: URL(fileURLWithPath: quiet))
        defer { try? FileManager.default.removeItem(atPath: quiet) }
        let server = try TestServer(env: ["CC_COLLECT_INTERVAL": "0.05", "CC_TEST_ROUTES": "true", "CC_TEST_METRICS_FILE": quiet])
        defer { server.stop() }
        let password = "ui-soak-viewer-password"
        let pwFile = server.stateDir + "/ui-soak.pw"
        try (password + "\n").write(toFile: pwFile, atomically: true, encoding: .utf8)
        let added = try ExternalTool.capture(TestServer.binary, ["user", "add", "ui-soak", "--role", "viewer", "--password-file", pwFile],
                                             environment: server.env)
        XCTAssertEqual(added.status, 0, added.output)
        let out = (ProcessInfo.processInfo.environment["CC_TEST_OUT"] ?? TestServer.repoRoot + "/.build/test-output") + "/ui-soak"
        try? FileManager.default.removeItem(atPath: out)
        // The password goes by environment: the report records the command line.
        var env = ProcessInfo.processInfo.environment
        env["CC_LOADTEST_PASSWORD"] = password
        let run = try ExternalTool.capture(TestServer.repoRoot + "/Scripts/loadtest",
                                           ["ui-soak", "--url", "http://127.0.0.1:\(server.port)", "--user", "ui-soak",
                                            "--duration", "90", "--sample-interval", "1.5", "--charts", "no", "--quiet",
                                            "--state-dir", server.stateDir, "--out", out],
                                           environment: env)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("loadtest ui-soak: PASS"), run.output)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))) as? [String: Any])
        let soak = try XCTUnwrap(report["ui_soak"] as? [String: Any], "\(report)")
        XCTAssertGreaterThan(soak["updates"] as? Int ?? 0, 500, "live updates fitted: \(soak)")
        XCTAssertFalse(String(decoding: try Data(contentsOf: URL(fileURLWithPath: out + "/report.json")), as: UTF8.self).contains(password))
        print("ui-soak: \(soak)")
    }

    /// The fit itself, on made-up samples: a leak of 2 KB per update fails, a
    /// flat heap with a few seconds' plateau 2 MB high passes, DOM growth of a
    /// quarter fails.
    func testFitCatchesALeakAndIgnoresABriefPlateau() throws {
        let script = """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from cc_loadtest.ui_soak import fits
        def run(heap, dom=lambda u: 200):
            s = [{"updates": u, "heap_bytes": heap(u), "dom_nodes": dom(u), "listeners": 37} for u in range(0, 1500, 30)]
            return fits(s, 1.0, 1.2)
        leak = run(lambda u: 4e6 + 2000 * u)
        flat = run(lambda u: 4e6 + (2e6 if 600 <= u < 690 else 0))
        dom = run(lambda u: 4e6, lambda u: 200 if u < 900 else 250)
        print(json.dumps([leak["heap_slope_mb_per_1000"], flat["heap_slope_mb_per_1000"], dom["dom_ratio"]]))
        """
        let r = try ExternalTool.capture("/usr/bin/python3", ["-c", script, TestServer.repoRoot + "/Scripts/loadtest.d"])
        XCTAssertEqual(r.status, 0, r.output)
        let v = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [Double], r.output)
        // The trailing minimum flattens the first few points: a little under 2.
        XCTAssertEqual(v[0], 2.0, accuracy: 0.1, "the leak's slope, MB per 1,000 updates")
        XCTAssertLessThan(v[1], 0.1, "the plateau is not a slope")
        XCTAssertEqual(v[2], 1.25, accuracy: 0.001)
    }
}
