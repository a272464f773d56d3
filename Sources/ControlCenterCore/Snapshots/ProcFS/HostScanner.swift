import Glibc

/// CPU, memory, disk and host identity figures for /stats and /info.
final class HostScanner {
    let reader = ProcReader(capacity: 256 << 10)

    /// Jiffies of one CPU line of /proc/stat; `cpu` is N of `cpuN`, nil for
    /// the aggregate `cpu` line.
    struct CPUTimes: Equatable { var cpu: Int?; var total: UInt64; var idle: UInt64 }

    /// Every `cpu`/`cpuN` line of /proc/stat. The kernel lists only online
    /// CPUs, so a line's position is not its CPU number.
    func cpuTimes() -> [CPUTimes] {
        guard let b = reader.read("/proc/stat") else { return [] }
        return Self.cpuTimes(b)
    }

    static func cpuTimes(_ b: UnsafeRawBufferPointer) -> [CPUTimes] {
        var s = FieldScanner(b)
        var out: [CPUTimes] = []
        while !s.atEnd {
            guard s.i + 3 <= b.count, b[s.i] == 0x63, b[s.i + 1] == 0x70, b[s.i + 2] == 0x75 else { break }
            s.i += 3
            let cpu = s.i < b.count && b[s.i] >= 0x30 && b[s.i] <= 0x39 ? s.uint().map { Int($0) } : nil
            var f: [UInt64] = []
            while f.count < 10, let v = s.uint() { f.append(v) }
            if f.count >= 4 {
                // user nice system idle iowait irq softirq steal; guest is inside user.
                let total = f.prefix(8).reduce(0, +)
                out.append(CPUTimes(cpu: cpu, total: total, idle: f[3] + (f.count > 4 ? f[4] : 0)))
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

    struct Mount: Equatable { var device: String; var mountPoint: String; var fsType: String }

    /// Visible mounts of block-backed file systems (not `nodev` in
    /// /proc/filesystems), plus `/` whatever it is, as the host sees them:
    /// from PID 1's /proc/1/mountinfo, so that a mount namespace we run in
    /// (a sandboxed unit, a container) cannot hide the host's disks; our own
    /// /proc/self/mountinfo only if PID 1's cannot be read (hidepid).
    func realMounts() -> [Mount] {
        var nodev = Set<String>()
        if let fs = reader.string("/proc/filesystems") {
            for line in fs.split(separator: "\n") where line.hasPrefix("nodev") {
                nodev.insert(String(line.split(separator: "\t").last ?? ""))
            }
        }
        guard let text = reader.string("/proc/1/mountinfo") ?? reader.string("/proc/self/mountinfo") else { return [] }
        return Self.visibleMounts(mountinfo: text, nodev: nodev)
    }

    /// Where to statvfs() a mount of PID 1's table: through /proc/1/root,
    /// which the kernel resolves in PID 1's mount namespace, so a mount that
    /// our namespace covers is still measured itself; where that link may not
    /// be followed (not root, or a PID 1 that denies ptrace access), the
    /// mount point in our own namespace, as node_exporter measures it.
    static func measuringPath(_ mountPoint: String, hostRoot: String?) -> String {
        guard let root = hostRoot else { return mountPoint }
        return mountPoint == "/" ? root + "/" : root + mountPoint
    }

    /// "/proc/1/root" when it can be followed, else nil.
    static func hostRootPath() -> String? {
        var st = stat()
        return stat("/proc/1/root/", &st) == 0 ? "/proc/1/root" : nil
    }

    /// The mounts of a mountinfo text (proc(5): "id parent major:minor root
    /// mount-point options ... - type source ...") that a path lookup can
    /// reach. A mount is hidden when another mount sits on the same mount
    /// point with it as parent (an over-mount: the last one mounted wins), and
    /// so is everything mounted beneath a hidden one; statvfs() of the mount
    /// point would otherwise report the top mount's sizes under the hidden
    /// mount's device and type.
    static func visibleMounts(mountinfo text: String, nodev: Set<String>) -> [Mount] {
        struct Entry { var id: Int; var parent: Int; var mount: Mount }
        var entries: [Entry] = []
        for line in text.split(separator: "\n") {
            guard let dash = line.firstRange(of: " - ") else { continue }
            let left = line[..<dash.lowerBound].split(separator: " "), right = line[dash.upperBound...].split(separator: " ")
            guard left.count >= 5, right.count >= 2, let id = Int(left[0]), let parent = Int(left[1]) else { continue }
            entries.append(Entry(id: id, parent: parent, mount: Mount(device: unescape(String(right[1])),
                                                                      mountPoint: unescape(String(left[4])),
                                                                      fsType: String(right[0]))))
        }
        let byID = Dictionary(entries.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let covered = Set(entries.compactMap { e in
            byID[e.parent].flatMap { p in p.mount.mountPoint == e.mount.mountPoint && p.id != e.id ? p.id : nil }
        })
        // Walks up the parents: a mount is hidden when it or a mount it sits
        // beneath is covered; covering a parent does not hide the cover itself.
        func hidden(_ e: Entry) -> Bool {
            if covered.contains(e.id) { return true }
            var c = e
            for _ in 0..<entries.count {
                guard c.parent != c.id, let p = byID[c.parent] else { return false }
                if p.mount.mountPoint != c.mount.mountPoint && covered.contains(p.id) { return true }
                c = p
            }
            return false
        }
        var seen = Set<String>()
        var out: [Mount] = []
        for e in entries.reversed() where !hidden(e) {
            let m = e.mount
            guard m.mountPoint == "/" || !nodev.contains(m.fsType), !seen.contains(m.mountPoint) else { continue }
            seen.insert(m.mountPoint)
            out.append(m)
        }
        return out.reversed()
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
