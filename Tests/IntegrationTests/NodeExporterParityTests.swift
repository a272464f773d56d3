import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// Our host metrics against Debian's prometheus-node-exporter (1.5) running
/// beside us: the same series (names and label sets) and values that agree
/// (counters between two node_exporter reads taken around ours; gauges
/// within the tolerances). Filter differences are asserted, not
/// skipped: docs/runbook.md "Metrics and alerts" lists them.
final class NodeExporterParityTests: XCTestCase {
    static let counters = ["node_cpu_seconds_total", "node_context_switches_total", "node_forks_total",
                           "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
                           "node_network_receive_packets_total", "node_network_transmit_packets_total",
                           "node_network_receive_errs_total", "node_network_transmit_errs_total",
                           "node_network_receive_drop_total", "node_network_transmit_drop_total"]
    /// Gauges and their tolerance: relative (2%) unless an absolute one is given.
    static let gauges: [(String, absolute: Double?)] = [
        ("node_load1", 0.5), ("node_load5", 0.5), ("node_load15", 0.5),
        ("node_memory_MemTotal_bytes", nil), ("node_memory_MemAvailable_bytes", nil), ("node_memory_MemFree_bytes", nil),
        ("node_memory_Buffers_bytes", nil), ("node_memory_Cached_bytes", nil), ("node_memory_SwapTotal_bytes", nil),
        ("node_memory_SwapFree_bytes", nil), ("node_filesystem_size_bytes", nil), ("node_filesystem_avail_bytes", nil),
        ("node_filesystem_free_bytes", nil), ("node_filesystem_files", nil), ("node_filesystem_files_free", nil),
        ("node_boot_time_seconds", 1), ("node_procs_running", 4), ("node_procs_blocked", 2), ("node_time_seconds", 1),
        ("node_uname_info", 0),
    ]

    /// node_exporter 1.5's default filesystem exclusions (--collector.filesystem.*-exclude).
    static let excludedFSTypes: Set<String> = ["autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
        "devpts", "devtmpfs", "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc", "procfs", "pstore",
        "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs"]
    static let excludedMounts = try! NSRegularExpression(
        pattern: "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")

    /// File systems without a block device (/proc/filesystems `nodev`): ours lists only the others, and `/`.
    static func nodevTypes() -> Set<String> {
        let text = (try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? ""
        return Set(text.split(separator: "\n").filter { $0.hasPrefix("nodev") }.compactMap { $0.split(separator: "\t").last.map(String.init) })
    }

    static func label(_ series: String, _ key: String) -> String? {
        guard let r = series.range(of: "\(key)=\"") else { return nil }
        return String(series[r.upperBound...].prefix { $0 != "\"" })
    }

    func testHostMetricsMatchNodeExporter() throws {
        let binary = try XCTUnwrap(ExternalTool.path("prometheus-node-exporter"), "Debian package prometheus-node-exporter")
        // Snapshots refreshed every 50 ms (by the collector; without root by
        // the scrape too); ours is read once both were taken after the first
        // node_exporter read, so it falls between the two.
        let s = try TestServer(env: ["CC_CACHE_TTL_STATS": "0.05", "CC_CACHE_TTL_NETWORK": "0.05",
                                     "CC_COLLECT_INTERVAL": "0.05"])
        let port = TestServer.freePort()
        let exporter = try ExternalTool.start(binary, ["--web.listen-address=127.0.0.1:\(port)"], logDir: s.stateDir)
        defer { ExternalTool.stop(exporter) }
        func theirs() throws -> Scrape { Scrape(try HTTPClient.request(port: port, path: "/metrics", timeout: 10).text) }
        XCTAssertTrue(waitUntil(10) { (try? HTTPClient.request(port: port, path: "/metrics", timeout: 2).status) == 200 })

        let before = try theirs()
        let beforeMillis = Clock.wallMillis()
        // A worker under a root master never refreshes: wait for the collector's next copies.
        XCTAssertTrue(waitUntil(10) {
            ["stats", "network"].allSatisfy { kind in
                guard let snap = (try? s.get("/api/system/\(kind)"))?.json?["snapshot"] as? [String: Any],
                      let taken = snap["taken_at_ms"] as? Int else { return false }
                return Int64(taken) > beforeMillis
            }
        }, "the collector refreshes stats and network")
        let ours = Scrape(try s.get("/metrics").text)
        let after = try theirs()

        let nodev = Self.nodevTypes()
        func wanted(_ name: String, _ page: Scrape) -> Set<String> {
            Set(page.series.keys.filter { $0 == name || $0.hasPrefix(name + "{") })
        }
        for name in Self.counters + Self.gauges.map(\.0) {
            var expected = wanted(name, after)
            let got = wanted(name, ours)
            XCTAssertFalse(got.isEmpty, "\(name) missing from /metrics")
            if name.hasPrefix("node_network_") {
                // node_exporter 1.5 (netlink) leaves out the loopback device; we list it as /api/system/network does.
                expected.formUnion(got.filter { Self.label($0, "device") == "lo" })
            }
            if name.hasPrefix("node_filesystem_") {
                // Ours: file systems on a block device plus `/`; node_exporter: everything but its exclusions.
                expected = expected.filter { !nodev.contains(Self.label($0, "fstype") ?? "") || Self.label($0, "mountpoint") == "/" }
                for series in got.subtracting(expected) {
                    let type = Self.label(series, "fstype") ?? "", mount = Self.label(series, "mountpoint") ?? ""
                    let excluded = Self.excludedFSTypes.contains(type)
                        || Self.excludedMounts.firstMatch(in: mount, range: NSRange(location: 0, length: (mount as NSString).length)) != nil
                    XCTAssertTrue(excluded, "\(series): neither node_exporter's exclusions nor a difference we know")
                    expected.insert(series)
                }
            }
            XCTAssertEqual(got.sorted(), expected.sorted(), "series of \(name)")
        }

        for name in Self.counters {
            for (series, v) in ours.series where series == name || series.hasPrefix(name + "{") {
                guard let lo = before.series[series], let hi = after.series[series] else { continue }
                let slack = max(abs(hi), 1) * 1e-9
                XCTAssertTrue(v >= lo - slack && v <= hi + slack, "\(series): ours \(v), node_exporter \(lo) … \(hi)")
            }
        }
        for (name, absolute) in Self.gauges {
            for (series, v) in ours.series where series == name || series.hasPrefix(name + "{") {
                guard let theirs = after.series[series] else { continue }
                let tolerance = absolute ?? max(abs(theirs), abs(v)) * 0.02
                XCTAssertLessThanOrEqual(abs(v - theirs), tolerance, "\(series): ours \(v), node_exporter \(theirs)")
            }
        }
    }
}
