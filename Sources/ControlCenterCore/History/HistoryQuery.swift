import Foundation

/// `GET /api/system/history`'s parameters and the plan they give: which
/// tier, which step, which buckets. Pure, so each rule is unit-tested.
///
/// - `metrics`: comma-separated metric names (HistorySample.metrics), each
///   optionally `:label` (`disk:/`, `net_rx:eth0`); a bare name takes every
///   label it has. At most `maxMetrics`.
/// - `from`, `to`: RFC 3339, Unix seconds, `now`, or relative to now (`-90s`,
///   `-30m`, `-1h`, `-7d`, `-1w`); defaults `-1h` and `now`.
/// - `points`: most buckets per series, default 1,000, at most 10,000.
/// - `step`: bucket width in seconds; without it, the coarsest tier that
///   still gives `points` buckets (or the finest that holds the range) and
///   the smallest multiple of its resolution that gives at most `points`.
public struct HistoryQuery: Equatable, Sendable {
    public var metrics: [String]
    public var from: Int64
    public var to: Int64
    public var step: Int64?
    public var points: Int

    public static let defaultPoints = 1000
    public static let maxPoints = 10_000
    public static let maxMetrics = 20

    /// The plan: `tier`'s rows with keys in `[start, end)`, cut into buckets of
    /// `step` ms aligned to the Unix epoch (UTC).
    public struct Plan: Equatable, Sendable {
        public var tier: HistoryTier
        public var step: Int64
        public var start: Int64
        public var end: Int64
        public var buckets: Int { Int((end - start) / step) }
    }

    /// Parses the query string; `now` is Unix ms. Throws a 400 APIError.
    public static func parse(_ q: QueryParameters, now: Int64) throws -> HistoryQuery {
        guard let list = q["metrics"], !list.isEmpty else { throw bad("metrics", "is required (for example cpu,memory)") }
        let names = list.split(separator: ",", omittingEmptySubsequences: false).map { String($0) }
        guard names.count <= maxMetrics else { throw bad("metrics", "at most \(maxMetrics) names") }
        for n in names {
            let metric = n.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard HistorySample.metrics[String(metric)] != nil else {
                throw bad("metrics", "unknown metric '\(metric)'; known: \(HistorySample.metrics.keys.sorted().joined(separator: ", "))")
            }
        }
        let from = try time(q["from"] ?? "-1h", "from", now: now)
        let to = try time(q["to"] ?? "now", "to", now: now)
        guard from < to else { throw bad("from", "must be before to") }
        var points = defaultPoints
        if let p = q["points"] {
            guard let v = Int(p), (1...maxPoints).contains(v) else { throw bad("points", "must be an integer from 1 to \(maxPoints)") }
            points = v
        }
        var step: Int64?
        if let s = q["step"] {
            guard let v = Int64(s), v >= 1, v <= 10 * 366 * 86_400 else { throw bad("step", "must be a whole number of seconds, at least 1") }
            step = v * 1000
        }
        return HistoryQuery(metrics: names, from: from, to: to, step: step, points: points)
    }

    /// The tier and buckets for this query; `now` is Unix ms. Throws a 400
    /// when the range reaches past the longest retention, or `step` is
    /// below the resolution of the tier that holds the range or gives more
    /// than `points` buckets.
    public func plan(_ config: Config, now: Int64) throws -> Plan {
        let holding = HistoryTier.allCases.filter { from >= now - (config.historyRetention[$0] ?? 0) * 1000 }
        guard let finest = holding.first else {
            let days = (config.historyRetention.values.max() ?? 0) / 86_400
            throw Self.bad("from", "is older than the history keeps (\(days) days: CC_HISTORY_6HOUR_DAYS and the other tiers' retention)")
        }
        let range = to - from
        let tier: HistoryTier
        var width: Int64
        if let step {
            guard let t = holding.last(where: { $0.resolutionMillis(config) <= step }) else {
                throw Self.bad("step", "must be at least \(finest.resolutionMillis(config) / 1000) s, the resolution of the \(finest.label) tier that holds this range")
            }
            tier = t
            let res = t.resolutionMillis(config)
            width = (step + res - 1) / res * res
        } else {
            let wanted = (range + Int64(points) - 1) / Int64(points)
            tier = holding.last(where: { $0.resolutionMillis(config) <= wanted }) ?? finest
            let res = tier.resolutionMillis(config)
            width = res
        }
        var start = HistoryStore.floor(from, width)
        var end = HistoryStore.floor(to - 1, width) + width
        if step == nil {
            // Smallest multiple of the resolution that gives at most `points`.
            let res = tier.resolutionMillis(config)
            var k = max(1, (range + res * Int64(points) - 1) / (res * Int64(points)))
            while true {
                width = k * res
                start = HistoryStore.floor(from, width)
                end = HistoryStore.floor(to - 1, width) + width
                if (end - start) / width <= Int64(points) { break }
                k += 1
            }
        } else if (end - start) / width > Int64(points) {
            throw Self.bad("step", "gives \((end - start) / width) buckets, more than points (\(points))")
        }
        return Plan(tier: tier, step: width, start: start, end: end)
    }

    /// `from`/`to` in Unix ms.
    static func time(_ s: String, _ name: String, now: Int64) throws -> Int64 {
        if s == "now" { return now }
        if s.hasPrefix("-"), let unit = s.last, let n = Int64(s.dropFirst().dropLast()), n >= 0 {
            let seconds: Int64? = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800][String(unit)]
            if let seconds, n <= 100 * 366 * 86_400 / seconds { return now - n * seconds * 1000 }
        }
        if let v = Double(s), v.isFinite, v >= 0, v < 1e11 { return Int64((v * 1000).rounded()) }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) ?? ISO8601DateFormatter().date(from: s) {
            return Int64((d.timeIntervalSince1970 * 1000).rounded())
        }
        throw bad(name, "must be RFC 3339 (2026-01-31T03:00:00Z), Unix seconds, 'now' or relative (-30m, -1h, -7d)")
    }

    static func bad(_ field: String, _ why: String) -> APIError {
        APIError(400, "invalid_parameter", "\(field): \(why)")
    }
}
