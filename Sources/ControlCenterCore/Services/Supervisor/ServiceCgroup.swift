import Crypto
import Foundation
import Glibc

/// How the supervisor finds every process of a service
/// (`"tracking"` in a service's status).
public enum ServiceTracking: String, Sendable, Equatable {
    /// Each service has a cgroup v2 of its own: its members are its
    /// `cgroup.procs`, whatever they do to their session or environment.
    case cgroup
    /// The session, the descendants and the marked orphans that come back
    /// to the supervisor, a child subreaper (`ServiceProcessTree`).
    case subreaper
}

/// The cgroups v2 of the services, `<base>/<service name>`, where `<base>`
/// is a directory `control-center-<12 hex digits of SHA-256 of the state
/// directory>` created below the supervisor's own cgroup (so two Control
/// Centers on one host never share one, and under systemd's `Delegate=yes`
/// it lies inside the unit's delegated subtree). The hex suffix keeps the
/// name free of the state directory's slashes; service names are validated
/// (`^[a-z0-9][a-z0-9_-]{0,62}$`), so `<base>/<name>` is one level down.
///
/// The system calls are the file operations of cgroup-v2.rst: mkdir and
/// rmdir of a directory, `cgroup.procs` (read: the members; written by the
/// service's child before exec: `cc_spawn_service`), `cgroup.kill` (kernel
/// 5.14) and `memory.max`.
public struct ServiceCgroup: Sendable {
    public let base: String

    /// The cgroup2 mount point in /proc/self/mountinfo (proc(5): field 4 is
    /// the root of the mount within the hierarchy, field 5 the mount point;
    /// the filesystem type follows the " - " separator), or nil when none is
    /// mounted. Only a mount of the whole hierarchy (root `/`, as this cgroup
    /// namespace sees it) is used, so that the mount point plus a path from
    /// /proc/self/cgroup is that cgroup's directory. Octal escapes (`\040`)
    /// are not decoded: a mount point with a space is not used.
    static func mountPoint(mountinfo: String) -> String? {
        for line in mountinfo.split(separator: "\n") {
            guard let sep = line.range(of: " - ") else { continue }
            let before = line[..<sep.lowerBound].split(separator: " "), after = line[sep.upperBound...].split(separator: " ")
            if after.first == "cgroup2", before.count >= 5, before[3] == "/", !before[4].contains("\\") { return String(before[4]) }
        }
        return nil
    }

    /// The caller's cgroup v2 path from /proc/self/cgroup (cgroups(7): the
    /// `0::PATH` line), or nil without one.
    static func ownPath(procCgroup: String) -> String? {
        for line in procCgroup.split(separator: "\n") where line.hasPrefix("0::") {
            let path = String(line.dropFirst(3))
            // "(deleted)" or a path outside our namespace ("/../x") cannot be written under.
            return path.hasPrefix("/") && !path.contains("/..") && !path.hasSuffix(" (deleted)") ? path : nil
        }
        return nil
    }

    /// `control-center-<12 hex digits of SHA-256 of stateDir>`.
    static func baseName(stateDir: String) -> String {
        "control-center-" + SHA256.hash(data: Data(stateDir.utf8)).map { String(format: "%02x", $0) }.joined().prefix(12)
    }

    /// `<mount><own path>/<baseName>`.
    static func basePath(mount: String, own: String, stateDir: String) -> String {
        (own == "/" ? mount : mount + own) + "/" + baseName(stateDir: stateDir)
    }

    /// How a running service is tracked, judged from its main process's
    /// /proc/PID/cgroup: `.cgroup` when its cgroup v2 is the service's own
    /// (`…/<baseName>/<name>`), with that cgroup's path below the mount.
    static func tracking(procCgroup: String, name: String, stateDir: String) -> (ServiceTracking, String?) {
        guard let path = ownPath(procCgroup: procCgroup), path.hasSuffix("/" + baseName(stateDir: stateDir) + "/" + name) else {
            return (.subreaper, nil)
        }
        return (.cgroup, path)
    }

    /// What a request worker shows of a running service (its pid already
    /// checked against reuse): the tracking mode and, in the cgroup mode,
    /// the pids of its cgroup. Reads /proc/PID/cgroup, /proc/self/mountinfo
    /// and `cgroup.procs`, all readable by any user.
    public static func members(ofService name: String, pid: Int32, stateDir: String) -> (ServiceTracking, [Int32]?) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return (.subreaper, nil) }
        let (mode, path) = tracking(procCgroup: text, name: name, stateDir: stateDir)
        guard mode == .cgroup, let path,
              let mount = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)).flatMap(mountPoint),
              let procs = try? String(contentsOfFile: mount + path + "/cgroup.procs", encoding: .utf8) else { return (mode, nil) }
        return (mode, procs.split(separator: "\n").compactMap { Int32($0) })
    }

    /// The mode, decided from what was found: cgroup v2 only when it is not
    /// turned off (`CC_SERVICES_TRACKING=subreaper`), a cgroup2 is mounted,
    /// the supervisor's own cgroup is known, and the base directory could be
    /// created (or exists) and its `cgroup.procs` is writable.
    public static func decide(setting: Config.ServicesTracking, mount: String?, own: String?, baseWritable: Bool) -> ServiceTracking {
        guard setting == .auto, mount != nil, own != nil, baseWritable else { return .subreaper }
        return .cgroup
    }

    /// Looks for a writable cgroup v2 (`decide`): the cgroup when there is
    /// one, with the reason for the subreaper mode otherwise.
    public static func open(setting: Config.ServicesTracking, stateDir: String) -> (ServiceCgroup?, String) {
        let mount = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)).flatMap(mountPoint)
        let own = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)).flatMap(ownPath)
        var base: String?
        if setting == .auto, let mount, let own {
            let b = basePath(mount: mount, own: own, stateDir: stateDir)
            if mkdir(b, 0o755) == 0 || errno == EEXIST, access(b + "/cgroup.procs", W_OK) == 0 { base = b }
        }
        let mode = decide(setting: setting, mount: mount, own: own, baseWritable: base != nil)
        guard mode == .cgroup, let base else {
            let why = setting == .subreaper ? "CC_SERVICES_TRACKING=subreaper"
                : mount == nil ? "no cgroup2 mount in /proc/self/mountinfo"
                : own == nil ? "no cgroup v2 path in /proc/self/cgroup"
                : "cannot create a writable cgroup below \(mount! + (own == "/" ? "" : own!))"
            return (nil, why)
        }
        // Lets the services' cgroups have a memory.max where the parent hands
        // the memory controller down (the base holds no process, so this is allowed).
        if controllers(base).contains("memory") { write(base + "/cgroup.subtree_control", "+memory") }
        return (ServiceCgroup(base: base), base)
    }

    public func path(_ name: String) -> String { base + "/" + name }

    /// Creates the service's cgroup (kept if it exists) and opens its
    /// `cgroup.procs` for `cc_spawn_service`. Throws with the errno's text.
    public func prepare(_ name: String) throws -> Int32 {
        let dir = path(name)
        guard mkdir(dir, 0o755) == 0 || errno == EEXIST else {
            throw ServiceLauncher.Failure(description: "mkdir \(dir): \(String(cString: strerror(errno)))")
        }
        let fd = Glibc.open(dir + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ServiceLauncher.Failure(description: "open \(dir)/cgroup.procs: \(String(cString: strerror(errno)))") }
        return fd
    }

    /// The pids in the service's cgroup (empty when it has none or no cgroup).
    public func procs(_ name: String) -> [Int32] {
        guard let text = try? String(contentsOfFile: path(name) + "/cgroup.procs", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// SIGKILL to every process in the service's cgroup at once, no pid race
    /// (`cgroup.kill`); false where the kernel lacks it (before 5.14).
    @discardableResult
    public func kill(_ name: String) -> Bool { Self.write(path(name) + "/cgroup.kill", "1") }

    /// Removes the service's cgroup once empty (rmdir fails with EBUSY otherwise).
    public func remove(_ name: String) { rmdir(path(name)) }

    /// At the supervisor's exit: removes every empty service cgroup, then the
    /// base if nothing is left (running services keep theirs, and the base,
    /// for the next supervisor).
    public func removeEmpty() {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            var st = stat()
            if lstat(base + "/" + entry, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { rmdir(base + "/" + entry) }
        }
        rmdir(base)
    }

    /// Sets `memory.max` when the service's cgroup has the memory controller;
    /// false (nothing written) when it does not.
    public func limitMemory(_ name: String, bytes: Int64) -> Bool {
        guard Self.controllers(path(name)).contains("memory") else { return false }
        return Self.write(path(name) + "/memory.max", String(bytes))
    }

    static func controllers(_ dir: String) -> [Substring] {
        ((try? String(contentsOfFile: dir + "/cgroup.controllers", encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
    }

    @discardableResult
    static func write(_ path: String, _ text: String) -> Bool {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return Glibc.write(fd, text, text.utf8.count) == text.utf8.count
    }
}
