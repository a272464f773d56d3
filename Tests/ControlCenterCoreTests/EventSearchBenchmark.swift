@testable import ControlCenterCore
import Foundation
import XCTest

/// Search micro-benchmark (Scripts/bench.d/search.sh runs it; skipped
/// unless CC_BENCH_SEARCH=1): 50k events shaped like the mixed-load
/// benchmark's writes, `q=` at several densities through the repository,
/// the scan (`.scan`, the pre-index query) against what requests now do
/// (`.automatic`), the index query alone (`.index`, no probe), and what
/// the index adds to a one-row write transaction.
class EventSearchBenchmark: StorageTestCase {
    static let rows = Int(ProcessInfo.processInfo.environment["CC_BENCH_SEARCH_ROWS"] ?? "") ?? 50_000
    static let iterations = 40

    override func setUpWithError() throws {
        guard ProcessInfo.processInfo.environment["CC_BENCH_SEARCH"] == "1" else {
            throw XCTSkip("benchmark: set CC_BENCH_SEARCH=1 (Scripts/bench.d/search.sh)")
        }
        h = try StorageHarness(Self.engine, settings: ["CC_DB_TIMEOUT": "60"])
    }

    func testSearchAndInsertCost() throws {
        let db = try StorageService.shared(h.ctx).database()
        let n = Self.rows
        // Messages as mixed_load.py writes them ("w-<10-digit seq>."), so
        // "77." matches 1 in 100; every tenth row gets a target and every
        // other row an action, for 1-in-10 and 1-in-2 texts.
        _ = try db.transaction {
            if db.engine == .sqlite {
                try db.execute("""
                    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
                    INSERT INTO events (ts, level, source, action, target, message, data)
                    SELECT 1700000000000 + i * 10, 'info', 'bench', CASE WHEN i % 2 = 0 THEN 'check.even' END,
                           CASE WHEN i % 10 = 0 THEN 'host-tenth' END, 'w-' || substr('0000000000' || i, -10) || '.', '{"n":"' || i || '"}' FROM s
                    """, [.int(Int64(n))])
            } else {
                try db.execute("""
                    INSERT INTO events (ts, level, source, action, target, message, data)
                    SELECT 1700000000000 + i * 10, 'info', 'bench', CASE WHEN i % 2 = 0 THEN 'check.even' END,
                           CASE WHEN i % 10 = 0 THEN 'host-tenth' END, 'w-' || lpad(i::text, 10, '0') || '.', '{"n":"' || i || '"}' FROM generate_series(1, ?::int) i
                    """, [.int(Int64(n))])
            }
        }
        if db.engine == .postgres { try db.execute("VACUUM ANALYZE events", []) } else { try db.execute("ANALYZE", []) }
        print("search-bench engine=\(db.engine.rawValue) rows=\(n) iterations=\(Self.iterations) (ms per search, limit 100)")
        for (text, density) in [("777.", "1/1000"), ("77.", "1/100"), ("tenth", "1/10"), ("even", "1/2"), ("7.", "1/10, <3 chars")] {
            var f = EventFilter()
            f.text = text
            f.limit = 100
            var line = "search-bench \(db.engine.rawValue) q=\(text) density=\(density)"
            var answers: [[Int64]] = []
            for strategy in [EventRepository.TextStrategy.scan, .automatic, .index] {
                var repo = EventRepository(db)
                repo.textStrategy = strategy
                answers.append(try repo.list(f).map(\.id))
                let t = try Self.time(Self.iterations) { _ = try repo.list(f) }
                let name = strategy == .scan ? "before(scan)" : strategy == .automatic ? "after" : "index-only"
                line += " \(name) p50=\(t.p50) p90=\(t.p90)"
            }
            XCTAssertEqual(answers[0], answers[1], text)
            XCTAssertEqual(answers[0], answers[2], text)
            print(line)
        }
        // One event per transaction, as POST /api/events writes it.
        let repo = EventRepository(db)
        var seq = n
        func insertCost() throws -> (p50: String, p90: String) {
            try Self.time(500) {
                seq += 1
                _ = try db.transaction {
                    try repo.insert(Event(level: .info, source: "bench", actor: nil, action: nil, target: nil,
                                          message: "w-\(String(format: "%010d", seq)).", data: "{\"n\":\"\(seq)\"}"))
                }
            }
        }
        let with = try insertCost()
        if db.engine == .sqlite {
            for t in ["insert", "delete", "update"] { try db.execute("DROP TRIGGER events_fts_\(t)", []) }
        } else {
            try db.execute("DROP INDEX \(EventSearchSchema.postgresIndex)", [])
        }
        let without = try insertCost()
        print("search-bench \(db.engine.rawValue) insert (1 row per transaction) without-index p50=\(without.p50) p90=\(without.p90) with-index p50=\(with.p50) p90=\(with.p90)")
    }

    /// Wall-clock p50 and p90 in ms over `n` runs, after 3 warm-ups.
    static func time(_ n: Int, _ body: () throws -> Void) throws -> (p50: String, p90: String) {
        for _ in 0..<3 { try body() }
        var ms: [Double] = []
        for _ in 0..<n {
            let t0 = Clock.monotonicSeconds()
            try body()
            ms.append((Clock.monotonicSeconds() - t0) * 1000)
        }
        ms.sort()
        let fmt = { (v: Double) in String(format: "%.3f", v) }
        return (fmt(ms[n / 2]), fmt(ms[n * 9 / 10]))
    }
}

final class EventSearchPostgresBenchmark: EventSearchBenchmark {
    override class var engine: TestEngine { .postgres }
    override func testSearchAndInsertCost() throws { try super.testSearchAndInsertCost() }
}
