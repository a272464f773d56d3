import Foundation
import XCTest

/// The suite's short `Scripts/loadtest ui-soak`: the overview open for 90 s in
/// headless Chromium with a sample every 0.05 s (about 1,500 live updates);
/// fails on a JS heap slope over 1 MB per 1,000 updates or DOM nodes over 1.2
/// times their count after 100 updates. The 10-minute run is the scenario's
/// default against any server (docs/performance.md).
final class DashboardSoakTests: XCTestCase {
    func testOverviewHeapAndDOMStayFlatUnderLiveUpdates() throws {
        let server = try TestServer(env: ["CC_COLLECT_INTERVAL": "0.05"])
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
}
