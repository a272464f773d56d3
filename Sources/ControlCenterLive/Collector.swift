import CSupport
import ControlCenterCore
import Glibc

/// `control-center collector`: the master's one child that serves no
/// requests. Every `CC_COLLECT_INTERVAL` it refreshes the stats snapshot
/// (with the same SnapshotCache and /proc readers as the workers) and
/// publishes one live message; it also refreshes the processes, network and
/// connections snapshots every half of their TTL, so that under steady
/// traffic no request pays for a refresh. It keeps root when the master is
/// root (it reads every process's /proc entries; request workers then run
/// as CC_USER). With or without root, request workers only serve its copies
/// (stale ones up to CC_CACHE_MAX_STALE, then 503) and never scan /proc, and
/// the views nginx sends are the files it writes (the master removes them
/// when it dies or stops writing: ViewFiles).
///
/// Timing: samples are scheduled on a fixed monotonic grid; libcurl sends
/// the publishes (NchanPublisher) right after a sample, while the system
/// channel's shards go out (at most a quarter interval), and in the wait for
/// the next sample, so a slow fan-out in nginx never delays a sample.
public final class Collector {
    private let config: Config
    private let log: Log
    private let cache: SnapshotCache
    private let network = NetworkRates()
    private let publisher: NchanPublisher?
    /// The collector's start, Unix ms: `epoch` of its messages.
    private let epoch = Clock.wallMillis()
    private var seq = 0
    /// The events channel: its own `seq`, and the last row id published
    /// (nil until the database has answered once).
    private var eventSeq = 0
    private var lastEventID: Int64?
    private let storage: StorageService
    private var wakeFD: Int32 = -1
    private var eventsError: String?
    /// The stats snapshot's file could not be written (a full disk): said once, until it can again.
    private var snapshotUnwritten = false
    private let history: HistoryRecorder
    private let alerts = AlertEngine()
    private var alertsError: String?
    /// What run/alert-levels holds, so an unchanged file is only touched.
    private var writtenLevels: AlertLevels?
    /// Sends alert notifications (nil if libcurl cannot start); ticked at every sample.
    private let notifier: Notifier?

    /// The kinds the collector keeps fresh beside stats, each every TTL/2.
    /// Workers never refresh (SnapshotCache), so every kind a route serves is here.
    static let refreshedKinds: [SnapshotKind] = [.processes, .network, .connections]

    public init(config: Config, log: Log) {
        self.config = config
        self.log = log
        cache = SnapshotCache(config: config)
        storage = StorageService(config: config, log: log)
        history = HistoryRecorder(config: config, log: log)
        // nil only when libcurl cannot initialise: the collector then only samples.
        publisher = NchanPublisher(socketPath: config.publishSocket, timeoutMillis: Self.publishTimeoutMillis(config),
                                   maxPacingGap: Self.maxPacingGap(config), log: log)
        notifier = Notifier(allow: config.alertTargetAllow, log: log)
    }

    /// A publish may take up to 5 intervals (at least 1 s) before it is
    /// abandoned; meanwhile newer samples replace the waiting one.
    static func publishTimeoutMillis(_ config: Config) -> Int { Int(max(1, config.collectInterval * 5) * 1000) }

    /// The pauses between the system channel's shards (NchanPublisher) add
    /// up to at most a twentieth of the interval (50 ms at 1 s): enough for
    /// nginx to serve the requests that waited during a shard's fan-out
    /// (about a millisecond's work at 5,000 req/s), short enough that the
    /// last shard's subscribers are not kept waiting.
    static func maxPacingGap(_ config: Config) -> Double {
        config.collectInterval / Double(20 * config.nginx.streamShards)
    }

    /// `system.0` … `system.N-1` (CC_STREAM_SHARDS).
    private var systemShards: [String] { LiveChannels.systemShards(config.nginx.streamShards) }

    public func run() -> Int32 {
        cc_worker_install_signals()
        // Die with the master rather than linger as an orphan.
        cc_set_parent_death_signal(SIGKILL)
        let stop = { cc_worker_stop_requested() != 0 }
        log.info("collector started", ["interval_s": String(config.collectInterval),
                                       "publishing": publisher == nil ? "off" : config.publishSocket])
        for (channels, paced) in [(systemShards, true), ([LiveChannels.events], false)] {
            publisher?.enqueue(channels: channels, replaceable: false, paced: paced) { [epoch] in
                LiveMessage.reset(epoch: epoch, publishedAtMillis: $0, reason: "collector_started")
            }
        }
        if notifier == nil { log.error("cannot initialise libcurl; alert notifications are off") }
        if publisher != nil {
            wakeFD = CollectorWake.bind(path: config.collectorWakeSocket)
            if wakeFD < 0 {
                log.warning("cannot bind the wake socket; new events wait for the next sample",
                            ["path": config.collectorWakeSocket, "error": String(cString: strerror(errno))])
            }
        }
        var nextSample = Clock.monotonicSeconds()
        var nextRefresh = Dictionary(uniqueKeysWithValues: Self.refreshedKinds.map { ($0, nextSample) })
        while !stop() {
            if let (stats, rates) = sample() {
                spreadShards(stop: stop)
                evaluateAlerts(config.testMetricsFile.map(AlertMetrics.values(testFile:))
                               ?? AlertMetrics.values(stats: stats, network: rates))
                history.record(stats: stats, storage: storage)
            }
            tickNotifications()
            let now = Clock.monotonicSeconds()
            for kind in Self.refreshedKinds where now >= nextRefresh[kind]! {
                refresh(kind)
                nextRefresh[kind] = now + kind.ttl(config) / 2
            }
            if cc_worker_take_reopen() != 0 { log.reopen() }
            nextSample += config.collectInterval
            let after = Clock.monotonicSeconds()
            if after >= nextSample {
                // Behind (a suspended host, a slow scan): resume the grid from now
                // rather than sample in a burst.
                log.warning("collector fell behind; skipping samples", ["late_s": String(after - nextSample)])
                nextSample = after + config.collectInterval
            }
            if let publisher {
                publisher.subscribersByChannel.write(runDir: config.runDir)
                publishEvents()
                while publisher.run(until: nextSample, wakeFD: wakeFD >= 0 ? wakeFD : nil, stop: stop) {
                    _ = CollectorWake.drain(wakeFD)
                    publishEvents()
                }
            } else {
                while !stop(), Clock.monotonicSeconds() < nextSample {
                    Clock.sleep(seconds: min(0.2, nextSample - Clock.monotonicSeconds()))
                }
            }
        }
        log.info("collector stopped", ["samples": String(seq)])
        return 0
    }

    /// Takes the stats sample and queues its live message (one per shard);
    /// nil when the sample failed.
    private func sample() -> (LoadedSnapshot, NetworkRates.Rates?)? {
        let rates = network.sample()
        do {
            let stats = try cache.forceRefresh(.stats)
            if stats.isWritten == snapshotUnwritten {
                snapshotUnwritten.toggle()
                if snapshotUnwritten {
                    log.warning("cannot write the stats snapshot (disk full?): sampling and publishing go on; requests get the last written copy")
                } else {
                    log.info("the stats snapshot is written again")
                }
            }
            seq += 1
            // Each shard's message is the same sample with its own published_at.
            publisher?.enqueue(channels: systemShards, replaceable: true, paced: true) { [epoch, seq] in
                LiveMessage.systemStats(stats: stats, epoch: epoch, seq: seq, publishedAtMillis: $0, network: rates)
            }
            return (stats, rates)
        } catch {
            log.error("stats sample failed", ["error": String(describing: error)])
            return nil
        }
    }

    /// Sends the sample's shards (a paced spread of a few to tens of ms)
    /// before the slower steps (alerts, history, process scans), so that no
    /// shard waits behind them (cut at a tenth of the interval, the later
    /// shards' delay from the sample reached p99 ~415 ms with 6,000
    /// subscribers' sockets for the scans to walk); for at most a quarter
    /// interval, so that a slow or hung nginx cannot push those steps into
    /// the next sample's time (shards left then go out in the wait for the
    /// next sample). New events go out meanwhile.
    private func spreadShards(stop: () -> Bool) {
        guard let publisher else { return }
        let until = Clock.monotonicSeconds() + config.collectInterval / 4
        while publisher.run(until: until, wakeFD: wakeFD >= 0 ? wakeFD : nil, stop: { stop() || !publisher.hasPacedWork }) {
            _ = CollectorWake.drain(wakeFD)
            publishEvents()
        }
    }

    /// Steps every alert series with this sample's figures; the transitions'
    /// events go out on the events channel with the next `publishEvents`.
    /// A database that fails leaves the levels file to age (so
    /// `/health/detailed` says unknown) and is retried at the next sample.
    private func evaluateAlerts(_ values: [AlertMetrics.Key: Double]) {
        do {
            let (transitions, levels) = try storage.run { db in
                try alerts.evaluate(values, db: db, monotonic: Clock.monotonicSeconds(), wall: Clock.wallMillis())
            }
            if levels != writtenLevels || !AlertLevels.touch(runDir: config.runDir) {
                writtenLevels = levels.write(runDir: config.runDir) ? levels : nil
            }
            for t in transitions {
                let labels = t.labels.keys.sorted().map { "\($0)=\(t.labels[$0]!)" }.joined(separator: ",")
                log.info(t.resumed ? "alert still firing" : "alert \(t.state.rawValue)",
                         ["rule": t.rule.name, "labels": labels, "value": t.value.map { String($0) } ?? "",
                          "silenced": String(t.silenced)])
                guard let notice = AlertNotice(t) else { continue }
                // A resumed alert goes again only where forgetting is the receiver's
                // rule (Alertmanager's resolve_timeout); a webhook had its firing.
                let targets = t.resumed ? t.rule.targets.filter { $0.type == .alertmanager } : t.rule.targets
                if !targets.isEmpty { notifier?.enqueue(notice, targets: targets, now: Clock.monotonicSeconds()) }
            }
            alertsError = nil
        } catch {
            let why = String(describing: error)
            if why != alertsError { log.warning("alert evaluation failed", ["error": why]) }
            alertsError = why
        }
    }

    /// Publishes the event rows committed since the last call, in id order
    /// (at most 1,000 per call; the rest follow at the next). The first call
    /// only learns the newest id: history is the REST API's, not the channel's.
    private func publishEvents() {
        guard let publisher else { return }
        do {
            try storage.run { db in
                let repo = EventRepository(db)
                guard let last = lastEventID else {
                    lastEventID = try repo.lastID()
                    return
                }
                var from = last
                for _ in 0..<10 {
                    let rows = try repo.after(id: from, limit: 100)
                    for e in rows {
                        eventSeq += 1
                        publisher.enqueue(channels: [LiveChannels.events], replaceable: false, paced: false) {
                            [epoch, eventSeq] in LiveMessage.event(e, epoch: epoch, seq: eventSeq, publishedAtMillis: $0)
                        }
                        from = e.id
                    }
                    if rows.count < 100 { break }
                }
                lastEventID = from
            }
            eventsError = nil
        } catch {
            // Once per distinct error: a database that is down stays quiet.
            let why = String(describing: error)
            if why != eventsError { log.warning("cannot read new events", ["error": why]) }
            eventsError = why
        }
    }

    private func refresh(_ kind: SnapshotKind) {
        do {
            try cache.forceRefresh(kind)
        } catch {
            log.error("snapshot refresh failed", ["kind": kind.rawValue, "error": String(describing: error)])
        }
    }

    /// Advances alert notifications (never waits on a receiver) and records
    /// each one that failed for good as a `notification_failed` event.
    private func tickNotifications() {
        guard let notifier else { return }
        let events = notifier.tick(now: Clock.monotonicSeconds()).compactMap { $0.event(at: Clock.wallMillis()) }
        guard !events.isEmpty else { return }
        do {
            try storage.run { db in
                for e in events { _ = try EventRepository(db).insert(e) }
            }
        } catch {
            log.warning("cannot record failed notifications", ["error": String(describing: error), "count": String(events.count)])
        }
    }
}
