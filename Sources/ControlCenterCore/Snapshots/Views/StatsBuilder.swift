import Glibc

/// `/api/system/stats` as one pre-rendered body. CPU usage is the /proc/stat
/// delta since the previous snapshot (kept in its samples section), per CPU
/// number (CPUUsage); the first snapshot reports the average since boot, and
/// no request ever sleeps.
final class StatsBuilder: SnapshotBuilder {
    let host = HostScanner()

    func build(_ input: BuildInput) throws -> BuiltSnapshot {
        // One read of /proc/stat serves the usage figures and /metrics.
        guard let statText = host.reader.string("/proc/stat") else { throw SnapshotError("cannot read /proc/stat") }
        let times = Array(statText.utf8).withUnsafeBytes { HostScanner.cpuTimes($0) }
        guard !times.isEmpty else { throw SnapshotError("cannot read /proc/stat") }
        let usage = CPUUsage.compute(now: times, before: input.previous.map(previousTimes),
                                     slots: max(1, sysconf(Int32(_SC_NPROCESSORS_CONF))))
        var samples = ByteWriter()
        for t in times { if let n = t.cpu { samples.u32(UInt32(n)); samples.u64(t.total); samples.u64(t.idle) } }

        let info = host.cpuInfo()
        let freq = host.frequency(fallback: info.mhz)
        let mem = host.meminfo()
        let uptime = host.uptime()
        let load = host.loadAverage()
        // Measured through the host's root (/proc/1/root) where it can be
        // followed, so a mount namespace cannot hide the host's disks.
        let hostRoot = HostScanner.hostRootPath()
        let disks = host.realMounts().compactMap { m in
            HostScanner.diskUsage(HostScanner.measuringPath(m.mountPoint, hostRoot: hostRoot)).map { (m, $0) }
        }
        var w = JSONWriter(capacity: 4096)
        w.beginObject()
        w.beginObject("cpu")
        w.field("usage_percent", usage.total, places: 1)
        w.field("usage", usage.total, places: 1)
        // Indexed by CPU number; null for an offline CPU or one without a
        // previous reading (`cores` says which).
        w.beginArray("per_core")
        for c in usage.cores { w.double(c.percent, places: 1) }
        w.endArray()
        w.beginArray("cores")
        for c in usage.cores {
            w.beginObject()
            w.field("cpu", c.cpu)
            w.field("online", c.basis != .offline)
            w.field("usage_percent", c.percent, places: 1)
            w.field("since_previous_sample", c.basis.rawValue)
            w.endObject()
        }
        w.endArray()
        w.field("count", usage.cores.filter { $0.basis != .offline }.count)
        w.field("count_physical", info.physical)
        w.beginObject("frequency")
        w.field("current", freq.current, places: 1)
        w.field("min", freq.min, places: 1)
        w.field("max", freq.max, places: 1)
        w.endObject()
        w.beginArray("load_avg")
        for l in load { w.double(l) }
        w.endArray()
        w.field("since_previous_sample", usage.totalBasis.rawValue)
        w.endObject()
        writeMemory(&w, mem)
        writeDisks(&w, disks, hostRoot: hostRoot)
        w.field("uptime_seconds", uptime, places: 0)
        w.field("timestamp", Clock.iso8601(Double(input.takenAtMillis) / 1000))
        w.field("success", true)
        SnapshotTail.close(&w, takenAtMillis: input.takenAtMillis)
        var metrics = PrometheusText(capacity: 8192)
        NodeExporterMetrics.writeHost(&metrics, stat: NodeExporterMetrics.parseProcStat(statText),
                                      userHZ: Double(sysconf(Int32(_SC_CLK_TCK))), load: load, meminfo: mem,
                                      disks: disks, uname: NodeExporterMetrics.uname())
        return BuiltSnapshot(itemCount: 1, sections: [(.body, w.bytes), (.samples, samples.bytes), (.metrics, metrics.bytes)])
    }

    private func previousTimes(_ f: SnapshotFile) -> [HostScanner.CPUTimes] {
        var r = ByteReader(f.section(.samples))
        var out: [HostScanner.CPUTimes] = []
        while !r.atEnd, let n = r.u32(), let t = r.u64(), let i = r.u64() { out.append(.init(cpu: Int(n), total: t, idle: i)) }
        return out
    }

    static let gib = 1024.0 * 1024 * 1024

    /// `used` is total - available, as procps 4 `free` and psutil's percent.
    private func writeMemory(_ w: inout JSONWriter, _ m: [String: UInt64]) {
        let total = m["MemTotal"] ?? 0
        let free = m["MemFree"] ?? 0
        let available = m["MemAvailable"] ?? free
        let used = total > available ? total - available : 0
        let cached = (m["Cached"] ?? 0) + (m["SReclaimable"] ?? 0)
        w.beginObject("memory")
        w.field("total", total)
        w.field("available", available)
        w.field("used", used)
        w.field("free", free)
        w.field("percent", total > 0 ? Double(used) * 100 / Double(total) : 0, places: 1)
        w.field("cached", cached)
        w.field("buffers", m["Buffers"] ?? 0)
        w.field("shared", m["Shmem"] ?? 0)
        w.field("total_gb", Double(total) / Self.gib)
        w.field("used_gb", Double(used) / Self.gib)
        w.field("available_gb", Double(available) / Self.gib)
        let st = m["SwapTotal"] ?? 0, sf = m["SwapFree"] ?? 0
        w.beginObject("swap")
        w.field("total", st)
        w.field("used", st - min(sf, st))
        w.field("free", sf)
        w.field("percent", st > 0 ? Double(st - min(sf, st)) * 100 / Double(st) : 0, places: 1)
        w.endObject()
        w.endObject()
    }

    private func writeDisks(_ w: inout JSONWriter, _ disks: [(HostScanner.Mount, HostScanner.DiskUsage)],
                            hostRoot: String?) {
        func sizes(_ w: inout JSONWriter, _ d: HostScanner.DiskUsage) {
            w.field("total", d.total)
            w.field("used", d.used)
            w.field("free", d.free)
            w.field("percent", d.used + d.free > 0 ? Double(d.used) * 100 / Double(d.used + d.free) : 0, places: 1)
            w.field("total_gb", Double(d.total) / Self.gib)
            w.field("used_gb", Double(d.used) / Self.gib)
            w.field("free_gb", Double(d.free) / Self.gib)
        }
        if let root = HostScanner.diskUsage(HostScanner.measuringPath("/", hostRoot: hostRoot)) {
            w.beginObject("disk")
            w.field("mount", "/")
            sizes(&w, root)
            w.endObject()
        } else {
            w.nullField("disk")
        }
        w.beginArray("disks")
        for (m, d) in disks {
            w.beginObject()
            w.field("mount", m.mountPoint)
            w.field("device", m.device)
            w.field("fs_type", m.fsType)
            sizes(&w, d)
            w.beginObject("inodes")
            w.field("total", d.inodes)
            w.field("used", d.inodes - min(d.inodesFree, d.inodes))
            w.field("free", d.inodesFree)
            w.endObject()
            w.endObject()
        }
        w.endArray()
    }
}
