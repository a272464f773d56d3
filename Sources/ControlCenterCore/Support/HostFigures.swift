import Glibc

/// Cheap host figures for health checks, read straight from /proc and statvfs.
/// (The full, cached system views live in Snapshots/.)
public enum HostFigures {
    public struct Memory { public var total: UInt64; public var available: UInt64 }
    public struct Disk { public var total: UInt64; public var free: UInt64 }

    /// Busy share of all CPUs since boot-relative sample kept in a small file,
    /// so a single request never sleeps to measure it.
    public static func cpuPercent() -> Double? {
        guard let bytes = AtomicFile.read("/proc/stat", limit: 1 << 20) else { return nil }
        let line = String(decoding: bytes.prefix { $0 != 0x0A }, as: UTF8.self)
        let f = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard f.count >= 4 else { return nil }
        let idle = f[3] + (f.count > 4 ? f[4] : 0)
        let total = f.prefix(8).reduce(0, +)
        let prev = lastCPU
        lastCPU = (total, idle)
        guard let prev, total > prev.total else {
            return total > 0 ? Double(total - idle) * 100 / Double(total) : nil
        }
        return Double((total - prev.total) - (idle - prev.idle)) * 100 / Double(total - prev.total)
    }

    nonisolated(unsafe) private static var lastCPU: (total: UInt64, idle: UInt64)?

    public static func memory() -> Memory? {
        guard let bytes = AtomicFile.read("/proc/meminfo", limit: 1 << 20) else { return nil }
        var total: UInt64?, avail: UInt64?
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("MemTotal:") { total = kb(line) }
            if line.hasPrefix("MemAvailable:") { avail = kb(line) }
            if total != nil && avail != nil { break }
        }
        guard let total, let avail else { return nil }
        return Memory(total: total, available: avail)
    }

    private static func kb<S: StringProtocol>(_ line: S) -> UInt64? {
        line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }.map { $0 * 1024 }
    }

    public static func disk(path: String) -> Disk? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Disk(total: UInt64(s.f_blocks) * UInt64(s.f_frsize), free: UInt64(s.f_bavail) * UInt64(s.f_frsize))
    }
}
