import Foundation
import Glibc
import XCTest

/// The dashboard (web/, served by nginx under /ui/) through the real stack:
/// nginx's headers and the `/` redirect over HTTP, then a real browser
/// (headless Chromium driven by Selenium, Support/ui_check.py) that signs in
/// with the cookie, watches a live chart move, switches the overview's history
/// ranges (and kills and stops the collector: reset, gap), opens every page, runs a real
/// service through the Services page (so the supervisor is on) and signals a
/// process from the process detail. Screenshots go to $CC_TEST_OUT/ui (default .build/test-output/ui).
final class DashboardBrowserTests: XCTestCase {
    nonisolated(unsafe) static var server: TestServer?

    override class func setUp() {
        server = try? TestServer(env: syntheticCPU().merging(["CC_COLLECT_INTERVAL": "0.25", "CC_LOGIN_RATE_LIMIT": "600",
                                                              "CC_SUPERVISOR": "true"]) { $1 })
    }

    override class func tearDown() {
        server?.stop()
        server = nil
    }

    var server: TestServer { get throws { try XCTUnwrap(Self.server, "test server did not start") } }

    static let pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    func testPagesAndLibraryAreServedWithThePageHeaders() throws {
        for path in ["/ui/", "/ui/js/app.js", "/ui/css/app.css", "/ui/lib/chart.js/chart.min.js"] {
            let r = try server.get(path)
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.headers["content-security-policy"], Self.pageCSP, path)
            XCTAssertEqual(r.headers["cache-control"], "no-cache", path)
            XCTAssertEqual(r.headers["x-content-type-options"], "nosniff", path)
            XCTAssertEqual(r.headers["x-frame-options"], "DENY", path)
            let etag = try XCTUnwrap(r.headers["etag"], path)
            XCTAssertEqual(try server.get(path, headers: ["If-None-Match": etag]).status, 304, path)
        }
        XCTAssertEqual(try server.get("/ui/js/app.js").headers["content-type"], "text/javascript")
        XCTAssertTrue(try server.get("/ui/").text.contains("<script type=\"module\" src=\"js/app.js\">"))
        XCTAssertEqual(try server.get("/ui").status, 301)
        XCTAssertEqual(try server.get("/ui/no-such-file.js").status, 404)
        // API answers keep their own headers.
        XCTAssertEqual(try server.get("/health").headers["cache-control"], "no-store")
    }

    func testRootSendsBrowsersToTheDashboardAndAPIClientsTheIndex() throws {
        let browser = try server.get("/", headers: ["Accept": "text/html,application/xhtml+xml,*/*;q=0.8"])
        XCTAssertEqual(browser.status, 302)
        XCTAssertTrue(browser.headers["location"]?.hasSuffix("/ui/") ?? false, "\(browser.headers)")
        for accept in [nil, "application/json", "*/*"] {
            let api = try server.get("/", headers: accept.map { ["Accept": $0] } ?? [:])
            XCTAssertEqual(api.status, 200, accept ?? "no Accept")
            XCTAssertNotNil(api.json?["links"], accept ?? "no Accept")
            XCTAssertEqual(api.headers["vary"], "Accept")
            XCTAssertEqual(api.headers["cache-control"], "no-store")
        }
    }

    func testBrowserSignsInWatchesLiveChartsAndOpensEveryPage() throws {
        try runBrowserCheck(server, screenshots: "ui")
    }
}

/// With CC_PUBLIC_READ=false nothing is readable without the session: the
/// page's every request and its /ws handshake (Origin checked) go on the cookie.
final class DashboardPrivateBrowserTests: XCTestCase {
    nonisolated(unsafe) static var server: TestServer?

    override class func setUp() {
        server = try? TestServer(env: syntheticCPU().merging(["CC_COLLECT_INTERVAL": "0.25", "CC_LOGIN_RATE_LIMIT": "600",
                                                              "CC_PUBLIC_READ": "false", "CC_SUPERVISOR": "true"]) { $1 })
    }

    override class func tearDown() {
        server?.stop()
        server = nil
    }

    func testBrowserWorksOnTheCookieAlone() throws {
        let server = try XCTUnwrap(Self.server, "test server did not start")
        XCTAssertEqual(try server.get("/api/system/stats").status, 401, "nothing public")
        try runBrowserCheck(server, screenshots: "ui-private", depth: "pages")
    }
}

/// Settings for a server whose alert rules read a cpu of 99 (the synthetic
/// metric source), so that a rule the page adds fires at once.
private func syntheticCPU() -> [String: String] {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("cc-ui-metrics-\(getpid())-\(UUID().uuidString.prefix(8)).json").path
    // A file that cannot be written leaves the alert step to fail, with its own message.
    _ = FileManager.default.createFile(atPath: path, contents: Data(#"{"cpu": 99}"#.utf8))
    return ["CC_TEST_ROUTES": "true", "CC_TEST_METRICS_FILE": path]
}

/// Runs Support/ui_check.py against `server` as its first admin, with the
/// screenshots in $CC_TEST_OUT/`screenshots`, and asserts on its result.
/// `depth` "pages" leaves out the steps that do not depend on how the page
/// authenticates (services, signal, alerts, history ranges): they run once, in "full".
private func runBrowserCheck(_ server: TestServer, screenshots: String, depth: String = "full",
                             file: StaticString = #filePath, line: UInt = #line) throws {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing: Scripts/test installs chromium and chromium-driver")
    }
    let password = try String(contentsOfFile: server.stateDir + "/first-admin-password", encoding: .utf8)
        .trimmingCharacters(in: .newlines)
    let out = (ProcessInfo.processInfo.environment["CC_TEST_OUT"] ?? TestServer.repoRoot + "/.build/test-output") + "/" + screenshots
    try? FileManager.default.removeItem(atPath: out) // only this run's screenshots count
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Support/ui_check.py").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    p.arguments = [script, "http://127.0.0.1:\(server.port)", "admin", password, "a-better-admin-password", out,
                   server.stateDir + "/nginx/nginx.pid", String(server.masterPid), depth]
    let stdout = Pipe(), stderr = Pipe()
    p.standardOutput = stdout
    p.standardError = stderr
    try p.run()
    let text = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let errText = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    print(text, terminator: "") // the script's figures (first load, redraw time) for the test log
    let last = try XCTUnwrap(text.split(separator: "\n").last, "no output; stderr: \(errText)", file: file, line: line)
    let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], String(last))
    XCTAssertEqual(result["result"] as? String, "ok", "\(text)\n\(errText.suffix(2000))", file: file, line: line)
    XCTAssertEqual(p.terminationStatus, 0, file: file, line: line)
    XCTAssertGreaterThan(result["process_rows"] as? Int ?? 0, 0, file: file, line: line)
    let fullOnly = ["overview-24h", "processes-signal", "services-new", "alerts-firing"]
    for name in ["login", "overview-dark", "processes-detail"] + (depth == "full" ? fullOnly : []) {
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(name).png"), "screenshot \(name)", file: file, line: line)
    }
    for name in ["overview", "processes", "network", "events", "users", "services", "alerts"] {
        for shot in [name, name + "-phone"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(shot).png"), "screenshot \(shot)", file: file, line: line)
        }
    }
}
