import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// `/metrics` through nginx and a real pool: promtool on a scrape taken
/// under load, counters that survive recycling, SIGKILL and HUP, and a real
/// Prometheus scraping the page and evaluating the shipped rules' and
/// dashboard's queries.
final class MetricsThroughNginxTests: XCTestCase {
    func scrape(_ s: TestServer) throws -> Scrape {
        let r = try s.get("/metrics")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.headers["content-type"], PrometheusText.contentType)
        return Scrape(r.text)
    }

    func testScrapeUnderLoadPassesPromtool() throws {
        let promtool = try XCTUnwrap(ExternalTool.path("promtool"), "Debian package prometheus (Scripts/test installs it)")
        let s = try TestServer()
        let port = s.port
        let load = LoadDriver(clients: 3, {
            try HTTPClient.request(port: port, path: ["/health", "/api/system/stats?x=1", "/nope"][Int.random(in: 0...2)])
        },
                              accept: { [200, 404].contains($0.status) })
        Thread.sleep(forTimeInterval: 1.5)
        let page = try s.get("/metrics")
        load.finish()
        XCTAssertEqual(load.failures, [])
        XCTAssertEqual(page.status, 200)
        let (rc, out) = try ExternalTool.run(promtool, ["check", "metrics"], stdin: page.body, logDir: s.stateDir)
        // Exit 3 is lint findings; node_exporter's meminfo names (node_memory_MemTotal_bytes, ...) are
        // camelCase by design and draw the same finding on node_exporter's own page. Nothing else may.
        let findings = out.split(separator: "\n").filter { !$0.isEmpty && !($0.hasPrefix("node_memory_") && $0.contains("camelCase")) }
        XCTAssertTrue(rc == 0 || (rc == 3 && findings.isEmpty), "promtool exit \(rc): \(out)")
        let m = Scrape(page.text)
        for name in ["cc_http_requests_total", "cc_http_request_duration_seconds_bucket", "cc_pool_workers",
                     "cc_worker_restarts_total", "cc_snapshot_refreshes_total", "cc_database_errors_total",
                     "node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_network_receive_bytes_total",
                     "node_filesystem_size_bytes", "node_uname_info", "node_time_seconds"] {
            XCTAssertTrue(m.names().contains(name), "\(name) missing")
        }
        XCTAssertGreaterThan(m.sum("cc_http_requests_total", ["route=\"other\"", "code=\"4xx\""]), 0)
        XCTAssertGreaterThan(m.sum("cc_http_requests_total", ["route=\"/api/system/stats\""]), 0)
        XCTAssertEqual(m.sum("cc_pool_workers", ["pool=\"main\""]), 2)
        XCTAssertLessThan(m.series.count, 3000)
    }

    /// Sends `n` requests to /health/live and returns the scrape after them.
    func send(_ s: TestServer, _ n: Int) throws {
        for _ in 0..<n { XCTAssertEqual(try s.get("/health/live").status, 200) }
    }

    func liveCount(_ s: TestServer) throws -> Double {
        try scrape(s).sum("cc_http_requests_total", ["route=\"/health/live\""])
    }

    /// A busy worker writes its file at most once a second and an idle one
    /// within a second (its accept wake-up), so a scrape may lag that long.
    func settle(_ s: TestServer, to expected: Int, last: inout Double, _ when: String) throws {
        let deadline = Date().addingTimeInterval(5)
        while true {
            let now = try liveCount(s)
            XCTAssertGreaterThanOrEqual(now, last, "went backwards \(when)")
            last = now
            if now >= Double(expected) || Date() > deadline { break }
            Thread.sleep(forTimeInterval: 0.25)
        }
        XCTAssertEqual(last, Double(expected), "every request counted exactly once \(when)")
    }

    func testCountersNeverGoBackwardsAcrossRecyclingKillAndHUP() throws {
        let s = try TestServer(env: ["CC_MAX_REQUESTS": "15", "CC_MAX_REQUESTS_JITTER": "0"])
        var sent = 0
        var last = 0.0
        // Recycling: 2 workers × 15 requests, several generations.
        try send(s, 70); sent += 70
        try settle(s, to: sent, last: &last, "after recycling")

        // SIGKILL a worker once it has written its file (settled above).
        try send(s, 10); sent += 10
        try settle(s, to: sent, last: &last, "before SIGKILL")
        let victim = try XCTUnwrap(s.poolWorkers("main").first)
        kill(victim, SIGKILL)
        XCTAssertTrue(waitUntil(10) { s.poolIsFull() && !s.poolWorkers("main").contains(victim) })
        try settle(s, to: sent, last: &last, "after SIGKILL")

        // HUP replaces every worker.
        let before = s.poolWorkers("main")
        s.signalMaster(SIGHUP)
        XCTAssertTrue(waitUntil(15) { s.poolIsFull() && s.poolWorkers("main").isDisjoint(with: before) })
        try settle(s, to: sent, last: &last, "after HUP")
        try send(s, 5); sent += 5
        try settle(s, to: sent, last: &last, "after HUP and more requests")
        // Exited workers' files were folded, not left behind.
        let files = try FileManager.default.contentsOfDirectory(atPath: s.stateDir + "/run/metrics")
            .filter { $0.hasSuffix(".metrics") && $0 != "exited.metrics" }
        XCTAssertLessThanOrEqual(files.count, 4, "\(files)")
    }

    func testMetricsRefusedOutsideAllowList() throws {
        // The worker's own check: a trusted proxy passes another client address.
        let s = try TestServer(env: ["CC_TRUSTED_PROXIES": "127.0.0.1", "CC_METRICS_ALLOW": "10.1.0.0/16"])
        XCTAssertEqual(try s.get("/metrics", headers: ["X-Forwarded-For": "10.1.2.3"]).status, 200)
        let refused = try s.get("/metrics", headers: ["X-Forwarded-For": "10.2.0.1"])
        XCTAssertEqual(refused.status, 403)
        XCTAssertEqual(refused.errorCode, "forbidden")
    }

    /// nginx's stub_status counts what nginx answers itself (here a view-less
    /// 404 from the pool and nginx's own 421 both raise `requests`).
    func testNginxStatusIsRenderedForTheSameNetworks() throws {
        let s = try TestServer(env: ["CC_TRUSTED_PROXIES": "127.0.0.1", "CC_METRICS_ALLOW": "10.1.0.0/16"])
        func requests() throws -> Int {
            let r = try s.get("/nginx_status")
            XCTAssertEqual(r.status, 200, r.text)
            // "Active connections: 1 \nserver accepts handled requests\n 5 5 7 \n..."
            let numbers = r.text.split(separator: "\n")[2].split(separator: " ").compactMap { Int($0) }
            return numbers.count == 3 ? numbers[2] : -1
        }
        let before = try requests()
        XCTAssertEqual(try s.get("/", headers: ["Host": "elsewhere.example"]).status, 421)
        XCTAssertGreaterThanOrEqual(try requests(), before + 2)
        XCTAssertEqual(try s.get("/nginx_status", headers: ["X-Forwarded-For": "10.1.0.9"]).status, 200)
        let refused = try s.get("/nginx_status", headers: ["X-Forwarded-For": "10.2.0.9"])
        XCTAssertEqual(refused.status, 403)
        XCTAssertEqual(refused.errorCode, "forbidden")
    }

    func testOpenAPIDocumentIsServed() throws {
        let s = try TestServer()
        let r = try s.get("/openapi.yaml")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-type"], "application/yaml")
        let spec = try String(contentsOfFile: TestServer.repoRoot + "/docs/openapi.yaml", encoding: .utf8)
        XCTAssertEqual(r.text, spec)
    }

    /// Every metric name a PromQL expression mentions (ours and node_exporter's).
    static func metricNames(_ expr: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "\\b(cc|node)_[A-Za-z0-9_]+")
        let ns = expr as NSString
        return Set(regex.matches(in: expr, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) })
    }

    func testRealPrometheusScrapesAndEvaluatesRulesAndDashboard() throws {
        let promtool = try XCTUnwrap(ExternalTool.path("promtool"), "Debian package prometheus")
        let rules = TestServer.repoRoot + "/deploy/prometheus-rules.yml"
        let s = try TestServer()
        let (rc, out) = try ExternalTool.run(promtool, ["check", "rules", rules], logDir: s.stateDir)
        XCTAssertEqual(rc, 0, out)

        let prom = try PrometheusServer(job: "control-center", targets: ["127.0.0.1:\(s.port)"], ruleFiles: [rules],
                                        directory: s.stateDir + "/prometheus")
        defer { prom.stop() }
        XCTAssertTrue(waitUntil(20) { (try? prom.vector("up{job=\"control-center\"} == 1").count) == 1 }, "up != 1")
        let counter = "sum(cc_http_requests_total{route=\"/health/live\"}) or vector(0)"
        let before = try XCTUnwrap(prom.vector(counter).first?.1)
        try send(s, 25)
        XCTAssertTrue(waitUntil(10) { (try? prom.vector(counter).first?.1) == before + 25 },
                      "counter in Prometheus: \(String(describing: try? prom.vector(counter)))")
        XCTAssertTrue(waitUntil(10) { ((try? prom.vector("rate(node_cpu_seconds_total[5s])"))?.count ?? 0) > 0 },
                      "no rate(node_cpu_seconds_total) series")

        // Every dashboard query parses in the real Prometheus, and every
        // metric it (or a rule) names is on the page.
        let page = try scrape(s)
        let dashboard = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: TestServer.repoRoot + "/deploy/grafana-dashboard.json"))) as? [String: Any]
        var exprs: [String] = []
        for panel in (dashboard?["panels"] as? [[String: Any]]) ?? [] {
            for target in (panel["targets"] as? [[String: Any]]) ?? [] { exprs.append(target["expr"] as? String ?? "") }
        }
        XCTAssertGreaterThanOrEqual(exprs.count, 9)
        for expr in exprs {
            // Grafana's variables, as Grafana substitutes them.
            let q = expr.replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$instance", with: ".*")
            let answer = try prom.query(q)
            XCTAssertEqual(answer["status"] as? String, "success", "\(q): \(answer)")
            for name in Self.metricNames(q) { XCTAssertTrue(page.names().contains(name), "dashboard names \(name), not on the page") }
        }
        XCTAssertTrue(waitUntil(10) { ((try? prom.rules()) ?? []).count == 7 && ((try? prom.rules()) ?? []).allSatisfy { $0["health"] as? String == "ok" } },
                      "rules not all evaluated ok: \(String(describing: try? prom.rules()))")
        for rule in try prom.rules() {
            for name in Self.metricNames(rule["query"] as? String ?? "") {
                XCTAssertTrue(page.names().contains(name), "a rule names \(name), not on the page")
            }
        }
    }
}
