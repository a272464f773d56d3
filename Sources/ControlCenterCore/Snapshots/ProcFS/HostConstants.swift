import Glibc

/// Facts about the host a scan needs and that do not change while it runs.
enum HostConstants {
    static let clockTicks: Double = { let t = sysconf(Int32(_SC_CLK_TCK)); return t > 0 ? Double(t) : 100 }()
    static let pageSize: UInt64 = { let p = sysconf(Int32(_SC_PAGESIZE)); return p > 0 ? UInt64(p) : 4096 }()

    /// Boot time as Unix seconds: /proc/stat `btime`.
    static func bootTime(_ reader: ProcReader) -> Double? {
        guard let b = reader.read("/proc/stat") else { return nil }
        var s = FieldScanner(b)
        guard s.find("\nbtime ") else { return nil }
        return s.uint().map { Double($0) }
    }

    static func memTotal(_ reader: ProcReader) -> UInt64? {
        guard let b = reader.read("/proc/meminfo", limit: 4096) else { return nil }
        var s = FieldScanner(b)
        guard s.find("MemTotal:") else { return nil }
        return s.uint().map { $0 * 1024 }
    }

    /// CLOCK_BOOTTIME: the clock /proc process start times count on, so a
    /// process's age and a snapshot's time can be compared.
    static func bootNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
