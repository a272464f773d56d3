@testable import ControlCenterCore
import XCTest

/// The pure rules of `GET /api/system/history`: parameters, tier choice,
/// step and bucket alignment (HistoryQuery).
final class HistoryQueryTests: XCTestCase {
    let config = try! Config(values: ["CC_STATE_DIR": "/tmp/unused"])
    let now: Int64 = 1_780_000_000_000

    func plan(_ query: String) throws -> HistoryQuery.Plan {
        try HistoryQuery.parse(QueryParameters(parsing: query), now: now).plan(config, now: now)
    }

    func testEachRangePicksTheCoarsestTierThatStillGivesThePointsAskedFor() throws {
        let cases: [(String, HistoryTier, Int64)] = [
            ("-1h", .raw, 4), ("-24h", .minute, 120), ("-30d", .quarterHour, 2700), ("-730d", .sixHours, 64_800),
        ]
        for (from, tier, step) in cases {
            let p = try plan("metrics=cpu,memory,disk&from=\(from)")
            XCTAssertEqual(p.tier, tier, from)
            XCTAssertEqual(p.step, step * 1000, from)
            XCTAssertLessThanOrEqual(p.buckets, 1000, from)
            XCTAssertGreaterThan(p.buckets, 500, from)
            XCTAssertEqual(p.start % p.step, 0, "buckets aligned to the epoch")
            XCTAssertLessThanOrEqual(p.start, now - HistoryTimeTests.seconds(from) * 1000)
            XCTAssertGreaterThanOrEqual(p.end, now)
        }
        // Fewer points: the step grows in multiples of the tier's resolution
        // (7 min, not 6: eleven 6-min buckets aligned to the epoch cover this hour).
        let few = try plan("metrics=cpu&from=-1h&points=10")
        XCTAssertEqual(few.tier, .minute)
        XCTAssertEqual(few.step, 420_000)
        XCTAssertLessThanOrEqual(few.buckets, 10)
        // A range older than the raw tier's 48 h goes to the minute tier even for a short span.
        let old = try plan("metrics=cpu&from=-72h&to=-71h")
        XCTAssertEqual(old.tier, .minute)
    }

    /// For every range, the chosen tier gives at least `points` buckets of its
    /// resolution and the next coarser tier would not (so no finer, slower
    /// tier is read than the points need).
    func testTheChosenTierIsTheCoarsestWhoseResolutionStillGivesThePoints() throws {
        let tiers = HistoryTier.allCases
        for (from, points) in [("-10m", 1000), ("-1h", 1000), ("-6h", 1000), ("-24h", 1000), ("-3d", 1000),
                               ("-7d", 1000), ("-30d", 1000), ("-90d", 1000), ("-365d", 1000), ("-730d", 1000),
                               ("-30d", 100), ("-24h", 10_000), ("-730d", 10_000)] {
            let p = try plan("metrics=cpu&from=\(from)&points=\(points)")
            let range = HistoryTimeTests.seconds(from) * 1000
            let res = p.tier.resolutionMillis(config)
            if p.tier != .raw {
                XCTAssertLessThanOrEqual(res, (range + Int64(points) - 1) / Int64(points), "\(from) at \(points): \(p.tier) is too coarse")
            }
            if let next = tiers.firstIndex(of: p.tier).map({ $0 + 1 }), next < tiers.count {
                XCTAssertGreaterThan(tiers[next].resolutionMillis(config) * Int64(points), range,
                                     "\(from) at \(points): \(tiers[next]) still gives the points")
            }
            XCTAssertEqual(p.step % res, 0)
            XCTAssertLessThanOrEqual(p.buckets, points)
        }
    }

    func testAnExplicitStepPicksTheCoarsestTierNotAboveItAndRoundsUp() throws {
        XCTAssertEqual(try plan("metrics=cpu&from=-1h&step=1&points=5000").tier, .raw)
        let p = try plan("metrics=cpu&from=-24h&step=90")
        XCTAssertEqual(p.tier, .minute)
        XCTAssertEqual(p.step, 120_000)
        XCTAssertEqual(try plan("metrics=cpu&from=-30d&step=3600").tier, .hour)
        XCTAssertEqual(try plan("metrics=cpu&from=-30d&step=1800&points=2000").tier, .quarterHour)
        XCTAssertEqual(try plan("metrics=cpu&from=-730d&step=86400").tier, .sixHours)
    }

    func testBadInputIsAClear400() throws {
        let bad = [
            "", "metrics=", "metrics=nope", "metrics=cpu,bogus:x", "metrics=cpu&from=-1h&to=-2h",
            "metrics=cpu&from=yesterday", "metrics=cpu&points=0", "metrics=cpu&points=10001", "metrics=cpu&step=0",
            "metrics=cpu&step=abc", "metrics=cpu&from=-3d&step=1", "metrics=cpu&from=-800d",
            "metrics=cpu&from=-24h&step=1&points=10000", "metrics=" + Array(repeating: "cpu", count: 21).joined(separator: ","),
        ]
        for q in bad {
            XCTAssertThrowsError(try plan(q), q) { error in
                let e = error as? APIError
                XCTAssertEqual(e?.status, 400, q)
                XCTAssertEqual(e?.code, "invalid_parameter", q)
            }
        }
    }
}

final class HistoryTimeTests: XCTestCase {
    static func seconds(_ relative: String) -> Int64 {
        let n = Int64(relative.dropFirst().dropLast())!
        return n * ["m": 60, "h": 3600, "d": 86_400][String(relative.last!)]!
    }

    func testFromAndToTakeRFC3339UnixSecondsAndRelativeForms() throws {
        let now: Int64 = 1_780_000_000_000
        XCTAssertEqual(try HistoryQuery.time("now", "to", now: now), now)
        XCTAssertEqual(try HistoryQuery.time("-90s", "from", now: now), now - 90_000)
        XCTAssertEqual(try HistoryQuery.time("-2w", "from", now: now), now - 14 * 86_400_000)
        XCTAssertEqual(try HistoryQuery.time("1700000000", "from", now: now), 1_700_000_000_000)
        XCTAssertEqual(try HistoryQuery.time("1700000000.5", "from", now: now), 1_700_000_000_500)
        XCTAssertEqual(try HistoryQuery.time("2023-11-14T22:13:20Z", "from", now: now), 1_700_000_000_000)
        XCTAssertEqual(try HistoryQuery.time("2023-11-15T00:13:20.250+02:00", "from", now: now), 1_700_000_000_250)
        for bad in ["-", "-1y", "1e30", "-1", "2023-13-01T00:00:00Z", "NaN", "--1h"] {
            XCTAssertThrowsError(try HistoryQuery.time(bad, "from", now: now), bad)
        }
    }
}

/// The `vals` text: positions, empty fields, roll-up triples, garbage.
final class HistoryCodecTests: XCTestCase {
    func testFieldsAreReadByPositionAndBadOnesAreNoValue() {
        var seen: [Int: Double] = [:]
        HistoryCodec.forEachBucket("1.5,,3,x,-2") { seen[$0] = $1.avg }
        XCTAssertEqual(seen, [0: 1.5, 2: 3, 4: -2])
        XCTAssertEqual(HistoryCodec.bucket("5:4:6,7", at: 0), HistoryBucket(avg: 5, min: 4, max: 6))
        XCTAssertEqual(HistoryCodec.bucket("5:4:6,7", at: 1), HistoryBucket(avg: 7, min: 7, max: 7))
        XCTAssertNil(HistoryCodec.bucket("5:4:6,7", at: 2), "past the end")
        XCTAssertNil(HistoryCodec.bucket("5:4,7", at: 0), "a broken triple")
        XCTAssertNil(HistoryCodec.bucket(",7", at: 0))
        var got: [Int: HistoryBucket] = [:]
        HistoryCodec.scan("1,2:1:3,,4", wanted: [(1, 10), (2, 11), (3, 12)]) { got[$0] = $1 }
        XCTAssertEqual(got, [10: HistoryBucket(avg: 2, min: 1, max: 3), 12: HistoryBucket(avg: 4, min: 4, max: 4)])
    }

    /// The fast path reads what HistorySample.format writes exactly as strtod
    /// does; other forms (exponents, long mantissas) still go to strtod.
    func testNumbersReadBackAsStrtodReadsThem() {
        var values: [Double] = [0, -0.01, 0.07, 12.34, 99.99, 100, -273.15, 1e12 + 0.5, 123_456_789_012.34, 4_503_599_627_370_495]
        var g = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Double(Int64.random(in: -10_000_000...10_000_000, using: &g)) / 100) }
        for v in values {
            let text = HistorySample.format(v)
            XCTAssertEqual(HistoryCodec.bucket(text, at: 0)?.avg, strtod(text, nil), text)
        }
        for text in ["1e3", "1234567890123456789", "-.5", "5.", "12.5x"] {
            XCTAssertEqual(HistoryCodec.bucket(text, at: 0)?.avg, strtod(text, nil), text)
        }
        XCTAssertNil(HistoryCodec.bucket("-", at: 0))
        XCTAssertNil(HistoryCodec.bucket(".", at: 0))
    }
}
