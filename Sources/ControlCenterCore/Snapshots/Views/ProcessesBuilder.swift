import Glibc

/// Scans /proc and publishes the processes snapshot: item JSON in two forms
/// (anonymous, and a viewer's with the command line), the index rows, and
/// the default view (top 50 by CPU) as a ready body in each form; `.body`,
/// the one nginx may send itself, is the anonymous form.
final class ProcessesBuilder: SnapshotBuilder {
    let scanner = ProcessScanner()
    let users = UserNames()

    func build(_ input: BuildInput) throws -> BuiltSnapshot {
        users.refresh()
        let memTotal = HostConstants.memTotal(scanner.reader) ?? 0
        let boot = HostConstants.bootTime(scanner.reader) ?? 0
        let samples = scanner.scan()
        guard !samples.isEmpty else { throw SnapshotError("no processes readable under /proc") }
        let cpu = cpuPercents(samples, input)

        var items = [UInt8]()
        items.reserveCapacity(samples.count * 320)
        var index = ByteWriter(capacity: samples.count * 80)
        var rows: [ProcessRow] = []
        rows.reserveCapacity(samples.count)
        for (i, p) in samples.enumerated() {
            let start = items.count
            let user = users.name(p.uid)
            let memPct = memTotal > 0 ? Double(p.rssBytes) * 100 / Double(memTotal) : 0
            var item = JSONWriter(capacity: 384)
            Self.writeItem(&item, p, user: user, cpu: cpu[i], memPct: memPct,
                           startTime: boot + Double(p.startTicks) / HostConstants.clockTicks)
            // The anonymous form is the viewer's without its last field.
            let anonymous = start..<(start + item.bytes.count + 1)
            items.append(contentsOf: item.bytes)
            items.append(UInt8(ascii: "}"))
            let viewerStart = items.count
            item.field("cmdline", p.cmdline)
            item.endObject()
            items.append(contentsOf: item.bytes)
            let row = ProcessRow(pid: p.pid, ppid: p.ppid, uid: p.uid, state: p.state, cpu: cpu[i] ?? .nan,
                                 memory: memPct, rss: p.rssBytes, startTicks: p.startTicks, ticks: p.ticks, sampledAt: p.sampledAt,
                                 name: p.name, user: user, item: anonymous, viewerItem: viewerStart..<items.count)
            row.encode(&index)
            rows.append(row)
        }
        let itemBytes = items[...]
        let table = ProcessTable(rows: rows, items: itemBytes)
        func body(_ access: ReadAccess) -> [UInt8] {
            var w = JSONWriter(capacity: 64 << 10)
            ProcessQuery.default.writeBody(&w, table: table, access: access)
            SnapshotTail.close(&w, takenAtMillis: input.takenAtMillis)
            return w.bytes
        }
        return BuiltSnapshot(itemCount: rows.count, sections: [(.items, items), (.index, index.bytes),
                                                               (.body, body(.anonymous)), (.viewerBody, body(.viewer))])
    }

    /// CPU share since the previous snapshot, 100 = one core. A process the
    /// previous snapshot did not know started since then, so its whole life
    /// is the interval. With no previous snapshot there is no interval: nil.
    func cpuPercents(_ samples: [ProcessSample], _ input: BuildInput) -> [Double?] {
        guard let prev = input.previous, let table = try? ProcessTable.decode(prev) else {
            return Array(repeating: nil, count: samples.count)
        }
        let hz = HostConstants.clockTicks
        let prevBootSeconds = Double(prev.takenAtMonoNanos) / 1e9
        return samples.map { p in
            if let i = table.byPid[p.pid], table.rows[i].startTicks == p.startTicks {
                let before = table.rows[i]
                guard p.ticks >= before.ticks, p.sampledAt > before.sampledAt else { return nil }
                return Double(p.ticks - before.ticks) / hz / (Double(p.sampledAt - before.sampledAt) / 1e9) * 100
            }
            let started = Double(p.startTicks) / hz
            guard started >= prevBootSeconds else { return nil }  // missed by the previous scan
            let life = Double(p.sampledAt) / 1e9 - started
            return life > 0.01 ? min(Double(p.ticks) / hz / life * 100, 100 * Double(max(p.threads, 1))) : nil
        }
    }

    /// The anonymous fields, object left open (the viewer form adds `cmdline`).
    static func writeItem(_ w: inout JSONWriter, _ p: ProcessSample, user: String, cpu: Double?, memPct: Double,
                          startTime: Double) {
        w.beginObject()
        w.field("pid", Int(p.pid))
        w.field("ppid", Int(p.ppid))
        w.field("name", p.name)
        w.field("user", user)
        w.field("uid", Int(p.uid))
        w.field("status", processStatusWord(p.state))
        w.field("state", String(UnicodeScalar(p.state)))
        w.field("cpu_percent", cpu, places: 1)
        w.field("memory_percent", memPct, places: 2)
        w.field("rss_bytes", p.rssBytes)
        w.field("vms_bytes", p.vsize)
        w.field("threads", p.threads)
        w.field("nice", p.nice)
        w.field("start_time", startTime, places: 2)
    }
}
