import Glibc

/// Host figures under node_exporter 1.5's metric names, labels and units,
/// rendered into the stats and network snapshots at refresh (their
/// `.metrics` section), so a /metrics scrape reads no /proc file of its own.
///
/// Sources: /proc/stat (`cpuN` lines in USER_HZ ticks, `ctxt`, `btime`,
/// `processes`, `procs_running`, `procs_blocked`), /proc/loadavg,
/// /proc/meminfo (kB, here already bytes), statvfs(3) of each mount the
/// stats view lists, /sys/class/net/<dev>/statistics, and uname(2).
/// Differences from node_exporter's default filters are in docs/runbook.md.
enum NodeExporterMetrics {
    /// The parts of /proc/stat (proc(5)) node_exporter's cpu and stat
    /// collectors report. `cpus` holds (N of `cpuN`, ticks in proc(5)'s
    /// order: user nice system idle iowait irq softirq steal).
    struct ProcStat: Equatable {
        var cpus: [(cpu: Int, ticks: [UInt64])] = []
        var contextSwitches: UInt64 = 0
        var bootTime: UInt64 = 0
        var forks: UInt64 = 0
        var running: UInt64 = 0
        var blocked: UInt64 = 0

        static func == (a: ProcStat, b: ProcStat) -> Bool {
            a.cpus.map(\.cpu) == b.cpus.map(\.cpu) && a.cpus.map(\.ticks) == b.cpus.map(\.ticks)
                && a.contextSwitches == b.contextSwitches && a.bootTime == b.bootTime && a.forks == b.forks
                && a.running == b.running && a.blocked == b.blocked
        }
    }

    static func parseProcStat(_ text: String) -> ProcStat {
        var s = ProcStat()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard let key = f.first, f.count >= 2 else { continue }
            switch key {
            case "ctxt": s.contextSwitches = UInt64(f[1]) ?? 0
            case "btime": s.bootTime = UInt64(f[1]) ?? 0
            case "processes": s.forks = UInt64(f[1]) ?? 0
            case "procs_running": s.running = UInt64(f[1]) ?? 0
            case "procs_blocked": s.blocked = UInt64(f[1]) ?? 0
            default:
                guard key.hasPrefix("cpu"), let n = Int(key.dropFirst(3)) else { continue }
                var ticks = f.dropFirst().prefix(8).map { UInt64($0) ?? 0 }
                while ticks.count < 8 { ticks.append(0) }
                s.cpus.append((n, ticks))
            }
        }
        return s
    }

    /// node_exporter's label order, alphabetical; index into ProcStat ticks.
    static let modes: [(name: String, index: Int)] = [("idle", 3), ("iowait", 4), ("irq", 5), ("nice", 1),
                                                       ("softirq", 6), ("steal", 7), ("system", 2), ("user", 0)]
    static let memory = ["Buffers", "Cached", "MemAvailable", "MemFree", "MemTotal", "SwapFree", "SwapTotal"]

    /// The stats snapshot's families. `userHZ` is sysconf(_SC_CLK_TCK).
    static func writeHost(_ t: inout PrometheusText, stat: ProcStat, userHZ: Double, load: [Double],
                          meminfo: [String: UInt64], disks: [(HostScanner.Mount, HostScanner.DiskUsage)],
                          uname: [(String, String)]) {
        t.family("node_boot_time_seconds", "gauge", "Node boot time, in unixtime.")
        t.sample("node_boot_time_seconds", Double(stat.bootTime))
        t.family("node_context_switches_total", "counter", "Total number of context switches.")
        t.sample("node_context_switches_total", Double(stat.contextSwitches))
        t.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.")
        for c in stat.cpus.sorted(by: { $0.cpu < $1.cpu }) {
            for m in modes { t.sample("node_cpu_seconds_total", ["cpu": String(c.cpu), "mode": m.name], Double(c.ticks[m.index]) / userHZ) }
        }
        let fs: [(String, String, (HostScanner.DiskUsage) -> UInt64)] = [
            ("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.", { $0.free }),
            ("node_filesystem_files", "Filesystem total file nodes.", { $0.inodes }),
            ("node_filesystem_files_free", "Filesystem total free file nodes.", { $0.inodesFree }),
            ("node_filesystem_free_bytes", "Filesystem free space in bytes.", { $0.total - min($0.used, $0.total) }),
            ("node_filesystem_size_bytes", "Filesystem size in bytes.", { $0.total }),
        ]
        for (name, help, value) in fs {
            t.family(name, "gauge", help)
            for (m, d) in disks {
                t.sample(name, ["device": m.device, "fstype": m.fsType, "mountpoint": m.mountPoint], Double(value(d)))
            }
        }
        t.family("node_forks_total", "counter", "Total number of forks.")
        t.sample("node_forks_total", Double(stat.forks))
        for (i, name) in ["node_load1", "node_load5", "node_load15"].enumerated() where i < load.count {
            t.family(name, "gauge", "\(["1m", "5m", "15m"][i]) load average.")
            t.sample(name, load[i])
        }
        for key in memory {
            guard let v = meminfo[key] else { continue }
            let name = "node_memory_\(key)_bytes"
            t.family(name, "gauge", "Memory information field \(key)_bytes.")
            t.sample(name, Double(v))
        }
        t.family("node_procs_blocked", "gauge", "Number of processes blocked waiting for I/O to complete.")
        t.sample("node_procs_blocked", Double(stat.blocked))
        t.family("node_procs_running", "gauge", "Number of processes in runnable state.")
        t.sample("node_procs_running", Double(stat.running))
        if !uname.isEmpty {
            t.family("node_uname_info", "gauge", "Labeled system information as provided by the uname system call.")
            t.sample("node_uname_info", labels: uname, 1)
        }
    }

    /// The network snapshot's families: /sys/class/net statistics files,
    /// which are the kernel's rtnl_link_stats64 that node_exporter reads over netlink.
    static func writeNetwork(_ t: inout PrometheusText, _ ifs: [InterfaceSample]) {
        let counters: [(String, String, String)] = [
            ("receive_bytes", "rx_bytes", "bytes"), ("receive_drop", "rx_dropped", "drop"),
            ("receive_errs", "rx_errors", "errs"), ("receive_packets", "rx_packets", "packets"),
            ("transmit_bytes", "tx_bytes", "bytes"), ("transmit_drop", "tx_dropped", "drop"),
            ("transmit_errs", "tx_errors", "errs"), ("transmit_packets", "tx_packets", "packets"),
        ]
        for (name, file, _) in counters {
            let metric = "node_network_\(name)_total"
            t.family(metric, "counter", "Network device statistic \(name).")
            for i in ifs.sorted(by: { $0.name < $1.name }) {
                guard let v = i.counters[file] else { continue }
                t.sample(metric, ["device": i.name], Double(v))
            }
        }
    }

    /// uname(2) as node_uname_info's labels, in its (alphabetical) order.
    static func uname() -> [(String, String)] {
        var u = utsname()
        guard Glibc.uname(&u) == 0 else { return [] }
        func s<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        return [("domainname", s(u.__domainname)), ("machine", s(u.machine)), ("nodename", s(u.nodename)),
                ("release", s(u.release)), ("sysname", s(u.sysname)), ("version", s(u.version))]
    }
}
