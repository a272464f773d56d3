/// `GET /api/system/history`: the collector's samples and roll-ups
/// (HistoryStore), readable like the other system routes (public unless
/// `CC_PUBLIC_READ=false`). It queries the database, so nginx sends it to
/// the storage pool.
///
/// Answer: `{tier, resolution_s, step_s, from, to, series:[{name, metric,
/// label, unit, data:[[t, avg, min, max], …]}]}`; `t` is the bucket start in
/// Unix ms, every bucket of the range is listed, and a bucket without
/// samples (the collector or host was down) is `[t, null, null, null]`.
enum HistoryRoutes {
    static func register(_ r: inout Router) {
        r.get("/api/system/history", Auth.readGuarded(history))
    }

    static func history(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let now = Clock.wallMillis()
        let query = try HistoryQuery.parse(req.query, now: now)
        let plan = try query.plan(ctx.config, now: now)
        let series = try Store.read(ctx) { db in try HistorySeries.read(query.metrics, plan, HistoryStore(db)) }
        return .json { w in
            w.beginObject()
            w.field("tier", plan.tier.label)
            w.field("resolution_s", Int(plan.tier.resolutionMillis(ctx.config) / 1000))
            w.field("step_s", Int(plan.step / 1000))
            w.field("from", Int(plan.start))
            w.field("to", Int(plan.end))
            w.beginArray("series")
            for s in series { s.write(&w, plan) }
            w.endArray()
            w.endObject()
        }
    }
}
