@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The pieces of /metrics without processes: the exposition writer, the
/// per-worker counts, the file format, folding, and the host renderer.
final class MetricsTests: XCTestCase {
    func testExpositionEscapingAndNumbers() {
        var t = PrometheusText()
        t.family("x_total", "counter", "a \\ b\nc")
        t.sample("x_total", ["a": "q\"u\\o\nte"], 3)
        t.sample("x_total", 0.25)
        XCTAssertEqual(String(decoding: t.bytes, as: UTF8.self),
                       "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{a=\"q\\\"u\\\\o\\nte\"} 3\nx_total 0.25\n")
        XCTAssertEqual(PrometheusText.format(.infinity), "+Inf")
        XCTAssertEqual(PrometheusText.format(.nan), "NaN")
        XCTAssertEqual(PrometheusText.format(1e20), "1e+20")
        XCTAssertEqual(PrometheusText.format(-2), "-2")
    }

    func testRequestLabelsCannotGrowWithClientInput() {
        let m = RequestMetrics(path: nil)
        m.record(route: "/api/events", method: "GET", status: 200, errorCode: nil, seconds: 0.0004)
        m.record(route: nil, method: "BREW", status: 404, errorCode: "not_found", seconds: 0.003)
        m.record(route: "/api/auth/login", method: "POST", status: 401, errorCode: "invalid_credentials", seconds: 0.2)
        m.record(route: "/api/events", method: "GET", status: 503, errorCode: "database_timeout", seconds: 11)
        m.record(route: "/api/auth/login", method: "POST", status: 429, errorCode: "too_many_attempts", seconds: 0.001)
        let s = m.samples()
        XCTAssertEqual(s["cc_http_requests_total{route=\"other\",method=\"other\",code=\"4xx\"}"], 1)
        XCTAssertEqual(s["cc_http_requests_total{route=\"/api/events\",method=\"GET\",code=\"2xx\"}"], 1)
        XCTAssertEqual(s["cc_http_requests_total{route=\"/api/events\",method=\"GET\",code=\"5xx\"}"], 1)
        XCTAssertEqual(s["cc_login_failures_total"], 1)
        XCTAssertEqual(s["cc_login_throttled_total"], 1)
        XCTAssertEqual(s["cc_database_errors_total{code=\"database_timeout\"}"], 1)
        // 0.4 ms falls in the first bucket; 11 s only in +Inf.
        XCTAssertEqual(s["cc_http_request_duration_seconds_bucket{route=\"/api/events\",le=\"0.0005\"}"], 1)
        XCTAssertEqual(s["cc_http_request_duration_seconds_bucket{route=\"/api/events\",le=\"10\"}"], 1)
        XCTAssertEqual(s["cc_http_request_duration_seconds_bucket{route=\"/api/events\",le=\"+Inf\"}"], 2)
        XCTAssertEqual(s["cc_http_request_duration_seconds_count{route=\"/api/events\"}"], 2)
        XCTAssertEqual(s["cc_http_request_duration_seconds_sum{route=\"/api/events\"}"] ?? 0, 11.0004, accuracy: 1e-9)
        XCTAssertEqual(RequestMetrics.statusClass(99), "other")
        XCTAssertEqual(RequestMetrics.statusClass(599), "5xx")
    }

    func testFileRoundTripsAndSkipsGarbage() {
        let f = MetricsFile(samples: ["a_total{x=\"1 2\"}": 3, "b_total": 0.5], folded: ["1-2.metrics"])
        XCTAssertEqual(MetricsFile.decode(f.encode()), f)
        let odd = MetricsFile.decode(Array("a_total 1\nnot a number\n\na_total 2\n".utf8))
        XCTAssertEqual(odd.samples, ["a_total": 3])
    }

    func testCatalogOrdersHistogramsAndFillsZeros() {
        let m = RequestMetrics(path: nil)
        m.record(route: "/b", method: "GET", status: 200, errorCode: nil, seconds: 3)
        m.record(route: "/a", method: "GET", status: 200, errorCode: nil, seconds: 0.001)
        var t = PrometheusText()
        MetricsCatalog.write(&t, totals: m.samples())
        let lines = String(decoding: t.bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        let a = lines.filter { $0.hasPrefix("cc_http_request_duration_seconds") && $0.contains("\"/a\"") }
        XCTAssertEqual(a.count, 17)
        XCTAssertTrue(a[0].contains("le=\"0.0005\"") && a[13].contains("le=\"10\"") && a[14].contains("le=\"+Inf\""))
        XCTAssertTrue(a[15].hasPrefix("cc_http_request_duration_seconds_sum") && a[16].hasPrefix("cc_http_request_duration_seconds_count"))
        XCTAssertEqual(lines.filter { $0.hasPrefix("# TYPE cc_http_request_duration_seconds ") }, ["# TYPE cc_http_request_duration_seconds histogram"])
        XCTAssertTrue(lines.contains("cc_login_failures_total 0"))
        XCTAssertTrue(lines.contains("cc_database_errors_total{code=\"database_unavailable\"} 0"))
    }

    /// A dead worker's file is folded once, a live one is summed and kept,
    /// and a fold that died before unlinking is not counted twice.
    func testFoldingKeepsTotalsAcrossExitedWorkers() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("cc-metrics-\(getpid())-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: run) }
        let store = MetricsStore(runDir: run)
        store.ensureDirectory()
        // A scraping worker's cache of decoded files must follow every change.
        let cache = MetricsStore.Cache()
        // A pid that is surely not running: a child we started and reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = child.processIdentifier
        let deadPath = store.workerPath(pid: dead, startedMillis: 1)
        AtomicFile.write(MetricsFile(samples: ["a_total": 5]).encode(), to: deadPath)
        AtomicFile.write(MetricsFile(samples: ["a_total": 2]).encode(), to: store.workerPath(pid: getpid(), startedMillis: 1))
        XCTAssertEqual(store.totals(cache: cache)["a_total"], 7)
        XCTAssertFalse(FileManager.default.fileExists(atPath: deadPath))
        XCTAssertEqual(store.totals(cache: cache)["a_total"], 7, "folded once")
        // A fold interrupted after writing exited.metrics: the listed file comes back.
        AtomicFile.write(MetricsFile(samples: ["a_total": 5]).encode(), to: deadPath)
        XCTAssertEqual(store.totals(cache: cache)["a_total"], 7, "a file already folded is unlinked, not added")
        XCTAssertFalse(FileManager.default.fileExists(atPath: deadPath))
        // The live worker's file grows; the total follows.
        AtomicFile.write(MetricsFile(samples: ["a_total": 4]).encode(), to: store.workerPath(pid: getpid(), startedMillis: 1))
        XCTAssertEqual(store.totals(cache: cache)["a_total"], 9)
    }

    func testCIDRContains() throws {
        XCTAssertTrue(try CIDR(parsing: "10.1.0.0/16").contains("10.1.255.3"))
        XCTAssertFalse(try CIDR(parsing: "10.1.0.0/16").contains("10.2.0.1"))
        XCTAssertTrue(try CIDR(parsing: "192.168.1.7").contains("192.168.1.7"))
        XCTAssertFalse(try CIDR(parsing: "192.168.1.7").contains("192.168.1.8"))
        XCTAssertTrue(try CIDR(parsing: "2001:db8::/32").contains("2001:db8:1::5"))
        XCTAssertFalse(try CIDR(parsing: "2001:db8::/32").contains("10.0.0.1"))
        XCTAssertTrue(try CIDR(parsing: "0.0.0.0/0").contains("8.8.8.8"))
        XCTAssertTrue(try CIDR(parsing: "10.0.0.0/9").contains("10.127.0.1"))
        XCTAssertFalse(try CIDR(parsing: "10.0.0.0/9").contains("10.128.0.1"))
    }

    func testMetricsRouteChecksTheAllowList() throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("cc-metrics-route-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let config = try Config(values: ["CC_STATE_DIR": state, "CC_METRICS_ALLOW": "10.9.0.0/16"])
        let router = Application.makeRouter(config: config)
        let ctx = WorkerContext(config: config, log: Log(path: "/dev/null", level: .error))
        let refused = router.route(Request(method: "GET", path: "/metrics", remoteAddress: "10.8.0.1"), context: ctx)
        XCTAssertEqual(refused.response.status, 403)
        XCTAssertEqual(refused.route, "/metrics")
        XCTAssertNotEqual(router.handle(Request(method: "GET", path: "/metrics", remoteAddress: "10.9.3.4"), context: ctx).status, 403)
    }

    func testNginxAllowsTheSameNetworks() throws {
        let conf = NginxRender(config: try Config(values: ["CC_STATE_DIR": "/srv/cc", "CC_METRICS_ALLOW": "10.9.0.0/16,2001:db8::/32"]),
                               directory: "/srv/cc/nginx", bench: false)
        let snippet = try XCTUnwrap(try conf.files().first { $0.name == "control-center.conf" }?.contents)
        XCTAssertTrue(snippet.contains("location = /metrics {\n    allow 127.0.0.1;\n    allow ::1;\n    allow 10.9.0.0/16;\n    allow 2001:db8::/32;\n    deny all;\n"), snippet)
    }

    func testProcStatParsing() {
        let text = "cpu  10 1 5 100 2 0 1 0 0 0\ncpu0 6 1 3 50 1 0 1 0 0 0\ncpu1 4 0 2 50 1 0 0 0 0 0\nintr 1 2\n"
            + "ctxt 12345\nbtime 1700000000\nprocesses 777\nprocs_running 3\nprocs_blocked 1\n"
        let s = NodeExporterMetrics.parseProcStat(text)
        XCTAssertEqual(s.cpus.map(\.cpu), [0, 1])
        XCTAssertEqual(s.cpus[0].ticks, [6, 1, 3, 50, 1, 0, 1, 0])
        XCTAssertEqual([s.contextSwitches, s.bootTime, s.forks, s.running, s.blocked], [12345, 1_700_000_000, 777, 3, 1])
        var t = PrometheusText()
        NodeExporterMetrics.writeHost(&t, stat: s, userHZ: 100, load: [0.5, 0.25, 0.1], meminfo: ["MemTotal": 1024],
                                      disks: [], uname: [("sysname", "Linux")])
        let page = String(decoding: t.bytes, as: UTF8.self)
        XCTAssertTrue(page.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 0.5\n"))
        XCTAssertTrue(page.contains("node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 0.04\n"))
        XCTAssertTrue(page.contains("node_memory_MemTotal_bytes 1024\n"))
        XCTAssertFalse(page.contains("node_memory_SwapTotal_bytes"), "no made-up zero for a field /proc/meminfo lacks")
        XCTAssertTrue(page.contains("node_uname_info{sysname=\"Linux\"} 1\n"))
    }
}
