import Glibc

/// CPU, memory, disk and host identity figures for /stats and /info.
final class HostScanner {
    let reader = ProcReader(capacity: 256 << 10)

    struct CPUTimes { var total: UInt64; var idle: UInt64 }

    /// The aggregate line first, then one per CPU.
    func cpuTimes() -> [CPUTimes] {
        guard let b = reader.read("/proc/stat") else { return [] }
        var s = FieldScanner(b)
        var out: [CPUTimes] = []
        while !s.atEnd {
            guard s.i + 3 <= b.count, b[s.i] == 0x63, b[s.i + 1] == 0x70, b[s.i + 2] == 0x75 else { break }
            s.skipField()
            var f: [UInt64] = []
            while f.count < 10, let v = s.uint() { f.append(v) }
            if f.count >= 4 {
                // user nice system idle iowait irq softirq steal; guest is inside user.
                let total = f.prefix(8).reduce(0, +)
                out.append(CPUTimes(total: total, idle: f[3] + (f.count > 4 ? f[4] : 0)))
            }
            s.nextLine()
        }
        return out
    }

    func meminfo() -> [String: UInt64] {
        guard let text = reader.string("/proc/meminfo") else { return [:] }
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let rest = line[line.index(after: colon)...].split(separator: " ")
            guard let v = rest.first.flatMap({ UInt64($0) }) else { continue }
            out[String(line[..<colon])] = rest.count > 1 ? v * 1024 : v
        }
        return out
    }

    func loadAverage() -> [Double] {
        guard let l = reader.line("/proc/loadavg") else { return [] }
        return l.split(separator: " ").prefix(3).compactMap { Double($0) }
    }

    func uptime() -> Double? {
        reader.line("/proc/uptime")?.split(separator: " ").first.flatMap { Double($0) }
    }

    struct CPUInfo { var logical = 0; var physical = 0; var model = ""; var mhz: [Double] = [] }

    func cpuInfo() -> CPUInfo {
        var info = CPUInfo()
        guard let text = reader.string("/proc/cpuinfo") else { return info }
        var cores = Set<String>()
        var phys = ""
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let k = trimmed(line[..<colon])
            let v = trimmed(line[line.index(after: colon)...])
            switch k {
            case "processor": info.logical += 1
            case "model name": if info.model.isEmpty { info.model = v }
            case "physical id": phys = v
            case "core id": cores.insert(phys + "/" + v)
            case "cpu MHz": if let d = Double(v) { info.mhz.append(d) }
            default: break
            }
        }
        info.physical = cores.isEmpty ? info.logical : cores.count
        if info.logical == 0 { info.logical = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
        return info
    }

    /// MHz from cpufreq when the kernel exposes it, else /proc/cpuinfo.
    func frequency(fallback: [Double]) -> (current: Double?, min: Double?, max: Double?) {
        let base = "/sys/devices/system/cpu/cpu0/cpufreq/"
        let cur = reader.uint(base + "scaling_cur_freq").map { Double($0) / 1000 }
        let lo = reader.uint(base + "cpuinfo_min_freq").map { Double($0) / 1000 }
        let hi = reader.uint(base + "cpuinfo_max_freq").map { Double($0) / 1000 }
        let avg = fallback.isEmpty ? nil : fallback.reduce(0, +) / Double(fallback.count)
        return (cur ?? avg, lo, hi)
    }

    struct Mount { var device: String; var mountPoint: String; var fsType: String }

    /// Mounts of block-backed file systems (not `nodev` in /proc/filesystems),
    /// plus `/` whatever it is; one entry per mount point.
    func realMounts() -> [Mount] {
        var nodev = Set<String>()
        if let fs = reader.string("/proc/filesystems") {
            for line in fs.split(separator: "\n") where line.hasPrefix("nodev") {
                nodev.insert(String(line.split(separator: "\t").last ?? ""))
            }
        }
        guard let text = reader.string("/proc/self/mountinfo") else { return [] }
        var seen = Set<String>()
        var out: [Mount] = []
        for line in text.split(separator: "\n") {
            guard let dash = line.firstRange(of: " - ") else { continue }
            let left = line[..<dash.lowerBound].split(separator: " "), right = line[dash.upperBound...].split(separator: " ")
            guard left.count >= 5, right.count >= 2 else { continue }
            let mp = Self.unescape(String(left[4])), type = String(right[0]), dev = Self.unescape(String(right[1]))
            guard mp == "/" || !nodev.contains(type), !seen.contains(mp) else { continue }
            seen.insert(mp)
            out.append(Mount(device: dev, mountPoint: mp, fsType: type))
        }
        return out
    }

    /// mountinfo writes space, tab, newline and backslash as \ooo.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 0x5C, i + 3 < b.count,
               let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    struct DiskUsage { var total: UInt64; var used: UInt64; var free: UInt64; var inodes: UInt64; var inodesFree: UInt64 }

    /// As df computes it: used = blocks - bfree, free = bavail (what a user
    /// may still write), percent = used / (used + free).
    static func diskUsage(_ path: String) -> DiskUsage? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        let f = UInt64(s.f_frsize)
        return DiskUsage(total: UInt64(s.f_blocks) * f, used: (UInt64(s.f_blocks) - UInt64(s.f_bfree)) * f,
                         free: UInt64(s.f_bavail) * f, inodes: UInt64(s.f_files), inodesFree: UInt64(s.f_ffree))
    }
}

func trimmed<S: StringProtocol>(_ s: S) -> String {
    var sub = Substring(s)
    while let f = sub.first, f == " " || f == "\t" { sub.removeFirst() }
    while let l = sub.last, l == " " || l == "\t" { sub.removeLast() }
    return String(sub)
}
