/// The nchan channel ids of the live channels, shared by the nginx renderer
/// (LiveConf) and the collector's publisher.
///
/// The system channel is split into CC_STREAM_SHARDS shards, `system.0` …
/// `system.N-1`: nginx puts each client address in one (split_clients on
/// the address), and the collector publishes each message to every shard,
/// one after another, so that a fan-out to thousands of subscribers never
/// holds nginx's workers in one piece. The events channel (rare messages)
/// is one channel, `events`.
public enum LiveChannels {
    public static let system = "system"
    public static let events = "events"

    /// `system.0` … `system.<shards-1>`.
    public static func systemShards(_ shards: Int) -> [String] {
        (0..<max(1, shards)).map { "\(system).\($0)" }
    }

    /// The channel a channel id belongs to: `system.3` → `system`,
    /// `events` → `events`.
    public static func channel(ofID id: String) -> String {
        id.split(separator: ".", maxSplits: 1).first.map(String.init) ?? id
    }
}
