import Foundation
import Glibc

/// Start, stop and restart (operator), action results and status (viewer).
/// A worker never runs a service: it queues the action with its audit event
/// in one transaction and wakes the supervisor (`Supervisor.wake`).
enum ServiceActionRoutes {
    static func register(_ r: inout Router) {
        for kind in ServiceAction.Kind.allCases {
            r.post("/api/services/{name}/\(kind.rawValue)") { req, ctx in try act(kind, req, ctx) }
        }
        r.get("/api/services/{name}/actions/{id}", action)
        r.get("/api/services/{name}/status", status)
        r.get("/api/services/{name}/logs", logs)
    }

    static let defaultLogLines = 100
    static let maxLogLines = 10_000

    /// The last `lines` lines, or with `since` (a `next` from before) the lines
    /// written after it. Read from the files the supervisor writes
    /// (`ServiceLogFiles`), never loading one whole.
    static func logs(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.viewer, req, ctx)
        let name = try ServiceRoutes.name(req)
        let lines = try UserRoutes.intParam(req, "lines", default: defaultLogLines, range: 1...maxLogLines)
        let cursor = try req.query["since"].map { raw throws -> UInt64 in
            guard let v = UInt64(raw) else { throw APIError.badRequest("since must be a cursor returned as next", code: "invalid_cursor") }
            return v
        }
        guard try Store.read(ctx, { try ServiceRepository($0).find(name) }) != nil else {
            throw APIError.notFound("No service \(name)")
        }
        let dir = ServiceLogFiles.directory(ctx.config.serviceLogDir, name)
        let page = cursor.map { ServiceLogReader.since(dir, cursor: $0, lines: lines) } ?? ServiceLogReader.tail(dir, lines: lines)
        return .json { w in
            w.beginObject()
            w.field("success", true)
            w.field("name", name)
            w.beginArray("logs")
            for l in page.lines { w.string(l) }
            w.endArray()
            w.field("total_lines", page.lines.count)
            w.field("next", String(page.next))
            w.field("truncated", page.truncated)
            w.endObject()
        }
    }

    /// How often `?wait=` re-reads its action with no notice from the
    /// supervisor (`ServiceActionNotice`): a safety net, since every action's
    /// end is notified. Without a notice file to watch (no supervisor has run
    /// yet), `waitPollUnwatched`.
    static let waitPoll = 0.5
    static let waitPollUnwatched = 0.05

    /// `?wait=SECONDS`: at most min(30, CC_REQUEST_TIMEOUT − 1), so the answer
    /// comes before nginx gives up on the request.
    static func waitSeconds(_ req: Request, _ ctx: WorkerContext) throws -> Double? {
        guard let raw = req.query["wait"] else { return nil }
        let limit = min(30, ctx.config.requestTimeout - 1)
        guard let v = Double(raw), v.isFinite, v >= 0, v <= limit else {
            throw APIError.badRequest("wait must be a number of seconds from 0 to \(limit.formatted())", code: "invalid_wait")
        }
        return v
    }

    static func act(_ kind: ServiceAction.Kind, _ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        let name = try ServiceRoutes.name(req)
        let wait = try waitSeconds(req, ctx)
        let id = try Store.write(ctx) { db -> Int64 in
            guard try ServiceRepository(db).find(name) != nil else { throw APIError.notFound("No service \(name)") }
            let id = try ServiceActionRepository(db).enqueue(service: name, kind: kind, actor: p.user.username)
            try Audit.record(db, actor: p.user.username, action: "service.\(kind.rawValue)", target: name,
                             message: "requested \(kind.rawValue) (action \(id))",
                             data: #"{"role":"\#(p.user.role.rawValue)","action_id":\#(id)}"#)
            return id
        }
        Supervisor.wake(ctx.config)
        var latest: ServiceAction?
        let slot = wait.flatMap { _ in waitSlot(ctx.config) }
        defer { slot?.unlock() }
        if let wait, slot != nil {
            let deadline = Clock.monotonicSeconds() + wait
            let notice = ServiceActionNotice.Watch(ctx.config)
            repeat {
                latest = try Store.read(ctx) { try ServiceActionRepository($0).find(id: id, service: name) }
                if latest?.isFinished == true { break }
                let left = deadline - Clock.monotonicSeconds()
                if let notice {
                    notice.wait(seconds: min(left, waitPoll))
                } else {
                    Clock.sleep(seconds: max(0, min(left, waitPollUnwatched)))
                }
            } while Clock.monotonicSeconds() < deadline
        }
        if let a = latest, a.isFinished {
            return .json(200) { w in write(&w, a, success: a.status == .done) }
        }
        return .json(202) { w in
            w.beginObject()
            w.field("success", true)
            w.field("message", "\(kind.rawValue) of \(name) accepted")
            w.field("action_id", Int(id))
            w.field("status", latest?.status.rawValue ?? "pending")
            w.field("pid", latest?.pid.map { Int($0) })
            w.endObject()
        }
    }

    /// Waiting requests hold a storage worker each, so at most half the
    /// storage pool may wait at once: one of `slots` flock(2)ed files under
    /// run/. Without a free slot the request answers 202 at once (as
    /// without `wait`) rather than queue behind the waiters.
    static func waitSlot(_ config: Config) -> FileLock? {
        let slots = max(1, config.storageWorkers / 2)
        let dir = config.actionWaitDir
        mkdir(dir, 0o700) // made by the master (StatePermissions); tests may not have it
        for i in 0..<slots {
            let lock = FileLock(path: "\(dir)/\(i).lock")
            if lock.tryLock() { return lock }
        }
        return nil
    }

    static func write(_ w: inout JSONWriter, _ a: ServiceAction, success: Bool) {
        w.beginObject()
        w.field("success", success)
        w.field("action_id", Int(a.id))
        w.field("service", a.service)
        w.field("action", a.kind.rawValue)
        w.field("status", a.status.rawValue)
        w.field("message", a.message)
        w.field("pid", a.pid.map { Int($0) })
        w.field("actor", a.actor)
        w.field("created_at", timestamp: Double(a.createdAt) / 1000)
        w.field("finished_at", a.finishedAt.map { Clock.iso8601(Double($0) / 1000) })
        w.endObject()
    }

    static func action(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.viewer, req, ctx)
        let name = try ServiceRoutes.name(req)
        guard let id = Int64(req.parameter("id")), id > 0 else {
            throw APIError.badRequest("Action id must be a positive whole number", code: "invalid_id")
        }
        guard let a = try Store.read(ctx, { try ServiceActionRepository($0).find(id: id, service: name) }) else {
            throw APIError.notFound("No action \(id) on service \(name)")
        }
        return .json { write(&$0, a, success: a.status != .failed) }
    }

    static func status(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.viewer, req, ctx)
        let name = try ServiceRoutes.name(req)
        let (service, state) = try Store.read(ctx) { db in
            (try ServiceRepository(db).find(name), try ServiceStateRepository(db).find(name))
        }
        guard service != nil else { throw APIError.notFound("No service \(name)") }
        let now = Clock.wallMillis()
        // Checked by start time, so a reused pid's session is never shown as the service's.
        let tree = state.flatMap { st -> (ServiceTracking, ServiceProcessTree.Usage)? in
            guard let pid = st.pid, let ticks = st.startTicks, ServiceProcessTree.startTicks(pid) == ticks else { return nil }
            let (mode, pids) = ServiceCgroup.members(ofService: name, pid: pid, stateDir: ctx.config.stateDir)
            return (mode, pids.map(ServiceProcessTree.usage(pids:)) ?? ServiceProcessTree.usage(sessionID: pid))
        }
        let usage = tree?.1
        return .json { w in
            w.beginObject()
            w.field("success", true)
            w.field("name", name)
            w.field("status", state?.status.rawValue ?? ServicePolicy.Status.stopped.rawValue)
            w.field("health", (state?.health ?? .unknown).rawValue)
            w.field("health_message", state?.healthMessage)
            w.field("health_changed_at", state?.healthChangedAt.map { Clock.iso8601(Double($0) / 1000) })
            w.field("pid", state?.pid.map { Int($0) })
            w.field("uptime_seconds", ServiceJSON.uptime(state, now: now))
            w.field("started_at", state?.startedAt.map { Clock.iso8601(Double($0) / 1000) })
            w.field("restarts", state?.restarts ?? 0)
            w.beginObject("last_exit")
            w.field("code", state?.lastExitCode.map { Int($0) })
            w.field("signal", state?.lastExitSignal.map { Int($0) })
            w.field("at", state?.lastExitAt.map { Clock.iso8601(Double($0) / 1000) })
            w.endObject()
            w.field("next_retry_at", state?.nextRetryAt.map { Clock.iso8601(Double($0) / 1000) })
            w.field("message", state?.message)
            w.field("tracking", tree?.0.rawValue)
            if let u = usage {
                w.beginObject("tree")
                w.field("processes", u.processes)
                w.field("rss_bytes", u.rssBytes)
                w.field("cpu_seconds", u.cpuSeconds)
                w.endObject()
            } else {
                w.nullField("tree")
            }
            w.endObject()
        }
    }
}
