/// `/api/system/*`: the host views, served from the snapshot cache (issue 3).
///
/// Default views are pre-rendered at refresh and served as one byte copy;
/// filtered and sorted views are cut from the decoded snapshot, never from a
/// new /proc walk.
public enum SystemRoutes {
    /// With CC_PUBLIC_READ=true (the default) the host summary (stats,
    /// network, info) is public, processes and ports answer anonymous requests
    /// in their anonymous form (ReadAccess), and connections need a viewer
    /// token; with false every route needs one.
    public static func register(_ r: inout Router) {
        let guarded = Auth.readGuarded
        r.get("/api/system/stats", guarded { _, ctx in try whole(.stats, ctx) })
        r.get("/api/system/network", guarded { _, ctx in try whole(.network, ctx) })
        r.get("/api/system/info", guarded(info))
        r.get("/api/system/processes", processes)
        r.get("/api/system/processes/{pid}", process)
        r.get("/api/system/connections", connections)
        r.get("/api/system/ports", ports)
    }

    /// Refresh counters per snapshot kind, shown on `/api/pool/status`.
    static var statusSections: [PoolRoutes.Section] {
        [(name: "snapshots", write: { w, ctx in writeCounters(&w, ctx) })]
    }

    static func cache(_ ctx: WorkerContext) -> SnapshotCache {
        // Workers serve the collector's snapshots and never rebuild one (SnapshotCache).
        ctx.service(SnapshotCache.self) { SnapshotCache(config: ctx.config) }
    }

    /// Per-worker scanners for the live routes (info, process detail).
    final class LiveReaders {
        let host = HostScanner()
        let processes = ProcessScanner()
        let users = UserNames()
    }

    static func live(_ ctx: WorkerContext) -> LiveReaders { ctx.service(LiveReaders.self) { LiveReaders() } }

    static func whole(_ kind: SnapshotKind, _ ctx: WorkerContext) throws -> Response {
        let snap = try cache(ctx).snapshot(kind)
        return SnapshotTail.response(Array(snap.file.section(.body)), snap)
    }

    static func info(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        .json { w in SystemInfo.write(&w, host: live(ctx).host) }
    }

    static func processes(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let access = try ReadAccess.of(req, ctx)
        let query = try ProcessQuery(req)
        let snap = try cache(ctx).snapshot(.processes)
        if query == .default {
            return SnapshotTail.response(Array(snap.file.section(access == .viewer ? .viewerBody : .body)), snap)
        }
        let table = try snap.view(ProcessTable.decode)
        var w = JSONWriter(capacity: 32 << 10)
        query.writeBody(&w, table: table, access: access)
        SnapshotTail.close(&w, takenAtMillis: snap.takenAtMillis)
        return SnapshotTail.response(w.bytes, snap)
    }

    static func process(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let access = try ReadAccess.of(req, ctx)
        let raw = req.parameter("pid")
        guard let pid = Int32(raw), pid > 0 else { throw invalid("pid must be a positive whole number") }
        // The snapshot only lends its CPU figure; a missing one is no error.
        let table = (try? cache(ctx).snapshot(.processes)).flatMap { try? $0.view(ProcessTable.decode) }
        let l = live(ctx)
        var w = JSONWriter(capacity: 2048)
        guard ProcessDetail.write(&w, pid: pid, access: access, scanner: l.processes, users: l.users, snapshot: table) else {
            throw APIError.notFound("No process with pid \(pid)")
        }
        return .json(bytes: w.bytes)
    }

    /// Each connection's endpoints and owner: a viewer token, even with
    /// CC_PUBLIC_READ=true.
    static func connections(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.viewer, req, ctx)
        let query = try ConnectionQuery(req)
        let snap = try cache(ctx).snapshot(.connections)
        let table = try snap.view(ConnectionTable.decode)
        return list("connections", table.rows.filter(query.matches), total: table.rows.count, page: query.page,
                     snap: snap, capacity: 32 << 10, item: table.json)
    }

    static func ports(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let access = try ReadAccess.of(req, ctx)
        let query = try PortQuery(req)
        let snap = try cache(ctx).snapshot(.connections)
        let table = try snap.view(ConnectionTable.decode)
        return list("ports", table.ports.filter(query.matches), total: table.ports.count, page: query.page,
                     snap: snap, capacity: 16 << 10, item: { table.portJSON($0, access) })
    }

    /// A page of pre-rendered rows with `count`, `total`, paging, `success`
    /// and the snapshot's time, as every snapshot list answers.
    static func list<Row>(_ key: String, _ matched: [Row], total: Int, page: Page, snap: LoadedSnapshot,
                          capacity: Int, item: (Row) -> ArraySlice<UInt8>) -> Response {
        var w = JSONWriter(capacity: capacity)
        w.beginObject()
        w.beginArray(key)
        for r in matched[page.range(matched.count)] { w.raw(item(r)) }
        w.endArray()
        w.field("count", matched.count)
        w.field("total", total)
        w.field("limit", page.limit)
        w.field("offset", page.offset)
        w.field("success", true)
        SnapshotTail.close(&w, takenAtMillis: snap.takenAtMillis)
        return SnapshotTail.response(w.bytes, snap)
    }

    static func writeCounters(_ w: inout JSONWriter, _ ctx: WorkerContext) {
        let c = cache(ctx)
        w.beginObject()
        for kind in SnapshotKind.allCases {
            let k = c.counters(kind)
            w.beginObject(kind.rawValue)
            w.field("refreshes", k.refreshes)
            w.field("errors", k.errors)
            w.field("last_duration_ms", Double(k.lastDurationMicros) / 1000, places: 3)
            if k.lastTakenAtMillis > 0 {
                w.field("last_taken_at", Clock.iso8601(Double(k.lastTakenAtMillis) / 1000))
            } else {
                w.nullField("last_taken_at")
            }
            w.field("ttl_seconds", kind.ttl(ctx.config), places: 3)
            if !k.lastError.isEmpty { w.field("last_error", k.lastError) }
            w.endObject()
        }
        w.endObject()
    }
}
