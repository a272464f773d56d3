import Glibc

/// `/api/system/processes/{pid}`, read live: the list's fields plus what is
/// too costly to gather for every process. The environment is never read;
/// command line, exe, cwd, fd count, io counters and cgroup only for a viewer.
enum ProcessDetail {
    /// False when `pid` is no process (gone, never was, or a thread id).
    static func write(_ w: inout JSONWriter, pid: Int32, access: ReadAccess, scanner: ProcessScanner, users: UserNames,
                      snapshot: ProcessTable?) -> Bool {
        guard let p = scanner.sample(pid: pid, withCmdline: access == .viewer, cmdlineLimit: 256 << 10) else { return false }
        users.refresh()
        let r = scanner.reader
        let memTotal = HostConstants.memTotal(r) ?? 0
        let boot = HostConstants.bootTime(r) ?? 0
        // The snapshot's figure, if it is about this very process.
        var cpu: Double?
        if let t = snapshot, let i = t.byPid[pid], t.rows[i].startTicks == p.startTicks, !t.rows[i].cpu.isNaN {
            cpu = t.rows[i].cpu
        }
        w.beginObject()
        w.field("pid", Int(p.pid))
        w.field("ppid", Int(p.ppid))
        w.field("name", p.name)
        w.field("user", users.name(p.uid))
        w.field("uid", Int(p.uid))
        w.field("status", processStatusWord(p.state))
        w.field("state", String(UnicodeScalar(p.state)))
        w.field("cpu_percent", cpu, places: 1)
        w.field("memory_percent", memTotal > 0 ? Double(p.rssBytes) * 100 / Double(memTotal) : 0, places: 2)
        w.field("rss_bytes", p.rssBytes)
        w.field("vms_bytes", p.vsize)
        w.field("threads", p.threads)
        w.field("nice", p.nice)
        w.field("start_time", boot + Double(p.startTicks) / HostConstants.clockTicks, places: 2)
        w.beginArray("children")
        for c in children(pid, scanner: scanner, snapshot: snapshot) { w.int(Int(c)) }
        w.endArray()
        if access == .viewer {
            // A worker that dropped root (CC_USER) may not read these for
            // another user's process: each such field is null, and
            // `unreadable` says why, so a client never takes it for "none".
            var unreadable: [String] = []
            func denied() -> Bool { errno == EACCES || errno == EPERM }
            w.field("cmdline", p.cmdline)
            let exe = r.readlink("/proc/\(pid)/exe")
            if exe == nil, denied() { unreadable.append("exe") }
            w.field("exe", exe)
            let cwd = r.readlink("/proc/\(pid)/cwd")
            if cwd == nil, denied() { unreadable.append("cwd") }
            w.field("cwd", cwd)
            let fds = fdCount(pid)
            if fds == nil, denied() { unreadable.append("fd_count") }
            w.field("fd_count", fds)
            if !writeIO(&w, pid: pid, reader: r), denied() { unreadable.append("io") }
            w.field("cgroup", r.string("/proc/\(pid)/cgroup").map { trimmedLines($0) })
            w.beginObject("unreadable")
            for field in unreadable { w.field(field, "permission") }
            w.endObject()
        }
        w.endObject()
        return true
    }

    /// nil where permission is denied (another user's process, say).
    static func fdCount(_ pid: Int32) -> Int? {
        guard let dir = opendir("/proc/\(pid)/fd") else { return nil }
        defer { closedir(dir) }
        var n = 0
        while let e = readdir(dir) { if e.pointee.d_name.0 != 0x2E { n += 1 } }
        return n
    }

    /// False when /proc/<pid>/io could not be read (`io` is then null).
    @discardableResult
    static func writeIO(_ w: inout JSONWriter, pid: Int32, reader: ProcReader) -> Bool {
        guard let text = reader.string("/proc/\(pid)/io") else {
            let saved = errno
            w.nullField("io")
            errno = saved
            return false
        }
        w.beginObject("io")
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":")
            guard parts.count == 2, let v = UInt64(trimmed(parts[1])) else { continue }
            w.field(String(parts[0]), v)
        }
        w.endObject()
        return true
    }

    /// From the kernel's per-thread children lists when present, else from
    /// the processes snapshot.
    static func children(_ pid: Int32, scanner: ProcessScanner, snapshot: ProcessTable?) -> [Int32] {
        var out = Set<Int32>()
        var found = false
        if let dir = opendir("/proc/\(pid)/task") {
            while let e = readdir(dir) {
                let tid = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard !tid.hasPrefix("."), let text = scanner.reader.string("/proc/\(pid)/task/\(tid)/children") else { continue }
                found = true
                for c in text.split(separator: " ") { if let v = Int32(trimmed(c)) { out.insert(v) } }
            }
            closedir(dir)
        }
        if !found, let snapshot {
            for r in snapshot.rows where r.ppid == pid { out.insert(r.pid) }
        }
        return out.sorted()
    }

    static func trimmedLines(_ s: String) -> String {
        var t = Substring(s)
        while t.last == "\n" { t.removeLast() }
        return String(t)
    }
}
