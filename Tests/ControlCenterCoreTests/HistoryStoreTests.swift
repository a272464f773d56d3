@testable import ControlCenterCore
import Foundation
import XCTest

/// The history on a real database (both engines): the collector's writes
/// under a fake wall clock, roll-ups, retention, and the route's answers on
/// seeded data.
class HistoryStoreTests: StorageTestCase {
    /// A Unix ms on an hour boundary, a little before the harness's now, so
    /// that every tier holds it.
    var base: Int64 { HistoryStore.floor(Clock.wallMillis() - 6 * 3_600_000, 3_600_000) }

    func testABackwardWallClockStepNeverOverwritesNorReordersSamples() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let store = HistoryStore(db)
        let recorder = HistoryRecorder(config: h.config, log: Log(path: "off"))
        let t = base
        XCTAssertTrue(try recorder.record(HistorySample(["cpu": 1]), at: t, store: store))
        XCTAssertTrue(try recorder.record(HistorySample(["cpu": 2]), at: t + 1000, store: store))
        XCTAssertTrue(try recorder.record(HistorySample(["cpu": 3]), at: t + 2000, store: store))
        // The clock steps back 1.5 s: nothing is written until it passes t + 2000 again.
        XCTAssertFalse(try recorder.record(HistorySample(["cpu": 99]), at: t + 500, store: store))
        XCTAssertFalse(try recorder.record(HistorySample(["cpu": 99]), at: t + 2000, store: store))
        XCTAssertTrue(try recorder.record(HistorySample(["cpu": 4]), at: t + 2500, store: store))
        // A restarted collector learns the newest row from the table.
        let restarted = HistoryRecorder(config: h.config, log: Log(path: "off"))
        XCTAssertFalse(try restarted.record(HistorySample(["cpu": 99]), at: t + 1000, store: HistoryStore(db)))
        let rows = try store.rows(.raw, from: t, to: t + 10_000)
        XCTAssertEqual(rows.map(\.0), [t, t + 1000, t + 2000, t + 2500])
        XCTAssertEqual(rows.map(\.1), ["1", "2", "3", "4"])
    }

    func testRollUpsEqualTheAverageMinAndMaxOfTheRawSamplesAndGapsStayGaps() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let store = HistoryStore(db)
        let recorder = HistoryRecorder(config: h.config, log: Log(path: "off"))
        let t = base
        var expected: [Int64: [Double]] = [:]
        // Minutes 0–2 sampled every 5 s, minutes 3–4 missing (collector down), minute 5 sampled.
        for s in stride(from: 0, to: 6 * 60, by: 5) where !(180..<300).contains(s) {
            let v = Double((s * 7919) % 1000) / 10
            let ts = t + Int64(s) * 1000
            try recorder.record(HistorySample(["cpu": v, "disk:/": 50, "net_rx:eth0": v * 1000]), at: ts, store: store)
            expected[HistoryStore.floor(ts, 60_000), default: []].append(v)
        }
        // One more sample closes minute 5.
        try recorder.record(HistorySample(["cpu": 0]), at: t + 360_000, store: store)
        for _ in 0..<3 { try recorder.maintain(store) }
        let minutes = try store.rows(.minute, from: t, to: t + 3_600_000)
        XCTAssertEqual(minutes.map(\.0), [0, 1, 2, 5].map { t + $0 * 60_000 }, "a gap stays a gap")
        let cpu = try XCTUnwrap(store.series()["cpu"])
        for (ts, vals) in minutes {
            let raw = try XCTUnwrap(expected[ts])
            let b = try XCTUnwrap(HistoryCodec.bucket(vals, at: cpu))
            XCTAssertEqual(b.avg, raw.reduce(0, +) / Double(raw.count), accuracy: 0.01)
            XCTAssertEqual(b.min, raw.min()!)
            XCTAssertEqual(b.max, raw.max()!)
        }
        XCTAssertTrue(try store.rows(.hour, from: t, to: t + 3_600_000).isEmpty, "the hour is still open")

        // Through the route: 60 s steps take the minute tier; nulls over the gap and the open minute.
        let r = h.call("GET", "/api/system/history?metrics=cpu,net_rx&from=\(t / 1000)&to=\(t / 1000 + 420)&step=60")
        XCTAssertEqual(r.status, 200, String(decoding: r.body.prefix(300), as: UTF8.self))
        let body = try h.object(r)
        XCTAssertEqual(body["tier"] as? String, "1m")
        let series = try XCTUnwrap(body["series"] as? [[String: Any]])
        XCTAssertEqual(series.map { $0["name"] as? String }, ["cpu", "net_rx:eth0"])
        XCTAssertEqual(series[1]["label"] as? String, "eth0")
        XCTAssertEqual(series[1]["unit"] as? String, "bytes_per_second")
        let data = try XCTUnwrap(series[0]["data"] as? [[Any]])
        XCTAssertEqual(data.count, 7)
        XCTAssertEqual(data.map { ($0[0] as? NSNumber)?.int64Value }, (0..<7).map { t + Int64($0) * 60_000 })
        for i in [3, 4, 6] { XCTAssertTrue(data[i][1...].allSatisfy { $0 is NSNull }, "bucket \(i) is empty") }
        XCTAssertEqual((data[0][2] as? NSNumber)?.doubleValue, expected[t]!.min())
    }

    func testQuarterHoursRollUpFromRawSamplesAndSixHoursFromHoursOnceTheyAreThere() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let store = HistoryStore(db)
        let t = HistoryStore.floor(Clock.wallMillis() - 30 * 3_600_000, 21_600_000)
        let end = t + 21_600_000
        func v(_ s: Int) -> Double { Double((s * 7919) % 1000) / 10 }
        // Six hours sampled every 10 s except hour 2 (the host was down), and one sample closing them.
        var raw: [Int64: [Double]] = [:]
        try db.transaction {
            for s in stride(from: 0, to: 6 * 3600, by: 10) where !(7200..<10_800).contains(s) {
                let ts = t + Int64(s) * 1000
                try store.insertRaw(at: ts, HistorySample(["cpu": v(s)]))
                raw[HistoryStore.floor(ts, 900_000), default: []].append(v(s))
            }
            try store.insertRaw(at: end, HistorySample(["cpu": 1]))
        }
        let cpu = try XCTUnwrap(store.series()["cpu"])

        XCTAssertEqual(try store.rollUp(.quarterHour, until: end, limit: 100, config: h.config), 20)
        let quarters = try store.rows(.quarterHour, from: t, to: end)
        XCTAssertEqual(quarters.map(\.0), raw.keys.sorted(), "hour 2 stays a gap")
        for (ts, vals) in quarters {
            let b = try XCTUnwrap(HistoryCodec.bucket(vals, at: cpu)), samples = try XCTUnwrap(raw[ts])
            XCTAssertEqual(b.avg, samples.reduce(0, +) / Double(samples.count), accuracy: 0.01)
            XCTAssertEqual(b.min, samples.min()!)
            XCTAssertEqual(b.max, samples.max()!)
        }

        XCTAssertEqual(try store.rollUp(.sixHours, until: end, limit: 5, config: h.config), 0, "no hour rows yet")
        XCTAssertEqual(try store.rollUp(.hour, until: end, limit: 3, config: h.config), 3)
        XCTAssertEqual(try store.rollUp(.sixHours, until: end, limit: 5, config: h.config), 0,
                       "hours 4 and 5 are not rolled up yet: the six hours wait for them")
        XCTAssertEqual(try store.rollUp(.hour, until: end, limit: 5, config: h.config), 2)
        XCTAssertEqual(try store.rollUp(.sixHours, until: end, limit: 5, config: h.config), 1)
        let hours = try store.rows(.hour, from: t, to: end).map { try XCTUnwrap(HistoryCodec.bucket($0.1, at: cpu)) }
        XCTAssertEqual(hours.count, 5)
        let six = try store.rows(.sixHours, from: t, to: end)
        XCTAssertEqual(six.map(\.0), [t])
        let b = try XCTUnwrap(HistoryCodec.bucket(six[0].1, at: cpu))
        XCTAssertEqual(b.avg, hours.map(\.avg).reduce(0, +) / 5, accuracy: 0.01, "the hours' averages, equally weighted")
        XCTAssertEqual(b.min, raw.values.joined().min()!)
        XCTAssertEqual(b.max, raw.values.joined().max()!)

        // Through the route: one 6-hour bucket.
        let r = h.call("GET", "/api/system/history?metrics=cpu&from=\(t / 1000)&to=\(end / 1000)&points=1")
        XCTAssertEqual(r.status, 200, String(decoding: r.body.prefix(300), as: UTF8.self))
        let body = try h.object(r)
        XCTAssertEqual(body["tier"] as? String, "6h")
        let data = try XCTUnwrap((body["series"] as? [[String: Any]])?.first?["data"] as? [[Any]])
        XCTAssertEqual(data.count, 1)
        XCTAssertEqual((data[0][2] as? NSNumber)?.doubleValue, b.min)
    }

    func testRetentionDeletesRowsPastEachTierInBatches() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let store = HistoryStore(db)
        let t = base
        try db.transaction {
            for i in 0..<Int64(HistoryStore.pruneBatch + 10) {
                try store.insertRaw(at: t - 49 * 3_600_000 + i, HistorySample(["cpu": 1]))
            }
            try store.insertRaw(at: t, HistorySample(["cpu": 2]))
            try store.insertRollup(.minute, at: t - 91 * 86_400_000, [0: HistoryBucket(avg: 1, min: 1, max: 1)])
            try store.insertRollup(.minute, at: t - 89 * 86_400_000, [0: HistoryBucket(avg: 1, min: 1, max: 1)])
            try store.insertRollup(.sixHours, at: t - 731 * 86_400_000, [0: HistoryBucket(avg: 1, min: 1, max: 1)])
            try store.insertRollup(.sixHours, at: t - 729 * 86_400_000, [0: HistoryBucket(avg: 1, min: 1, max: 1)])
        }
        let recorder = HistoryRecorder(config: h.config, log: Log(path: "off"))
        try recorder.record(HistorySample(["cpu": 3]), at: t + 1000, store: store)
        try recorder.maintain(store)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM history_raw"), 12, "one batch per sample")
        try recorder.maintain(store)
        XCTAssertEqual(try store.rows(.raw, from: 0, to: .max).map(\.0), [t, t + 1000])
        XCTAssertEqual(try store.rows(.minute, from: 0, to: t - 60 * 86_400_000).map(\.0), [t - 89 * 86_400_000])
        // Bounded like the minute tier: the raw rows above may have been rolled up
        // into a recent 6-hour bucket, depending on the time of day.
        XCTAssertEqual(try store.rows(.sixHours, from: 0, to: t - 60 * 86_400_000).map(\.0), [t - 729 * 86_400_000])
    }

    func testAFullDatabaseSkipsSamplesAndRecordsOneDiskFullEventWhenSpaceReturns() throws {
        // SQLite's max_page_count gives SQLITE_FULL as a full disk does (a
        // PostgreSQL cluster cannot be filled here; isDiskFull knows its 53100).
        try XCTSkipIf(Self.engine == .postgres, "SQLite only: PostgreSQL's disk_full is matched by SQLSTATE")
        let db = try h.openConnection()
        defer { db.close() }
        let recorder = HistoryRecorder(config: h.config, log: Log(path: "off"))
        let wide = HistorySample(Dictionary(uniqueKeysWithValues: (0..<40).map { ("disk_used:/m\($0)", 1e12 + Double($0)) }))
        let t = base
        recorder.write(wide, at: t, db: db)
        let pages = try XCTUnwrap(db.queryOne("PRAGMA page_count", [])?.int(0))
        try db.query("PRAGMA max_page_count = \(pages)", [])
        for i in 1...200 { recorder.write(wide, at: t + Int64(i) * 1000, db: db) }
        let written = try h.count("SELECT COUNT(*) FROM history_raw")
        XCTAssertLessThan(written, 201, "some samples were skipped")
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'disk_full'"), 0, "no event while full")
        try db.query("PRAGMA max_page_count = 1000000", [])
        recorder.write(wide, at: t + 300_000, db: db)
        recorder.write(wide, at: t + 301_000, db: db)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM history_raw"), written + 2, "writes resume")
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'disk_full' AND source = 'collector'"), 1,
                       "one event when space returns")
        XCTAssertTrue(HistoryRecorder.isDiskFull(DatabaseError.failed("could not extend file: No space left on device [53100]")))
    }

    func testEventsAndAuditRecordsArePrunedAfterTheirOwnRetention() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let now = Clock.wallMillis()
        let day: Int64 = 86_400_000
        let repo = EventRepository(db)
        let before = try h.count("SELECT COUNT(*) FROM events")
        for (age, source) in [(91, "api"), (89, "api"), (366, Audit.source), (200, Audit.source)] {
            _ = try repo.insert(Event(ts: now - Int64(age) * day, level: .info, source: source, actor: nil, action: nil,
                                      target: nil, message: "aged \(age) \(source)", data: nil))
        }
        XCTAssertEqual(try EventRetention.prune(db, config: h.config, now: now), 2)
        let left = try db.query("SELECT message FROM events WHERE message LIKE 'aged %' ORDER BY ts", []).compactMap { $0.string(0) }
        XCTAssertEqual(left, ["aged 200 audit", "aged 89 api"])
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events"), before + 2, "newer events untouched")
        XCTAssertEqual(try EventRetention.prune(db, config: h.config, now: now), 0)
    }

    func testThirtyDayAndTwoYearRangesOnSeededTiers() throws {
        let now = Clock.wallMillis()
        let db = try h.openConnection()
        defer { db.close() }
        try HistorySeed.seed(db, config: h.config, now: now, series: ["cpu", "memory"],
                             tiers: [.quarterHour: 30 * 86_400, .sixHours: 729 * 86_400])
        for (from, tier, minBuckets) in [("-30d", "15m", 900), ("-729d", "6h", 900)] {
            let r = h.call("GET", "/api/system/history?metrics=cpu,memory&from=\(from)")
            XCTAssertEqual(r.status, 200, String(decoding: r.body.prefix(300), as: UTF8.self))
            let body = try h.object(r)
            XCTAssertEqual(body["tier"] as? String, tier)
            let series = try XCTUnwrap(body["series"] as? [[String: Any]])
            XCTAssertEqual(series.count, 2)
            let data = try XCTUnwrap(series[0]["data"] as? [[Any]])
            XCTAssertGreaterThanOrEqual(data.count, minBuckets)
            XCTAssertLessThanOrEqual(data.count, 1000)
            // Every inner bucket is full, and the seeded shape (HistorySeed.value) stays within 0–100.
            let filled = data.dropFirst().dropLast().filter { !($0[1] is NSNull) }
            XCTAssertEqual(filled.count, data.count - 2, from)
            for row in filled {
                let lo = (row[2] as! NSNumber).doubleValue, avg = (row[1] as! NSNumber).doubleValue
                let hi = (row[3] as! NSNumber).doubleValue
                XCTAssertTrue(lo <= avg && avg <= hi && lo >= 0 && hi <= 100, "\(row)")
            }
        }
    }

    func testBadParametersAre400AndPrivateReadNeedsAToken() throws {
        let r = h.call("GET", "/api/system/history?metrics=cpu&from=-1h&to=-2h")
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(h.errorCode(r), "invalid_parameter")
        XCTAssertEqual(h.call("GET", "/api/system/history?metrics=bogus").status, 400)
        XCTAssertEqual(h.call("GET", "/api/system/history?metrics=cpu").status, 200, "public by default")
        let closed = try StorageHarness(Self.engine, settings: ["CC_PUBLIC_READ": "false"])
        XCTAssertEqual(closed.call("GET", "/api/system/history?metrics=cpu").status, 401)
        XCTAssertEqual(closed.call("GET", "/api/system/history?metrics=cpu", token: closed.adminToken).status, 200)
    }
}

final class HistoryStorePostgresTests: HistoryStoreTests {
    override class var engine: TestEngine { .postgres }
    override func testABackwardWallClockStepNeverOverwritesNorReordersSamples() throws {
        try super.testABackwardWallClockStepNeverOverwritesNorReordersSamples()
    }
    override func testRollUpsEqualTheAverageMinAndMaxOfTheRawSamplesAndGapsStayGaps() throws {
        try super.testRollUpsEqualTheAverageMinAndMaxOfTheRawSamplesAndGapsStayGaps()
    }
    override func testRetentionDeletesRowsPastEachTierInBatches() throws { try super.testRetentionDeletesRowsPastEachTierInBatches() }
    override func testQuarterHoursRollUpFromRawSamplesAndSixHoursFromHoursOnceTheyAreThere() throws {
        try super.testQuarterHoursRollUpFromRawSamplesAndSixHoursFromHoursOnceTheyAreThere()
    }
    override func testThirtyDayAndTwoYearRangesOnSeededTiers() throws { try super.testThirtyDayAndTwoYearRangesOnSeededTiers() }
    override func testAFullDatabaseSkipsSamplesAndRecordsOneDiskFullEventWhenSpaceReturns() throws {
        try super.testAFullDatabaseSkipsSamplesAndRecordsOneDiskFullEventWhenSpaceReturns()
    }
    override func testEventsAndAuditRecordsArePrunedAfterTheirOwnRetention() throws {
        try super.testEventsAndAuditRecordsArePrunedAfterTheirOwnRetention()
    }
    override func testBadParametersAre400AndPrivateReadNeedsAToken() throws { try super.testBadParametersAre400AndPrivateReadNeedsAToken() }
}
