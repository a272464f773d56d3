/// One series of a history answer: its buckets in plan order, nil where a
/// bucket had no sample.
struct HistorySeries {
    var name: String
    var buckets: [HistoryBucket?]

    var metric: Substring { name.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0] }
    var label: String? { name.firstIndex(of: ":").map { String(name[name.index(after: $0)...]) } }

    /// The series the requested names cover (a bare metric: all its labels),
    /// in request order then name order, bucketed per `plan`.
    static func read(_ requested: [String], _ plan: HistoryQuery.Plan, _ store: HistoryStore) throws -> [HistorySeries] {
        let known = try store.series()
        var chosen: [(name: String, position: Int)] = []
        var seen = Set<String>()
        for r in requested {
            let matches = r.contains(":")
                ? known.filter { $0.key == r }
                : known.filter { $0.key == r || $0.key.hasPrefix(r + ":") }
            for (name, p) in matches.sorted(by: { $0.key < $1.key }) where seen.insert(name).inserted {
                chosen.append((name, p))
            }
        }
        guard !chosen.isEmpty else { return [] }
        var acc = [[HistoryBucket.Accumulator]](repeating: .init(repeating: .init(), count: plan.buckets), count: chosen.count)
        let wanted = chosen.enumerated().map { (position: $0.element.position, slot: $0.offset) }.sorted { $0.position < $1.position }
        for (ts, vals) in try store.rows(plan.tier, from: plan.start, to: plan.end) {
            let i = Int((ts - plan.start) / plan.step)
            guard i >= 0, i < plan.buckets else { continue }
            HistoryCodec.scan(vals, wanted: wanted) { s, b in acc[s][i].add(b) }
        }
        return zip(chosen, acc).map { HistorySeries(name: $0.0.name, buckets: $0.1.map(\.bucket)) }
    }

    func write(_ w: inout JSONWriter, _ plan: HistoryQuery.Plan) {
        w.beginObject()
        w.field("name", name)
        w.field("metric", String(metric))
        w.field("label", label)
        w.field("unit", HistorySample.metrics[String(metric)] ?? "")
        w.beginArray("data")
        for (i, b) in buckets.enumerated() {
            w.beginArray()
            w.int(Int(plan.start + Int64(i) * plan.step))
            w.double(b?.avg, places: 2)
            w.double(b?.min, places: 2)
            w.double(b?.max, places: 2)
            w.endArray()
        }
        w.endArray()
        w.endObject()
    }
}
