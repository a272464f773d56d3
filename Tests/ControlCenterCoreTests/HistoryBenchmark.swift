@testable import ControlCenterCore
import Foundation
import XCTest

/// History micro-benchmark (Scripts/bench.d/history.sh runs it; skipped
/// unless CC_BENCH_HISTORY=1): full tiers for the issue's reference host
/// (25 series: 48 h of raw samples at 1 s, 90 days at 1 minute and at 15
/// minutes, 2 years at 1 hour and at 6 hours), then `GET /api/system/history?metrics=cpu,memory,disk` (6
/// series) for the last 1 h, 24 h, 30 days and 2 years at the default 1,000
/// points, through the router in-process (no nginx, one connection). Prints
/// lines starting with "history-bench", and the database size. With
/// CC_BENCH_HISTORY_KEEP=<dir>, the seeded SQLite database is copied to
/// `<dir>/control-center.db` and the PostgreSQL one is left in place, for the
/// script's runs through nginx.
class HistoryBenchmark: StorageTestCase {
    static let iterations = Int(ProcessInfo.processInfo.environment["CC_BENCH_HISTORY_ITERATIONS"] ?? "") ?? 60

    override func setUpWithError() throws {
        guard ProcessInfo.processInfo.environment["CC_BENCH_HISTORY"] == "1" else {
            throw XCTSkip("benchmark: set CC_BENCH_HISTORY=1 (Scripts/bench.d/history.sh)")
        }
        h = try StorageHarness(Self.engine, settings: ["CC_DB_TIMEOUT": "120"])
    }

    func testRangeQueryLatencyOnFullTiers() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let now = Clock.wallMillis()
        let seedStart = Clock.monotonicSeconds()
        try HistorySeed.seed(db, config: h.config, now: now, series: HistorySeed.referenceHost,
                             tiers: [.raw: 48 * 3600, .minute: 90 * 86_400, .quarterHour: 90 * 86_400,
                                     .hour: 730 * 86_400, .sixHours: 730 * 86_400])
        print("history-bench \(db.engine) seeded in \(String(format: "%.1f", Clock.monotonicSeconds() - seedStart)) s")
        if db.engine == .sqlite {
            try db.execute("PRAGMA wal_checkpoint(TRUNCATE)", [])
            let size = (try? FileManager.default.attributesOfItem(atPath: h.dir + "/test.db")[.size] as? Int) ?? 0
            print("history-bench sqlite database at full retention: \(size / 1_000_000) MB")
        }
        for range in ["-1h", "-24h", "-30d", "-730d"] {
            var ms: [Double] = []
            var tier = "", buckets = 0, bytes = 0
            for i in 0..<(Self.iterations + 3) {
                let t0 = Clock.monotonicSeconds()
                let r = h.call("GET", "/api/system/history?metrics=cpu,memory,disk&from=\(range)")
                let elapsed = (Clock.monotonicSeconds() - t0) * 1000
                XCTAssertEqual(r.status, 200)
                if i >= 3 { ms.append(elapsed) }  // the first calls warm the page cache and plans
                if i == 0 {
                    let body = try h.object(r)
                    tier = body["tier"] as? String ?? ""
                    let series = body["series"] as? [[String: Any]] ?? []
                    buckets = (series.first?["data"] as? [Any])?.count ?? 0
                    bytes = r.body.count
                    XCTAssertEqual(series.count, 6)
                }
            }
            ms.sort()
            let p50 = ms[ms.count / 2], p99 = ms[min(ms.count - 1, Int(Double(ms.count) * 0.99))]
            print(String(format: "history-bench %@ %-6@ tier %-3@ buckets %4d bytes %6d  p50 %6.1f ms  p99 %6.1f ms",
                         db.engine.rawValue, range, tier, buckets, bytes, p50, p99))
        }
        if db.engine == .sqlite, let keep = ProcessInfo.processInfo.environment["CC_BENCH_HISTORY_KEEP"] {
            try db.execute("VACUUM INTO '\(keep)/control-center.db'", [])
        }
    }
}

final class HistoryPostgresBenchmark: HistoryBenchmark {
    override class var engine: TestEngine { .postgres }
    override func testRangeQueryLatencyOnFullTiers() throws { try super.testRangeQueryLatencyOnFullTiers() }
}
