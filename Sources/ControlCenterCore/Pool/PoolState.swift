import Foundation

/// The master's `run/pool.state`: one JSON object, written atomically by the
/// master on every change and read by workers for the status and health
/// pages. This type writes and parses it.
public struct PoolState: Sendable, Equatable {
    /// One child group's figures.
    public struct Group: Sendable, Equatable {
        public var name: String
        /// The group's socket (`unix:PATH` or `HOST:PORT`); nil for a group
        /// that serves no requests.
        public var listen: String?
        public var target: Int
        /// Children alive now, including those told to stop.
        public var live: Int
        public var restarts: Int
        public var timeoutKills: Int
        /// Requests served by children that have exited (the live ones count
        /// theirs in their status files).
        public var servedByExited: Int
        public var backoff: Bool
        public var generation: Int
        public var reloadOnHUP: Bool

        public var servesRequests: Bool { listen != nil }

        /// The fields the state file and the status page share, inside an
        /// object the caller opened.
        func writeFields(_ w: inout JSONWriter) {
            w.field("name", name)
            w.field("listen", listen)
            w.field("target", target)
            w.field("live", live)
            w.field("restarts", restarts)
            w.field("timeout_kills", timeoutKills)
            w.field("backoff", backoff)
            w.field("generation", generation)
            w.field("reload_on_hup", reloadOnHUP)
        }
    }

    public var masterPid: Int
    /// Wall-clock seconds since the epoch.
    public var startedAt: Double
    public var generation: Int
    public var reloads: Int
    /// `running` or `stopping`.
    public var phase: String
    public var groups: [Group]

    /// The request pools: the groups with a socket, which decide readiness.
    public var pools: [Group] { groups.filter(\.servesRequests) }

    /// The figures of `state` at monotonic time `now`.
    public init(_ state: MasterState, masterPid: Int, startedAt: Double, now: Double) {
        self.masterPid = masterPid
        self.startedAt = startedAt
        generation = state.reloads
        reloads = state.reloads
        phase = state.phase == .running ? "running" : "stopping"
        groups = state.groups.indices.map { i in
            let g = state.groups[i]
            return Group(name: g.spec.name, listen: g.spec.listen?.description, target: g.spec.target,
                         live: state.children(of: i).count, restarts: g.restarts, timeoutKills: g.timeoutKills,
                         servedByExited: g.servedByExited, backoff: g.backoffUntil > now, generation: g.generation,
                         reloadOnHUP: g.spec.reloadOnHUP)
        }
    }

    public func encoded() -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("master_pid", masterPid)
        w.field("started_at", startedAt, places: 3)
        w.field("generation", generation)
        w.field("reloads", reloads)
        w.field("phase", phase)
        w.beginArray("groups")
        for g in groups {
            w.beginObject()
            g.writeFields(&w)
            w.field("served_by_exited", g.servedByExited)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }

    public init?(decoding bytes: [UInt8]) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        masterPid = obj["master_pid"] as? Int ?? 0
        startedAt = obj["started_at"] as? Double ?? 0
        generation = obj["generation"] as? Int ?? 0
        reloads = obj["reloads"] as? Int ?? 0
        phase = obj["phase"] as? String ?? "unknown"
        groups = (obj["groups"] as? [[String: Any]] ?? []).map { g in
            Group(name: g["name"] as? String ?? "", listen: g["listen"] as? String,
                  target: g["target"] as? Int ?? 0, live: g["live"] as? Int ?? 0,
                  restarts: g["restarts"] as? Int ?? 0, timeoutKills: g["timeout_kills"] as? Int ?? 0,
                  servedByExited: g["served_by_exited"] as? Int ?? 0, backoff: g["backoff"] as? Bool ?? false,
                  generation: g["generation"] as? Int ?? 0, reloadOnHUP: g["reload_on_hup"] as? Bool ?? false)
        }
    }

    public static func path(runDir: String) -> String { runDir + "/pool.state" }

    public static func read(runDir: String) -> PoolState? {
        AtomicFile.read(path(runDir: runDir)).flatMap(PoolState.init(decoding:))
    }

    @discardableResult
    public func write(runDir: String) -> Bool {
        AtomicFile.write(encoded(), to: Self.path(runDir: runDir), mode: 0o644)
    }
}
