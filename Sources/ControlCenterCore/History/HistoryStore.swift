/// Reads and writes the history tables (HistorySchema) on one connection.
/// Every write is one short statement in its own transaction, so no write
/// lock is held for more than one row or one batch of deletions.
public final class HistoryStore {
    let db: Database
    /// Series name → position in `vals` (id − 1), as far as this connection
    /// has learnt them.
    private var positions: [String: Int] = [:]

    public init(_ db: Database) { self.db = db }

    /// Rows deleted per DELETE when pruning: at a few µs a row on SQLite,
    /// far below the 50 ms a write lock may be held.
    static let pruneBatch = 2000

    /// Positions of these series, adding the ones never seen.
    func positions(for names: some Sequence<String>) throws -> [String: Int] {
        let missing = names.filter { positions[$0] == nil }
        if !missing.isEmpty {
            try loadSeries()
            for name in missing where positions[name] == nil {
                try db.execute("INSERT INTO history_series (name) VALUES (?) ON CONFLICT (name) DO NOTHING", [.text(name)])
            }
            try loadSeries()
        }
        return positions
    }

    /// Every series name with its position.
    public func series() throws -> [String: Int] {
        try loadSeries()
        return positions
    }

    private func loadSeries() throws {
        for row in try db.query("SELECT id, name FROM history_series", []) {
            if let id = row.int(0), let name = row.string(1) { positions[name] = id - 1 }
        }
    }

    /// Newest key of a tier (Unix ms), nil when it is empty.
    public func newest(_ tier: HistoryTier) throws -> Int64? {
        try db.queryOne("SELECT MAX(ts) FROM \(tier.table)", [])?.int64(0)
    }

    /// Writes one raw sample unless a row with this key exists (never
    /// overwrites); returns whether it was written.
    @discardableResult
    public func insertRaw(at ts: Int64, _ sample: HistorySample) throws -> Bool {
        let pos = try positions(for: sample.values.keys)
        var fields = [String](repeating: "", count: (sample.values.keys.compactMap { pos[$0] }.max() ?? -1) + 1)
        for (name, v) in sample.values { if let p = pos[name] { fields[p] = HistorySample.format(v) } }
        return try db.execute("INSERT INTO history_raw (ts, vals) VALUES (?, ?) ON CONFLICT (ts) DO NOTHING",
                              [.int(ts), .text(fields.joined(separator: ","))]) == 1
    }

    /// Writes a roll-up row of `tier` (not raw) as it is; for the seeding
    /// helpers of tests and benchmarks, and for `rollUp`.
    public func insertRollup(_ tier: HistoryTier, at ts: Int64, _ stats: [Int: HistoryBucket]) throws {
        let width = (stats.keys.max() ?? -1) + 1
        var fields = [String](repeating: "", count: width)
        for (p, b) in stats { fields[p] = "\(HistorySample.format(b.avg)):\(HistorySample.format(b.min)):\(HistorySample.format(b.max))" }
        try db.execute("INSERT INTO \(tier.table) (ts, vals) VALUES (?, ?) ON CONFLICT (ts) DO NOTHING",
                       [.int(ts), .text(fields.joined(separator: ","))])
    }

    /// Rolls `tier`'s source rows (HistoryTier.source) up into at most
    /// `limit` buckets of `tier`, oldest first, after the tier's newest
    /// bucket and ending at or before `until` (Unix ms; a bucket still open is
    /// left for later) and at or before the end of the source's newest row
    /// (a roll-up source that lags behind is waited for). Buckets without
    /// rows are skipped, so a gap stays a gap. Returns the buckets written.
    @discardableResult
    public func rollUp(_ tier: HistoryTier, until: Int64, limit: Int, config: Config) throws -> Int {
        guard let source = tier.source else { preconditionFailure("the raw tier is not a roll-up") }
        guard let sourceNewest = try newest(source) else { return 0 }
        let closed = min(until, sourceNewest + source.resolutionMillis(config))
        let width = tier.resolutionMillis(config)
        var start = try newest(tier).map { $0 + width } ?? Int64.min
        var written = 0
        while written < limit {
            guard let first = try db.queryOne("SELECT MIN(ts) FROM \(source.table) WHERE ts >= ?", [.int(start)])?.int64(0)
            else { break }
            let bucket = Self.floor(first, width)
            guard bucket + width <= closed else { break }
            let rows = try db.query("SELECT vals FROM \(source.table) WHERE ts >= ? AND ts < ?", [.int(bucket), .int(bucket + width)])
            var acc: [Int: HistoryBucket.Accumulator] = [:]
            for row in rows {
                HistoryCodec.forEachBucket(row.string(0) ?? "") { p, b in acc[p, default: .init()].add(b) }
            }
            try insertRollup(tier, at: bucket, acc.compactMapValues { $0.bucket })
            written += 1
            start = bucket + width
        }
        return written
    }

    /// Deletes rows of `tier` older than `before` (Unix ms), at most
    /// `batches` DELETEs of `pruneBatch` rows; returns the rows deleted.
    @discardableResult
    public func prune(_ tier: HistoryTier, before: Int64, batches: Int) throws -> Int {
        var deleted = 0
        for _ in 0..<batches {
            let n = try db.execute("""
                DELETE FROM \(tier.table) WHERE ts IN
                    (SELECT ts FROM \(tier.table) WHERE ts < ? ORDER BY ts LIMIT \(Self.pruneBatch))
                """, [.int(before)])
            deleted += n
            if n < Self.pruneBatch { break }
        }
        return deleted
    }

    /// Rows of a tier with `from <= ts < to`, in key order, as (key, vals).
    func rows(_ tier: HistoryTier, from: Int64, to: Int64) throws -> [(Int64, String)] {
        try db.query("SELECT ts, vals FROM \(tier.table) WHERE ts >= ? AND ts < ? ORDER BY ts", [.int(from), .int(to)])
            .compactMap { r in r.int64(0).map { ($0, r.string(1) ?? "") } }
    }

    /// Floor to a multiple of `width` (Unix epoch aligned), also below 0.
    static func floor(_ t: Int64, _ width: Int64) -> Int64 {
        let r = t % width
        return r < 0 ? t - r - width : t - r
    }
}
