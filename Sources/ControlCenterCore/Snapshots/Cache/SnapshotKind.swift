/// The snapshot kinds. File names come only from here, never from requests.
public enum SnapshotKind: String, CaseIterable, Sendable {
    case processes, connections, network, stats

    var code: UInt32 {
        switch self {
        case .processes: 1
        case .connections: 2
        case .network: 3
        case .stats: 4
        }
    }

    public func ttl(_ config: Config) -> Double { config.cacheTTL[rawValue] ?? 2 }

    func snapPath(_ dir: String) -> String { "\(dir)/\(rawValue).snap" }
    func lockPath(_ dir: String) -> String { "\(dir)/\(rawValue).lock" }
    func countersPath(_ dir: String) -> String { "\(dir)/\(rawValue).counters" }

    /// Kinds whose default view (the `.body` section) nginx sends itself
    /// from `$CC_STATE_DIR/views/<kind>.json`; control-center-views.conf has
    /// a location for each. Connections and ports are lists cut per request.
    var hasNginxView: Bool { self != .connections }
    func viewPath(_ dir: String) -> String { "\(dir)/\(rawValue).json" }
}
