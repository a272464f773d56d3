@testable import ControlCenterCore
import Foundation
import XCTest

/// ControlRetention on each engine: finished rows past their window go,
/// open or recent ones stay, and one round deletes at most a batch per table.
class ControlRetentionTests: StorageTestCase {
    let day: Int64 = 86_400_000

    func insertAlert(_ db: Database, state: String, updated: Int64) throws {
        try db.execute("""
            INSERT INTO alerts (rule_id, rule_name, metric, label, severity, state, threshold, pending_since, updated_at)
            VALUES (1, 'cpu high', 'cpu', ?, 'warning', ?, 90, ?, ?)
            """, [.text("\(state)-\(updated)"), .text(state), .int(updated), .int(updated)])
    }

    func insertAction(_ db: Database, status: String, finished: Int64?) throws {
        try db.execute("INSERT INTO service_actions (service, action, status, actor, created_at, finished_at) VALUES ('web', 'start', ?, 'admin', ?, ?)",
                       [.text(status), .int(finished ?? 0), finished.map { .int($0) } ?? .null])
    }

    func testFinishedRowsGoAfterTheirWindowAndOpenOnesStay() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let now = Clock.wallMillis()
        let keep = Int64(h.config.eventsRetentionDays)
        // Alerts follow the events' retention; open ones stay however old.
        try insertAlert(db, state: "resolved", updated: now - (keep + 1) * day)
        try insertAlert(db, state: "inactive", updated: now - (keep + 1) * day)
        try insertAlert(db, state: "resolved", updated: now - (keep - 1) * day)
        try insertAlert(db, state: "firing", updated: now - (keep + 100) * day)
        // Silences, actions and signals: 7 days after they ended.
        for ends in [now - 8 * day, now - 6 * day, now + day] {
            try db.execute("INSERT INTO alert_silences (metric, starts_at, ends_at, created_by, created_at) VALUES ('cpu', ?, ?, 'admin', ?)",
                           [.int(ends - day), .int(ends), .int(ends - day)])
        }
        try insertAction(db, status: "done", finished: now - 8 * day)
        try insertAction(db, status: "superseded", finished: now - 6 * day)
        try insertAction(db, status: "pending", finished: nil)
        for (status, finished) in [("sent", now - 8 * day), ("failed", now - 6 * day)] {
            try db.execute("INSERT INTO process_signals (pid, signal, status, actor, created_at, finished_at) VALUES (42, 'TERM', ?, 'admin', ?, ?)",
                           [.text(status), .int(finished), .int(finished)])
        }
        try db.execute("INSERT INTO process_signals (pid, signal, status, actor, created_at) VALUES (42, 'TERM', 'pending', 'admin', ?)",
                       [.int(now - 30 * day)])

        XCTAssertEqual(try ControlRetention.prune(db, config: h.config, now: now), 5)
        XCTAssertEqual(try db.query("SELECT state FROM alerts ORDER BY state", []).compactMap { $0.string(0) }, ["firing", "resolved"])
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM alert_silences"), 2)
        XCTAssertEqual(try db.query("SELECT status FROM service_actions ORDER BY status", []).compactMap { $0.string(0) },
                       ["pending", "superseded"])
        XCTAssertEqual(try db.query("SELECT status FROM process_signals ORDER BY status", []).compactMap { $0.string(0) },
                       ["failed", "pending"])
        XCTAssertEqual(try ControlRetention.prune(db, config: h.config, now: now), 0)
    }

    func testABacklogDrainsInBatches() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let now = Clock.wallMillis()
        let backlog = ControlRetention.batch + 20
        try db.transaction {
            for _ in 0..<backlog { try insertAction(db, status: "done", finished: now - 30 * day) }
        }
        XCTAssertEqual(try ControlRetention.prune(db, config: h.config, now: now), ControlRetention.batch, "one batch per round")
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM service_actions"), 20)
        XCTAssertEqual(try ControlRetention.prune(db, config: h.config, now: now), 20)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM service_actions"), 0)
    }

    /// Each rule is an index range on SQLite, not a scan of the table
    /// (PostgreSQL's planner decides by its statistics).
    func testEachRuleReadsAnIndex() throws {
        try XCTSkipUnless(Self.engine == .sqlite, "EXPLAIN QUERY PLAN is SQLite's")
        let db = try h.openConnection()
        defer { db.close() }
        for rule in ControlRetention.rules(h.config) {
            let plan = try db.query("EXPLAIN QUERY PLAN " + ControlRetention.batchSQL(rule), [.int(0)]).compactMap { $0.string(3) }
            XCTAssertTrue(plan.contains { $0.contains("SEARCH \(rule.table) USING COVERING INDEX") }, "\(rule.table): \(plan)")
        }
    }
}

final class ControlRetentionPostgresTests: ControlRetentionTests {
    override class var engine: TestEngine { .postgres }
    override func testFinishedRowsGoAfterTheirWindowAndOpenOnesStay() throws { try super.testFinishedRowsGoAfterTheirWindowAndOpenOnesStay() }
    override func testABacklogDrainsInBatches() throws { try super.testABacklogDrainsInBatches() }
}
