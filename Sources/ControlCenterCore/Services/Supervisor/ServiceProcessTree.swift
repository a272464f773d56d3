import Foundation
import Glibc

/// Finds every process of a service, from /proc (proc(5)), so a stop can
/// signal the whole tree: the service's session (each service starts in its
/// own, so its pid is the session id), everything below those, and the
/// orphans that reparented to the supervisor (a child subreaper) carrying
/// the service's `CC_SERVICE` marker in their environment, with everything
/// below them. A daemon that double-forks and calls setsid leaves the
/// session but not the marker or the subreaper. In the subreaper mode (no
/// writable cgroup v2) a process that also clears its environment after
/// escaping would be missed; in the cgroup mode `Supervisor.members` adds
/// every pid of the service's cgroup.procs.
public struct ServiceProcessTree {
    /// /proc/PID/stat fields 3, 4, 6, 9, 14, 15, 22 and 24.
    struct Stat: Equatable {
        /// A zombie ('Z') has exited: its parent has not reaped it yet (a
        /// re-adopted service's parent is not the supervisor).
        var zombie = false
        var ppid: Int32
        var session: Int32
        var flags: UInt32 = 0
        var startTicks: UInt64
        /// utime + stime, clock ticks.
        var cpuTicks: UInt64 = 0
        /// Resident pages.
        var rssPages: UInt64 = 0
    }

    /// Fields after the command name, which may itself hold spaces and ')'.
    static func parseStat(_ text: String) -> Stat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let f = text[text.index(after: close)...].split(separator: " ")
        // f[0] is field 3 (state).
        guard f.count > 21, let ppid = Int32(f[1]), let session = Int32(f[3]), let start = UInt64(f[19]) else { return nil }
        return Stat(zombie: f[0] == "Z", ppid: ppid, session: session, flags: UInt32(f[6]) ?? 0, startTicks: start,
                    cpuTicks: (UInt64(f[11]) ?? 0) + (UInt64(f[12]) ?? 0), rssPages: UInt64(f[21]) ?? 0)
    }

    static func stat(_ pid: Int32) -> Stat? {
        (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)).flatMap(parseStat)
    }

    /// The start time of `pid` in clock ticks since boot, or nil when it is gone.
    public static func startTicks(_ pid: Int32) -> UInt64? { stat(pid)?.startTicks }

    static func hasMarker(_ pid: Int32, _ marker: [UInt8]) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return data.split(separator: 0).contains { Array($0) == marker }
    }

    /// The environment entry that marks a service's processes.
    public static func marker(_ name: String) -> String { "\(markerName)=\(name)" }
    static let markerName = "CC_SERVICE"

    /// Every live process of service `name` whose session leader was `sessionID`
    /// (nil when the main process is gone and only orphans remain), with its start ticks.
    public static func members(name: String, sessionID: Int32?, supervisor: Int32 = getpid()) -> [Int32: UInt64] {
        var all: [Int32: Stat] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let s = stat(pid) else { continue }
            all[pid] = s
        }
        let marker = Array(Self.marker(name).utf8)
        var roots = Set<Int32>()
        for (pid, s) in all {
            if let sessionID, s.session == sessionID { roots.insert(pid) }
            if s.ppid == supervisor, pid != supervisor, hasMarker(pid, marker) { roots.insert(pid) }
        }
        var children: [Int32: [Int32]] = [:]
        for (pid, s) in all { children[s.ppid, default: []].append(pid) }
        var found: [Int32: UInt64] = [:]
        var stack = Array(roots)
        while let p = stack.popLast() {
            guard found[p] == nil, let s = all[p] else { continue }
            if !s.zombie { found[p] = s.startTicks }
            stack.append(contentsOf: children[p] ?? [])
        }
        found.removeValue(forKey: supervisor)
        return found
    }

    /// What a service's tree uses now: its session and every descendant
    /// (orphans that left the session are not counted: only the supervisor
    /// can tell them, by being their parent).
    public struct Usage: Equatable, Sendable {
        public var processes: Int
        /// Sum of resident set sizes (/proc/PID/stat rss × page size).
        public var rssBytes: UInt64
        /// CPU time used so far by the live processes, user + system (utime + stime / CLK_TCK).
        public var cpuSeconds: Double
    }

    public static func usage(sessionID: Int32) -> Usage {
        var all: [Int32: Stat] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let s = stat(pid) else { continue }
            all[pid] = s
        }
        var children: [Int32: [Int32]] = [:]
        for (pid, s) in all { children[s.ppid, default: []].append(pid) }
        var seen = Set<Int32>()
        var stack = all.filter { $0.value.session == sessionID }.map(\.key)
        while let p = stack.popLast() {
            guard seen.insert(p).inserted, all[p] != nil else { continue }
            stack.append(contentsOf: children[p] ?? [])
        }
        return sum(seen.compactMap { all[$0] })
    }

    /// The usage of exactly `pids` (a service's `cgroup.procs`: every
    /// process of its tree, orphans included).
    public static func usage(pids: [Int32]) -> Usage { sum(pids.compactMap(stat)) }

    static func sum(_ stats: [Stat]) -> Usage {
        var u = Usage(processes: 0, rssBytes: 0, cpuSeconds: 0)
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE))), hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        for s in stats {
            u.processes += 1
            u.rssBytes += s.rssPages * page
            u.cpuSeconds += Double(s.cpuTicks) / hz
        }
        return u
    }

    /// Sends `signal` to each member still alive with the same start time
    /// (a pid reused meanwhile is left alone). Returns how many were signalled.
    @discardableResult
    public static func signal(_ members: [Int32: UInt64], _ signal: Int32) -> Int {
        var n = 0
        for (pid, ticks) in members where startTicks(pid) == ticks {
            if kill(pid, signal) == 0 { n += 1 }
        }
        return n
    }
}
