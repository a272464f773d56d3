import CSupport
import Glibc

/// `/api/pool/status`: php-fpm's status page, built from the per-worker
/// status files and the master's pool state; no shared memory. `pools` are
/// the request pools with their workers' figures; `groups` lists every
/// child group of the master, request pools included.
public enum PoolRoutes {
    /// Sections other subsystems add to the status page (the snapshot cache
    /// adds its refresh counters), written as `"name": {...}`.
    public typealias Section = (name: String, write: (inout JSONWriter, WorkerContext) -> Void)

    public static func register(_ r: inout Router, sections: [Section] = []) {
        r.get("/api/pool/status") { req, ctx in try status(req, ctx, sections: sections) }
    }

    static func status(_ req: Request, _ ctx: WorkerContext, sections: [Section]) throws -> Response {
        guard req.isLoopback else { throw APIError.forbidden("The pool status is reachable from loopback only") }
        let state = PoolState.read(runDir: ctx.config.runDir)
        let records = WorkerStatusDirectory.readAll(directory: ctx.config.workerStatusDir)
        let now = Clock.wallMillis()
        // Only this worker's own pool socket is at hand (fd 0).
        let queue = cc_listen_queue_length(0)
        return .json { w in
            w.beginObject()
            w.field("master_pid", state?.masterPid)
            w.field("start_time", state.map { Clock.iso8601($0.startedAt) })
            w.field("uptime_seconds", state.map { Double(now) / 1000 - $0.startedAt } ?? 0, places: 3)
            w.field("generation", state?.generation ?? 0)
            w.field("reloads", state?.reloads ?? 0)
            w.field("phase", state?.phase ?? "unknown")
            w.beginArray("pools")
            for p in state?.pools ?? [] {
                let mine = records.filter { $0.pool == p.name }
                w.beginObject()
                w.field("name", p.name)
                w.field("listen", p.listen)
                w.field("target_workers", p.target)
                w.field("workers", mine.count)
                w.field("busy", mine.filter(\.busy).count)
                w.field("idle", mine.filter { !$0.busy }.count)
                w.field("accepted_requests", p.servedByExited + mine.reduce(0) { $0 + $1.served })
                w.field("restarts", p.restarts)
                w.field("timeout_kills", p.timeoutKills)
                w.field("backoff", p.backoff)
                if p.name == ctx.pool && queue >= 0 { w.field("listen_queue", queue) } else { w.nullField("listen_queue") }
                w.endObject()
            }
            w.endArray()
            w.beginArray("groups")
            for g in state?.groups ?? [] {
                w.beginObject()
                g.writeFields(&w)
                w.field("serves_requests", g.servesRequests)
                w.endObject()
            }
            w.endArray()
            w.beginArray("workers")
            for r in records {
                w.beginObject()
                w.field("pid", Int(r.pid))
                w.field("pool", r.pool)
                w.field("slot", r.slot)
                w.field("state", r.busy ? "busy" : "idle")
                w.field("requests", r.served)
                w.field("start_time", Clock.iso8601(Double(r.startedMillis) / 1000))
                if r.busy {
                    w.field("method", r.method)
                    w.field("path", r.path)
                    w.field("elapsed_ms", Int(now - r.sinceMillis))
                } else {
                    w.nullField("method")
                    w.nullField("path")
                    w.nullField("elapsed_ms")
                }
                w.endObject()
            }
            w.endArray()
            for s in sections {
                w.key(s.name)
                s.write(&w, ctx)
            }
            w.endObject()
        }
    }
}
