import Glibc

/// The collector's side of the history: after each stats sample it writes
/// one raw row, then rolls finished buckets up and prunes rows past their
/// tier's retention, a little at a time. Nothing is buffered beyond the
/// sample in hand, so a restart loses only the time the collector was down.
///
/// Keys are the sample's UTC wall time in Unix ms. A wall clock that steps
/// back would make keys older than rows already written: such samples are
/// skipped (never written over or between existing rows) until the clock
/// passes the newest row again.
public final class HistoryRecorder {
    private let config: Config
    private let log: Log
    /// Newest raw key written, learnt from the table on first use.
    private var newest: Int64?
    private var previousNet: (counters: [String: (rx: UInt64, tx: UInt64)], monoNanos: UInt64)?
    private var lastError: String?
    private var skippedSinceStep = 0
    /// Wall time (Unix ms) of the first history write that failed for a full disk.
    private var fullSince: Int64?

    /// Buckets rolled up and DELETE batches per tier after each sample: the
    /// backlog after a long stop drains over a few samples, never in one go.
    static let rollUpsPerSample = 5
    static let pruneBatchesPerSample = 1

    public init(config: Config, log: Log) {
        self.config = config
        self.log = log
    }

    /// Records a stats snapshot with the host's network and process figures.
    public func record(stats: LoadedSnapshot, storage: StorageService) {
        guard var values = HistorySample.stats(json: Array(stats.file.section(.body))) else {
            note("stats snapshot is not the expected JSON")
            return
        }
        for (k, v) in networkRates() { values[k] = v }
        if let n = Self.processCount() { values["processes"] = Double(n) }
        do {
            try storage.run { db in write(HistorySample(values), at: Clock.wallMillis(), db: db) }
        } catch {
            failed(error, at: Clock.wallMillis())
        }
    }

    /// Records one sample and maintains the tiers; a failure is logged, not
    /// thrown (sampling and publishing go on). While the disk is full,
    /// samples are lost; the first write that succeeds again records one
    /// `disk_full` event (source `collector`) giving how long it lasted.
    func write(_ sample: HistorySample, at ts: Int64, db: Database) {
        do {
            let store = HistoryStore(db)
            try record(sample, at: ts, store: store)
            if let since = fullSince {
                try EventRepository(db).insert(Event(
                    level: .warning, source: "collector", actor: nil, action: "disk_full", target: "history",
                    message: "history writes failed for \((ts - since) / 1000) s: the disk was full; samples of that time are missing",
                    data: "{\"from_ms\":\(since),\"to_ms\":\(ts)}"))
                fullSince = nil
                log.info("history writes work again after a full disk", ["since_ms": String(since)])
            }
            try maintain(store)
            lastError = nil
        } catch {
            failed(error, at: ts)
        }
    }

    private func failed(_ error: Error, at ts: Int64) {
        if Self.isDiskFull(error), fullSince == nil { fullSince = ts }
        note(String(describing: error))
    }

    /// SQLite's SQLITE_FULL, PostgreSQL's disk_full (SQLSTATE 53100), or
    /// ENOSPC in either's message.
    static func isDiskFull(_ error: Error) -> Bool {
        let d = String(describing: error)
        return d.contains("database or disk is full") || d.contains("[53100]") || d.contains("No space left on device")
    }

    /// Writes one sample at wall time `ts` unless that would not be after
    /// the newest row; returns whether it was written.
    @discardableResult
    public func record(_ sample: HistorySample, at ts: Int64, store: HistoryStore) throws -> Bool {
        if newest == nil { newest = try store.newest(.raw) ?? Int64.min }
        guard let last = newest, ts > last else {
            if skippedSinceStep == 0 {
                log.warning("wall clock behind the newest history sample; skipping samples until it passes",
                            ["sample_ms": String(ts), "newest_ms": String(newest ?? 0)])
            }
            skippedSinceStep += 1
            return false
        }
        skippedSinceStep = 0
        let written = try store.insertRaw(at: ts, sample)
        newest = ts
        return written
    }

    /// Rolls up finished buckets (ending at or before the newest sample)
    /// and prunes each tier past its retention, measured from the newest
    /// sample so that a wall clock stepping back prunes nothing early; then
    /// one batch of events past their retention (EventRetention) and of the
    /// control tables' finished rows (ControlRetention).
    public func maintain(_ store: HistoryStore) throws {
        guard let now = newest, now != Int64.min else { return }
        for tier in HistoryTier.allCases where tier.source != nil {
            try store.rollUp(tier, until: now, limit: Self.rollUpsPerSample, config: config)
        }
        for tier in HistoryTier.allCases {
            let keep = (config.historyRetention[tier] ?? 0) * 1000
            try store.prune(tier, before: now - keep, batches: Self.pruneBatchesPerSample)
        }
        try EventRetention.prune(store.db, config: config, now: now, batches: Self.pruneBatchesPerSample)
        try ControlRetention.prune(store.db, config: config, now: now, batches: Self.pruneBatchesPerSample)
    }

    private func note(_ why: String) {
        // Once per distinct error: a database that is down stays quiet.
        if why != lastError { log.warning("cannot write history", ["error": why]) }
        lastError = why
    }

    /// `net_rx:<if>` and `net_tx:<if>` in bytes per second since the
    /// previous call; an interface whose counter went back contributes nothing.
    private func networkRates() -> [String: Double] {
        let now = Clock.monotonicNanos()
        let counters = HistorySample.netDevCounters(Self.read("/proc/net/dev"))
        defer { previousNet = (counters, now) }
        guard let prev = previousNet, now > prev.monoNanos else { return [:] }
        let seconds = Double(now - prev.monoNanos) / 1e9
        var out: [String: Double] = [:]
        for (name, c) in counters {
            guard let old = prev.counters[name], c.rx >= old.rx, c.tx >= old.tx else { continue }
            out["net_rx:\(name)"] = Double(c.rx - old.rx) / seconds
            out["net_tx:\(name)"] = Double(c.tx - old.tx) / seconds
        }
        return out
    }

    static func processCount() -> Int? {
        guard let dir = opendir("/proc") else { return nil }
        defer { closedir(dir) }
        var n = 0
        while let ent = readdir(dir) {
            let first = withUnsafeBytes(of: ent.pointee.d_name) { $0.first ?? 0 }
            if first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9") { n += 1 }
        }
        return n
    }

    static func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
