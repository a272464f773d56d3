@testable import ControlCenterCore
import Foundation
import XCTest

/// Engine behaviour both engines must share: migrations, time limits, lock
/// waits, and what a lost connection looks like.
class StorageEngineTests: StorageTestCase {
    override func setUpWithError() throws {
        h = try StorageHarness(Self.engine, settings: ["CC_DB_TIMEOUT": "0.3"])
    }

    func testMigrationsAreRecordedAndIdempotent() throws {
        let db = try h.openConnection()
        defer { db.close() }
        XCTAssertEqual(try Migrations.run(db), [])
        XCTAssertEqual(try Migrations.currentVersion(db), Migrations.latest)
        XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM schema_migrations", [])?.int(0), Migrations.all.count)
        for table in ["users", "revoked_tokens", "login_failures", "events"] {
            XCTAssertNotNil(try db.queryOne("SELECT COUNT(*) FROM \(table)", []), table)
        }
        // Constraints hold the same on both engines.
        XCTAssertThrowsError(try db.execute("INSERT INTO events (ts, level, source, message) VALUES (1, 'loud', 's', 'm')", [])) {
            guard case DatabaseError.constraint = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try UserRepository(db).create(username: "admin", passwordHash: "x", role: .viewer, email: nil, fullName: nil)) {
            guard case DatabaseError.uniqueViolation = $0 else { return XCTFail("\($0)") }
        }
    }

    func testConcurrentMigrationRunsApplyEachVersionOnce() throws {
        let db = try h.openConnection()
        if db.engine == .postgres {
            try db.execute("DROP SCHEMA public CASCADE", [])
            try db.execute("CREATE SCHEMA public", [])
        } else {
            for t in ["users", "revoked_tokens", "login_failures", "events", "events_fts", "stream_tickets",
                      "services", "service_state", "service_actions", "process_signals",
                      "history_series", "history_raw", "history_1m", "history_15m", "history_1h", "history_6h",
                      "alert_rules", "alerts", "alert_silences", "schema_migrations"] {
                try db.execute("DROP TABLE \(t)", [])
            }
        }
        db.close()
        let config = h.config
        let lock = NSLock()
        nonisolated(unsafe) var applied: [Int] = []
        nonisolated(unsafe) var errors: [String] = []
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                // No flock here: the database alone must serialise the runners.
                let c = try StorageService.openForMigration(config)
                defer { c.close() }
                let a = try Migrations.run(c)
                lock.withLock { applied += a }
            } catch {
                lock.withLock { errors.append(String(describing: error)) }
            }
        }
        XCTAssertEqual(errors, [])
        XCTAssertEqual(applied, Migrations.all.map(\.version))
    }

    func testNewerSchemaIsRefused() throws {
        let db = try h.openConnection()
        defer { db.close() }
        try db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", [])
        XCTAssertThrowsError(try Migrations.run(db))
    }

    func testSlowQueryEndsAtTheStatementTimeout() throws {
        let started = Clock.monotonicSeconds()
        let r = h.call("GET", "/api/test/db-sleep?ms=3000")
        let elapsed = Clock.monotonicSeconds() - started
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(h.errorCode(r), "database_timeout")
        XCTAssertLessThan(elapsed, 1.0)
        XCTAssertGreaterThanOrEqual(elapsed, 0.25)
        XCTAssertEqual(h.call("GET", "/api/test/db-sleep?ms=50").status, 200, "the connection is usable afterwards")
    }

    func testWriterBlockedByAHeldLockGetsATimeoutNotAnError() throws {
        let holder = try h.openConnection()
        defer { holder.close() }
        if holder.engine == .sqlite {
            try holder.execute("BEGIN IMMEDIATE", [])
        } else {
            try holder.execute("BEGIN", [])
            try holder.execute("UPDATE users SET full_name = 'held' WHERE id = 1", [])
        }
        let started = Clock.monotonicSeconds()
        XCTAssertThrowsError(try h.count("SELECT 1") == 1 ? try StorageService.shared(h.ctx).run { db in
            try db.transaction { try db.execute("UPDATE users SET full_name = 'other' WHERE id = 1", []) }
        } : 0) { XCTAssertEqual($0 as? DatabaseError, .timeout) }
        XCTAssertLessThan(Clock.monotonicSeconds() - started, 1.0)
        // Through a route the same wait is a JSON 503, never "database is locked".
        let r = h.call("PUT", "/api/auth/me", json: ["full_name": "x"], token: h.adminToken)
        XCTAssertEqual(r.status, 503)
        XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains("locked"))
        try holder.execute("ROLLBACK", [])
        XCTAssertEqual(h.call("PUT", "/api/auth/me", json: ["full_name": "x"], token: h.adminToken).status, 200)
    }

    func testLongScanIsInterrupted() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let started = Clock.monotonicSeconds()
        XCTAssertThrowsError(try db.query("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000000) SELECT COUNT(*) FROM n
            """, [])) { XCTAssertEqual($0 as? DatabaseError, .timeout) }
        XCTAssertLessThan(Clock.monotonicSeconds() - started, 1.0)
        XCTAssertEqual(try db.queryOne("SELECT 1", [])?.int(0), 1)
    }

    func testTextSearchIndexIsInPlace() throws {
        let db = try h.openConnection()
        defer { db.close() }
        if db.engine == .sqlite {
            XCTAssertEqual(try db.queryOne("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [])?.int(0), 1,
                           "migration 2 needs FTS5 in libsqlite3")
            XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'events_fts%' AND type = 'trigger'", [])?.int(0), 3)
            return
        }
        XCTAssertTrue(try EventTextSearch(repo: EventRepository(db)).postgresIndexed())
        // Rare text reaches the index query only after the probe; there the
        // planner must use the index, not read the table.
        let bulk = try PostgresDatabase(url: try XCTUnwrap(TestEngine.postgresURL), timeout: 10)
        defer { bulk.close() }   // this class's 0.3 s statement timeout is too short for the bulk insert
        _ = try bulk.transaction {
            try bulk.execute("""
                INSERT INTO events (ts, level, source, message)
                SELECT 1700000000000 + i, 'info', 's', 'w-' || lpad(i::text, 10, '0') || '.'
                FROM generate_series(1, 50000) i
                """, [])
        }
        _ = try bulk.execute("ANALYZE events", [])
        for (text, source) in [("77.", nil), ("0777.", nil), ("77.", "s")] as [(String, String?)] {
            var f = EventFilter()
            f.text = text
            f.source = source
            let (sql, params) = EventRepository(db).statement(f, text: .trigram)
            let plan = try db.queryPlannedPerCall("EXPLAIN " + sql, params).compactMap { $0.string(0) }.joined(separator: " | ")
            XCTAssertTrue(plan.contains("Bitmap Index Scan on events_text_trgm"), plan)
        }
    }

    func testMigrationTwoBackfillsTheSearchIndex() throws {
        let db = try h.openConnection()
        defer { db.close() }
        // Back to the version-1 schema, with rows the index has never seen.
        if db.engine == .sqlite {
            for t in ["insert", "delete", "update"] { try db.execute("DROP TRIGGER events_fts_\(t)", []) }
            try db.execute("DROP TABLE events_fts", [])
        } else {
            try db.execute("DROP INDEX \(EventSearchSchema.postgresIndex)", [])
        }
        try db.execute("DELETE FROM schema_migrations WHERE version = 2", [])
        var old = EventRepository(db)
        var ids: [Int64] = []
        for i in 0..<5 {
            ids.append(try old.insert(Event(ts: 1_700_000_000_000 + Int64(i), level: .info, source: "s", actor: nil,
                                            action: i == 1 ? "legacy.Action" : nil, target: i == 2 ? "legacy-target" : nil,
                                            message: i == 0 ? "a LEGACY message" : "other \(i)")))
        }
        XCTAssertEqual(try Migrations.run(db), [2])
        if db.engine == .sqlite {
            try db.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')", [])
            XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM events_fts WHERE events_fts MATCH ?", [.text("\"legacy\"")])?.int(0), 3)
        } else {
            XCTAssertTrue(try EventTextSearch(repo: old).postgresIndexed())
        }
        old.textStrategy = .index
        var f = EventFilter()
        f.text = "legacy"
        XCTAssertEqual(try old.list(f).map(\.id), [ids[2], ids[1], ids[0]])
    }

    func testSearchFallsBackToTheScanWithoutPgTrgm() throws {
        guard h.engine == .postgres else { throw XCTSkip("PostgreSQL only: FTS5 is part of libsqlite3") }
        // A role that owns its schema but may not CREATE on the database
        // cannot install even a trusted extension: what a managed database
        // without contrib, or a least-privilege owner, looks like.
        let admin = try h.openConnection()
        defer { admin.close() }
        try admin.execute("""
            DO $$ BEGIN CREATE ROLE cc_noext LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$
            """, [])
        try admin.execute("DROP SCHEMA public CASCADE", [])
        try admin.execute("CREATE SCHEMA public AUTHORIZATION cc_noext", [])
        let url = try XCTUnwrap(TestEngine.postgresURL)
        let db = try PostgresDatabase(url: url.replacingOccurrences(of: "://cc@", with: "://cc_noext@"), timeout: 5)
        defer { db.close() }
        XCTAssertEqual(try db.queryOne("SELECT current_user", [])?.string(0), "cc_noext")
        XCTAssertEqual(try Migrations.run(db), Migrations.all.map(\.version), "the migration succeeds without the extension")
        XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM pg_extension WHERE extname = 'pg_trgm'", [])?.int(0), 0)
        XCTAssertFalse(try EventTextSearch(repo: EventRepository(db)).postgresIndexed())
        let repo = EventRepository(db)
        let id = try repo.insert(Event(level: .info, source: "s", actor: nil, action: nil, target: nil, message: "Needle here"))
        try repo.insert(Event(level: .info, source: "s", actor: nil, action: nil, target: nil, message: "hay"))
        var f = EventFilter()
        f.text = "NEEDLE"
        XCTAssertEqual(try repo.list(f).map(\.id), [id])
    }

    func testLostConnectionIs503ThenRecovers() throws {
        guard h.engine == .postgres else { throw XCTSkip("PostgreSQL only: SQLite has no server connection to lose") }
        let service = StorageService.shared(h.ctx)
        let pid = try XCTUnwrap(try service.run { try $0.queryOne("SELECT pg_backend_pid()", [])?.int(0) })
        let killer = try h.openConnection()
        defer { killer.close() }
        try killer.query("SELECT pg_terminate_backend(?)", [.int(Int64(pid))])
        let started = Clock.monotonicSeconds()
        let r = h.call("GET", "/api/auth/me", token: h.adminToken)
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(h.errorCode(r), "database_unavailable")
        XCTAssertLessThan(Clock.monotonicSeconds() - started, 1.0)
        Clock.sleep(seconds: 0.6)
        XCTAssertEqual(h.call("GET", "/api/auth/me", token: h.adminToken).status, 200, "reconnected after backoff")
    }
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class StorageEnginePostgresTests: StorageEngineTests {
    override class var engine: TestEngine { .postgres }
    override func testMigrationsAreRecordedAndIdempotent() throws { try super.testMigrationsAreRecordedAndIdempotent() }
    override func testConcurrentMigrationRunsApplyEachVersionOnce() throws { try super.testConcurrentMigrationRunsApplyEachVersionOnce() }
    override func testNewerSchemaIsRefused() throws { try super.testNewerSchemaIsRefused() }
    override func testSlowQueryEndsAtTheStatementTimeout() throws { try super.testSlowQueryEndsAtTheStatementTimeout() }
    override func testWriterBlockedByAHeldLockGetsATimeoutNotAnError() throws { try super.testWriterBlockedByAHeldLockGetsATimeoutNotAnError() }
    override func testLongScanIsInterrupted() throws { try super.testLongScanIsInterrupted() }
    override func testLostConnectionIs503ThenRecovers() throws { try super.testLostConnectionIs503ThenRecovers() }
    override func testTextSearchIndexIsInPlace() throws { try super.testTextSearchIndexIsInPlace() }
    override func testMigrationTwoBackfillsTheSearchIndex() throws { try super.testMigrationTwoBackfillsTheSearchIndex() }
    override func testSearchFallsBackToTheScanWithoutPgTrgm() throws { try super.testSearchFallsBackToTheScanWithoutPgTrgm() }
}
