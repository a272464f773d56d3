import Glibc

/// `/health*` and `/`: the routes the old dashboard polled, now real.
public enum HealthRoutes {
    /// A readiness check another subsystem contributes (storage: its database
    /// ping). It returns nil when healthy, or the reason it is not.
    public typealias ReadinessCheck = (name: String, check: (WorkerContext) -> String?)

    public static func register(_ r: inout Router, readiness extra: [ReadinessCheck] = []) {
        r.get("/", root)
        r.get("/health", health)
        r.get("/health/live", live)
        r.get("/health/startup", startup)
        r.get("/health/ready") { req, ctx in ready(req, ctx, extra: extra) }
        r.get("/health/detailed", detailed)
    }

    static func root(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        .json { w in
            w.beginObject()
            w.field("name", "Control Center")
            w.field("version", Version.string)
            w.beginObject("links")
            for (k, v) in [("health", "/health"), ("ready", "/health/ready"), ("detailed", "/health/detailed"),
                           ("stats", "/api/system/stats"), ("processes", "/api/system/processes"),
                           ("network", "/api/system/network"), ("pool_status", "/api/pool/status"),
                           ("openapi", "/openapi.yaml")] {
                w.field(k, v)
            }
            w.endObject()
            w.endObject()
        }
    }

    /// No database, no I/O: process uptime and a clock read.
    static func health(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let now = Clock.wallSeconds()
        return .json { w in
            w.beginObject()
            w.field("status", "healthy")
            w.field("timestamp", timestamp: now)
            w.field("version", Version.string)
            w.field("uptime_seconds", now - ctx.serviceStartedAt, places: 3)
            w.endObject()
        }
    }

    static func live(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        .json { w in
            w.beginObject()
            w.field("status", "alive")
            w.field("pid", Int(ctx.pid))
            w.endObject()
        }
    }

    /// A worker only answers once it has started, so answering is the check.
    static func startup(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        .json { w in
            w.beginObject()
            w.field("status", "started")
            w.field("started_at", Clock.iso8601(ctx.startedAt))
            w.endObject()
        }
    }

    /// Workers only read the collector's snapshots (SnapshotCache), so the
    /// cache directory must be readable by them (as CC_USER under a root master).
    static func cacheDirProblem(_ ctx: WorkerContext) -> String? {
        let dir = ctx.config.cacheDir
        guard access(dir, R_OK | X_OK) != 0 else { return nil }
        return ctx.runsAs != nil ? "cannot read \(dir) as \(ctx.config.user)" : "cannot read \(dir)"
    }

    struct Check {
        let name: String
        let problem: String?
    }

    /// Only the request pools decide readiness: a group that serves no
    /// requests (the collector) is listed beside them but cannot make the
    /// service refuse traffic.
    static func readinessChecks(_ ctx: WorkerContext, state: PoolState?, extra: [ReadinessCheck]) -> [Check] {
        var checks: [Check] = []
        checks.append(Check(name: "cache_dir", problem: cacheDirProblem(ctx)))
        if let state {
            let short = state.pools.filter { $0.live < $0.target }
            let problem = state.phase != "running" ? "master is stopping"
                : short.isEmpty ? nil : short.map { "\($0.name): \($0.live)/\($0.target) workers" }.joined(separator: ", ")
            checks.append(Check(name: "workers", problem: problem))
        } else {
            checks.append(Check(name: "workers", problem: "no pool state (master not running?)"))
        }
        for e in extra {
            checks.append(Check(name: e.name, problem: e.check(ctx)))
        }
        return checks
    }

    static func ready(_ req: Request, _ ctx: WorkerContext, extra: [ReadinessCheck]) -> Response {
        let state = PoolState.read(runDir: ctx.config.runDir)
        let checks = readinessChecks(ctx, state: state, extra: extra)
        let ok = checks.allSatisfy { $0.problem == nil }
        return .json(ok ? 200 : 503) { w in
            w.beginObject()
            w.field("status", ok ? "ready" : "not_ready")
            w.beginObject("checks")
            for c in checks {
                w.beginObject(c.name)
                w.field("ok", c.problem == nil)
                if let p = c.problem { w.field("message", p) }
                w.endObject()
            }
            w.endObject()
            w.beginArray("groups")
            for g in state?.groups ?? [] {
                w.beginObject()
                w.field("name", g.name)
                w.field("live", g.live)
                w.field("target", g.target)
                w.field("decides_readiness", g.servesRequests)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
    }

    /// A metric's level from the collector's alert levels file: the
    /// highest severity of its firing alerts, "ok" without one, "unknown"
    /// when the file is missing or older than `levelsMaxAge` (the collector is down).
    static func level(_ metric: String, _ levels: AlertLevels?) -> String {
        guard let levels else { return "unknown" }
        return levels.levels[metric] ?? "ok"
    }

    /// Seconds after which the levels file no longer speaks for the host.
    static func levelsMaxAge(_ config: Config) -> Double { max(30, config.collectInterval * 10) }

    static func detailed(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let state = PoolState.read(runDir: ctx.config.runDir)
        let records = WorkerStatusDirectory.readAll(directory: ctx.config.workerStatusDir)
        let cpu = HostFigures.cpuPercent()
        let mem = HostFigures.memory()
        let disk = HostFigures.disk(path: "/")
        let memPct = mem.map { $0.total > 0 ? Double($0.total - $0.available) * 100 / Double($0.total) : 0 }
        let diskPct = disk.map { $0.total > 0 ? Double($0.total - $0.free) * 100 / Double($0.total) : 0 }
        let alerts = AlertLevels.read(runDir: ctx.config.runDir, maxAge: levelsMaxAge(ctx.config))
        let firing = Set(alerts?.levels.values.map { $0 } ?? [])
        let overall = firing.contains("critical") ? "critical" : firing.contains("warning") ? "warning" : "healthy"
        return .json { w in
            w.beginObject()
            w.field("status", overall)
            w.field("timestamp", Clock.iso8601(Clock.wallSeconds()))
            w.field("version", Version.string)
            w.field("uptime_seconds", state.map { Clock.wallSeconds() - $0.startedAt } ?? 0, places: 3)
            w.beginObject("pool")
            w.field("workers", records.count)
            w.field("busy", records.filter(\.busy).count)
            w.field("restarts", state?.pools.reduce(0) { $0 + $1.restarts } ?? 0)
            w.field("target", state?.pools.reduce(0) { $0 + $1.target } ?? 0)
            w.endObject()
            w.beginObject("system")
            w.beginObject("cpu")
            w.field("percent", cpu)
            w.field("status", level("cpu", alerts))
            w.endObject()
            w.beginObject("memory")
            w.field("percent", memPct)
            w.field("total", mem.map { Int($0.total) })
            w.field("available", mem.map { Int($0.available) })
            w.field("status", level("memory", alerts))
            w.endObject()
            w.beginObject("disk")
            w.field("percent", diskPct)
            w.field("total", disk.map { Int($0.total) })
            w.field("free", disk.map { Int($0.free) })
            w.field("status", level("disk", alerts))
            w.endObject()
            w.beginObject("swap")
            w.field("status", level("swap", alerts))
            w.endObject()
            w.endObject()
            // The alert rules' thresholds (`GET /api/alerts/rules` has the whole rules).
            w.key("thresholds")
            if let alerts { alerts.writeRules(&w) } else { w.null() }
            w.endObject()
        }
    }
}
