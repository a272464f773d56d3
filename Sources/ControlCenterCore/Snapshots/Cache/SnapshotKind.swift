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

    func ttl(_ config: Config) -> Double { config.cacheTTL[rawValue] ?? 2 }

    func snapPath(_ dir: String) -> String { "\(dir)/\(rawValue).snap" }
    func lockPath(_ dir: String) -> String { "\(dir)/\(rawValue).lock" }
    func countersPath(_ dir: String) -> String { "\(dir)/\(rawValue).counters" }
}
