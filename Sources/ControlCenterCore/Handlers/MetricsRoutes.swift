import Glibc

/// `GET /metrics`: the Prometheus text exposition format 0.0.4, for loopback
/// and CC_METRICS_ALLOW clients (nginx checks the same list first).
///
/// - application metrics: the pool's totals from MetricsStore (one file per
///   worker, exited workers folded), named in MetricsCatalog;
/// - pool metrics: workers by state from the status files, restarts and
///   timeout kills from the master's pool state, snapshot refresh counters;
/// - host metrics under node_exporter's names: the stats and network
///   snapshots' pre-rendered `.metrics` sections, refreshed by the cache as
///   for /api/system/stats (a scrape reads no /proc file itself), plus
///   `node_time_seconds`, the scrape's own clock.
public enum MetricsRoutes {
    public static func register(_ r: inout Router) {
        r.get("/metrics", scrape)
    }

    static func scrape(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        guard req.isLoopback || ctx.config.metricsAllow.contains(where: { $0.contains(req.remoteAddress) }) else {
            throw APIError(403, "forbidden", "/metrics is reachable from loopback and CC_METRICS_ALLOW only")
        }
        // This worker's own counts up to the request before this one, written
        // first: a count a scrape has shown must survive this worker's SIGKILL.
        ctx.service(RequestMetrics.self) { RequestMetrics(path: nil) }.write(nowNanos: Clock.monotonicNanos())
        var t = PrometheusText(capacity: 64 << 10)
        t.family("cc_build_info", "gauge", "Always 1; the version serving this page.")
        t.sample("cc_build_info", ["version": Version.string], 1)
        let caches = ctx.service(ScrapeCaches.self, make: ScrapeCaches.init)
        MetricsCatalog.write(&t, totals: MetricsStore(runDir: ctx.config.runDir).totals(cache: caches.files),
                             classifier: caches.classifier)
        writePool(&t, ctx)
        writeSnapshots(&t, ctx)
        for kind in [SnapshotKind.stats, .network] {
            guard let snap = try? SystemRoutes.cache(ctx).snapshot(kind) else { continue }
            t.raw(snap.file.section(.metrics))
        }
        writeLive(&t, ctx)
        t.family("node_time_seconds", "gauge", "System time in seconds since epoch (1970).")
        t.sample("node_time_seconds", Clock.wallSeconds())
        return Response(status: 200, headers: [("Content-Type", PrometheusText.contentType)], body: t.bytes)
    }

    /// What one worker keeps between the scrapes it answers.
    final class ScrapeCaches {
        let files = MetricsStore.Cache()
        let classifier = MetricsCatalog.Classifier()
    }

    static func writePool(_ t: inout PrometheusText, _ ctx: WorkerContext) {
        guard let state = PoolState.read(runDir: ctx.config.runDir) else { return }
        let records = WorkerStatusDirectory.readAll(directory: ctx.config.workerStatusDir)
        t.family("cc_pool_workers", "gauge", "Workers of each request pool by state, from their status files.")
        for p in state.pools {
            let mine = records.filter { $0.pool == p.name }
            let busy = mine.filter(\.busy).count
            t.sample("cc_pool_workers", ["pool": p.name, "state": "busy"], Double(busy))
            t.sample("cc_pool_workers", ["pool": p.name, "state": "idle"], Double(mine.count - busy))
        }
        t.family("cc_pool_target_workers", "gauge", "Workers each request pool is meant to run (CC_WORKERS, CC_STORAGE_WORKERS, TTIN/TTOU).")
        for p in state.pools { t.sample("cc_pool_target_workers", ["pool": p.name], Double(p.target)) }
        t.family("cc_worker_restarts_total", "counter", "Workers of each pool that died unexpectedly and were replaced (the master).")
        for p in state.pools { t.sample("cc_worker_restarts_total", ["pool": p.name], Double(p.restarts)) }
        t.family("cc_worker_timeout_kills_total", "counter", "Workers the master killed for running a request past CC_REQUEST_TIMEOUT.")
        for p in state.pools { t.sample("cc_worker_timeout_kills_total", ["pool": p.name], Double(p.timeoutKills)) }
        t.family("cc_master_reloads_total", "counter", "HUP reloads the master has carried out.")
        t.sample("cc_master_reloads_total", Double(state.reloads))
        t.family("cc_master_start_time_seconds", "gauge", "When the master started, in unixtime.")
        t.sample("cc_master_start_time_seconds", state.startedAt)
    }

    /// Subscribers of each live channel, as the collector last learnt them
    /// from nchan; nothing while the collector is down or not publishing.
    static func writeLive(_ t: inout PrometheusText, _ ctx: WorkerContext) {
        guard let live = LiveSubscribers.read(runDir: ctx.config.runDir, maxAge: max(5, ctx.config.collectInterval * 5)),
              !live.byChannel.isEmpty else { return }
        t.family("cc_live_subscribers", "gauge", "Subscribers of each live channel at its latest publish (nchan's count).")
        for channel in live.byChannel.keys.sorted() {
            t.sample("cc_live_subscribers", ["channel": channel], Double(live.byChannel[channel]!))
        }
    }

    static func writeSnapshots(_ t: inout PrometheusText, _ ctx: WorkerContext) {
        let cache = SystemRoutes.cache(ctx)
        let counters = SnapshotKind.allCases.map { ($0.rawValue, cache.counters($0)) }
        t.family("cc_snapshot_refreshes_total", "counter", "Snapshot refreshes (one /proc scan each), by kind.")
        for (k, c) in counters { t.sample("cc_snapshot_refreshes_total", ["kind": k], Double(c.refreshes)) }
        t.family("cc_snapshot_refresh_errors_total", "counter", "Snapshot refreshes that failed, by kind.")
        for (k, c) in counters { t.sample("cc_snapshot_refresh_errors_total", ["kind": k], Double(c.errors)) }
        t.family("cc_snapshot_refresh_seconds_total", "counter", "Time spent in successful snapshot refreshes, by kind.")
        for (k, c) in counters {
            t.sample("cc_snapshot_refresh_seconds_total", ["kind": k], Double(c.totalDurationMicros) / 1e6)
        }
        t.family("cc_snapshot_refresh_last_duration_seconds", "gauge", "Duration of the latest successful refresh, by kind.")
        for (k, c) in counters {
            t.sample("cc_snapshot_refresh_last_duration_seconds", ["kind": k], Double(c.lastDurationMicros) / 1e6)
        }
    }
}
