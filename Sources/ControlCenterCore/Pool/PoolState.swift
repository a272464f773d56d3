import Foundation

/// The master's `run/pool.state`, as read by workers for status pages.
public struct PoolState: Sendable {
    public struct Pool: Sendable {
        public var name: String
        public var listen: String
        public var target: Int
        public var live: Int
        public var restarts: Int
        public var timeoutKills: Int
        public var servedByExited: Int
        public var backoff: Bool
    }

    public var masterPid: Int
    public var startedAt: Double
    public var generation: Int
    public var reloads: Int
    public var phase: String
    public var pools: [Pool]

    public static func read(runDir: String) -> PoolState? {
        guard let bytes = AtomicFile.read(runDir + "/pool.state"),
              let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        let pools = (obj["pools"] as? [[String: Any]] ?? []).map { p in
            Pool(name: p["name"] as? String ?? "", listen: p["listen"] as? String ?? "",
                 target: p["target"] as? Int ?? 0, live: p["live"] as? Int ?? 0,
                 restarts: p["restarts"] as? Int ?? 0, timeoutKills: p["timeout_kills"] as? Int ?? 0,
                 servedByExited: p["served_by_exited"] as? Int ?? 0, backoff: p["backoff"] as? Bool ?? false)
        }
        return PoolState(masterPid: obj["master_pid"] as? Int ?? 0, startedAt: obj["started_at"] as? Double ?? 0,
                         generation: obj["generation"] as? Int ?? 0, reloads: obj["reloads"] as? Int ?? 0,
                         phase: obj["phase"] as? String ?? "unknown", pools: pools)
    }
}
