/// One process in a published snapshot: the fields filters and sorts need,
/// and where its two pre-rendered JSON forms live in the items section.
struct ProcessRow {
    var pid: Int32
    var ppid: Int32
    var uid: UInt32
    var state: UInt8
    var cpu: Double          // NaN: unknown (first snapshot)
    var memory: Double
    var rss: UInt64
    var startTicks: UInt64
    var ticks: UInt64
    var sampledAt: UInt64    // CLOCK_BOOTTIME ns of the ticks reading
    var name: String
    var user: String
    var item: Range<Int>       // anonymous form: offsets into the items section
    var viewerItem: Range<Int> // viewer form (adds cmdline): offsets into the items section

    func encode(_ w: inout ByteWriter) {
        w.i32(pid); w.i32(ppid); w.u32(uid); w.u8(state)
        w.f64(cpu); w.f64(memory); w.u64(rss); w.u64(startTicks); w.u64(ticks); w.u64(sampledAt)
        w.string(name); w.string(user)
        w.u32(UInt32(item.lowerBound)); w.u32(UInt32(item.count))
        w.u32(UInt32(viewerItem.lowerBound)); w.u32(UInt32(viewerItem.count))
    }

    static func decode(_ r: inout ByteReader) -> ProcessRow? {
        guard let pid = r.i32(), let ppid = r.i32(), let uid = r.u32(), let state = r.u8(),
              let cpu = r.f64(), let mem = r.f64(), let rss = r.u64(), let st = r.u64(), let ticks = r.u64(),
              let sampledAt = r.u64(), let name = r.string(), let user = r.string(), let off = r.u32(), let len = r.u32(),
              let voff = r.u32(), let vlen = r.u32() else { return nil }
        return ProcessRow(pid: pid, ppid: ppid, uid: uid, state: state, cpu: cpu, memory: mem, rss: rss,
                          startTicks: st, ticks: ticks, sampledAt: sampledAt, name: name, user: user,
                          item: Int(off)..<(Int(off) + Int(len)), viewerItem: Int(voff)..<(Int(voff) + Int(vlen)))
    }
}

/// The decoded processes snapshot a worker filters and sorts.
final class ProcessTable {
    let rows: [ProcessRow]
    let items: ArraySlice<UInt8>
    let byPid: [Int32: Int]

    init(rows: [ProcessRow], items: ArraySlice<UInt8>) {
        self.rows = rows
        self.items = items
        var m: [Int32: Int] = [:]
        m.reserveCapacity(rows.count)
        for (i, r) in rows.enumerated() { m[r.pid] = i }
        byPid = m
    }

    static func decode(_ f: SnapshotFile) throws -> ProcessTable {
        var r = ByteReader(f.section(.index))
        var rows: [ProcessRow] = []
        rows.reserveCapacity(f.itemCount)
        let items = f.section(.items)
        while !r.atEnd {
            guard let row = ProcessRow.decode(&r), row.item.upperBound <= items.count,
                  row.viewerItem.upperBound <= items.count else {
                throw SnapshotError("bad processes index")
            }
            rows.append(row)
        }
        return ProcessTable(rows: rows, items: items)
    }

    func itemJSON(_ row: ProcessRow, _ access: ReadAccess) -> ArraySlice<UInt8> {
        let range = access == .viewer ? row.viewerItem : row.item
        return items[(items.startIndex + range.lowerBound)..<(items.startIndex + range.upperBound)]
    }
}

/// What `/api/system/processes` was asked for.
struct ProcessQuery: Equatable {
    enum Sort: String, CaseIterable { case cpu, memory, rss, pid, name, start_time }

    var sort: Sort = .cpu
    var descending = true
    var page = Page(limit: 50, offset: 0)
    var user: String?
    var name: String?
    var state: String?

    static let `default` = ProcessQuery()

    init() {}

    init(_ req: Request) throws {
        let s = try choice(req, "sort", Sort.allCases.map(\.rawValue), default: "cpu")!
        sort = Sort(rawValue: s)!
        let natural = (sort == .pid || sort == .name) ? "asc" : "desc"
        descending = try choice(req, "order", ["asc", "desc"], default: natural)! == "desc"
        page = try Page(req, defaultLimit: 50)
        user = req.query["user"].flatMap { $0.isEmpty ? nil : $0 }
        name = req.query["name"].flatMap { $0.isEmpty ? nil : $0.lowercased() }
        if let st = req.query["state"], !st.isEmpty {
            let lower = st.lowercased()
            let known = ["R", "S", "D", "T", "t", "Z", "X", "I", "K", "W", "P"]
            guard known.contains(st) || known.map({ processStatusWord(UInt8(ascii: Unicode.Scalar($0)!)) }).contains(lower) else {
                throw invalid("state must be a ps state letter (R, S, D, T, Z, I...) or a status word (running, sleeping...)")
            }
            state = st
        }
    }

    func matches(_ r: ProcessRow) -> Bool {
        if let user, r.user != user && String(r.uid) != user { return false }
        if let name, !r.name.lowercased().contains(name) { return false }
        if let state {
            if state.count == 1 { if r.state != state.utf8.first! { return false } }
            else if processStatusWord(r.state) != state.lowercased() { return false }
        }
        return true
    }

    /// Row order for this query; unknown CPU figures sort last either way.
    func ordered(_ a: ProcessRow, _ b: ProcessRow) -> Bool {
        func cmp<T: Comparable>(_ x: T, _ y: T) -> Bool? { x == y ? nil : (descending ? x > y : x < y) }
        let r: Bool?
        switch sort {
        case .cpu:
            if a.cpu.isNaN != b.cpu.isNaN { return b.cpu.isNaN }
            r = a.cpu.isNaN ? nil : cmp(a.cpu, b.cpu)
        case .memory, .rss: r = cmp(a.rss, b.rss)
        case .pid: r = cmp(a.pid, b.pid)
        case .name: r = cmp(a.name, b.name)
        case .start_time: r = cmp(a.startTicks, b.startTicks)
        }
        return r ?? (a.pid < b.pid)
    }

    func run(_ table: ProcessTable) -> (rows: [ProcessRow], count: Int) {
        var matched = table.rows.filter(matches)
        matched.sort(by: ordered)
        let range = page.range(matched.count)
        return (Array(matched[range]), matched.count)
    }

    /// Writes everything but the snapshot tail.
    func writeBody(_ w: inout JSONWriter, table: ProcessTable, access: ReadAccess) {
        let (rows, count) = run(table)
        w.beginObject()
        w.beginArray("processes")
        for r in rows { w.raw(table.itemJSON(r, access)) }
        w.endArray()
        w.field("count", count)
        w.field("total", table.rows.count)
        w.field("limit", page.limit)
        w.field("offset", page.offset)
        w.field("sort", sort.rawValue)
        w.field("order", descending ? "desc" : "asc")
        w.field("success", true)
    }
}
