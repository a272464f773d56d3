import Glibc

/// One process as read from /proc/<pid>/{stat,status,cmdline}.
struct ProcessSample {
    var pid: Int32 = 0
    var ppid: Int32 = 0
    var name = ""
    var state: UInt8 = UInt8(ascii: "?")
    var uid: UInt32 = 0
    var ticks: UInt64 = 0          // utime + stime
    var sampledAt: UInt64 = 0      // CLOCK_BOOTTIME ns when ticks were read
    var startTicks: UInt64 = 0     // since boot
    var nice: Int = 0
    var threads: Int = 0
    var vsize: UInt64 = 0
    var rssBytes: UInt64 = 0
    var cmdline = ""
}

/// Walks /proc once. Processes that exit mid-scan are skipped, not errors;
/// so are thread ids, which `sample(pid:)` never answers as processes.
final class ProcessScanner {
    let reader = ProcReader()
    static let cmdlineLimit = 4096

    func pids() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        out.reserveCapacity(512)
        while let ent = readdir(dir) {
            var pid: Int32 = 0
            var ok = true
            withUnsafeBytes(of: ent.pointee.d_name) { raw in
                var any = false
                for c in raw {
                    if c == 0 { break }
                    guard c >= 0x30 && c <= 0x39 else { ok = false; return }
                    pid = pid &* 10 &+ Int32(c - 0x30)
                    any = true
                }
                if !any { ok = false }
            }
            if ok { out.append(pid) }
        }
        return out
    }

    func scan(withCmdline: Bool = true) -> [ProcessSample] {
        var out: [ProcessSample] = []
        let all = pids()
        out.reserveCapacity(all.count)
        for pid in all {
            if let s = sample(pid: pid, withCmdline: withCmdline) { out.append(s) }
        }
        return out
    }

    func sample(pid: Int32, withCmdline: Bool = true, cmdlineLimit: Int = ProcessScanner.cmdlineLimit) -> ProcessSample? {
        var p = ProcessSample()
        p.pid = pid
        // Stamped per process: a scan under load can take long enough that
        // one time for the whole scan would skew CPU% by tens of percent.
        p.sampledAt = HostConstants.bootNanos()
        guard let stat = reader.read(pid: pid, "stat", limit: 4096), parseStat(stat, into: &p) else { return nil }
        guard let status = reader.read(pid: pid, "status", limit: 4096) else { return nil }
        var s = FieldScanner(status)
        // /proc/<tid> exists for every thread although readdir(/proc) lists
        // only thread-group leaders: a thread id is not a process.
        guard s.find("\nTgid:"), let tgid = s.uint(), tgid == UInt64(pid) else { return nil }
        // Effective uid, as ps shows it: "Uid:\treal\teffective\t...".
        guard s.find("\nUid:") else { return nil }
        _ = s.uint()
        p.uid = UInt32(truncatingIfNeeded: s.uint() ?? 0)
        // VmRSS, as ps reports it: stat's rss field is a lazily summed
        // per-CPU counter and runs behind by up to hundreds of KB.
        if s.find("\nVmRSS:"), let kb = s.uint() { p.rssBytes = kb * 1024 }
        if withCmdline, let cmd = reader.read(pid: pid, "cmdline", limit: cmdlineLimit) {
            p.cmdline = Self.joinCmdline(cmd)
        }
        return p
    }

    /// "pid (comm) S ppid ..." where comm may itself hold spaces and parens.
    func parseStat(_ b: UnsafeRawBufferPointer, into p: inout ProcessSample) -> Bool {
        var open = -1, close = -1
        for i in 0..<b.count where b[i] == UInt8(ascii: "(") { open = i; break }
        var j = b.count - 1
        while j > 0 { if b[j] == UInt8(ascii: ")") { close = j; break }; j -= 1 }
        guard open >= 0, close > open else { return false }
        p.name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(open + 1)..<close]), as: UTF8.self)
        var s = FieldScanner(b, at: close + 1)
        s.skipSpaces()
        guard !s.atEnd else { return false }
        p.state = b[s.i]
        s.i += 1
        guard let ppid = s.int() else { return false }          // 4
        p.ppid = Int32(truncatingIfNeeded: ppid)
        s.skipFields(9)                                         // 5...13
        guard let ut = s.uint(), let st = s.uint() else { return false } // 14, 15
        p.ticks = ut + st
        s.skipFields(3)                                         // 16...18
        p.nice = Int(s.int() ?? 0)                              // 19
        p.threads = Int(s.int() ?? 0)                           // 20
        s.skipFields(1)                                         // 21
        p.startTicks = s.uint() ?? 0                            // 22
        p.vsize = s.uint() ?? 0                                 // 23
        p.rssBytes = (s.uint() ?? 0) * HostConstants.pageSize   // 24
        return true
    }

    /// NUL-separated argv as one space-separated line.
    static func joinCmdline(_ b: UnsafeRawBufferPointer) -> String {
        var end = b.count
        while end > 0 && b[end - 1] == 0 { end -= 1 }
        guard end > 0 else { return "" }
        var bytes = [UInt8](UnsafeRawBufferPointer(rebasing: b[0..<end]))
        for i in 0..<bytes.count where bytes[i] == 0 { bytes[i] = 0x20 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// psutil's status words, which the old dashboard shows.
func processStatusWord(_ state: UInt8) -> String {
    switch state {
    case UInt8(ascii: "R"): "running"
    case UInt8(ascii: "S"): "sleeping"
    case UInt8(ascii: "D"): "disk-sleep"
    case UInt8(ascii: "T"): "stopped"
    case UInt8(ascii: "t"): "tracing-stop"
    case UInt8(ascii: "Z"): "zombie"
    case UInt8(ascii: "X"), UInt8(ascii: "x"): "dead"
    case UInt8(ascii: "K"): "wake-kill"
    case UInt8(ascii: "W"): "waking"
    case UInt8(ascii: "P"): "parked"
    case UInt8(ascii: "I"): "idle"
    default: "unknown"
    }
}
