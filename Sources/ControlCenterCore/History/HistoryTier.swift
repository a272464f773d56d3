/// The history's tiers, finest first, like netdata's: raw samples (one row
/// per collector sample), then 1-minute and 1-hour roll-ups holding the
/// average, minimum and maximum of the raw samples each bucket covers.
/// How long each is kept is a setting (`Config.historyRetention`).
public enum HistoryTier: String, Sendable, CaseIterable, Hashable {
    case raw, minute, hour

    /// The table holding the tier (migration 7, HistorySchema).
    var table: String {
        switch self {
        case .raw: return "history_raw"
        case .minute: return "history_1m"
        case .hour: return "history_1h"
        }
    }

    /// Name in API answers: `raw`, `1m`, `1h`.
    public var label: String {
        switch self {
        case .raw: return "raw"
        case .minute: return "1m"
        case .hour: return "1h"
        }
    }

    /// Bucket width in milliseconds; a raw row is one sample, so its
    /// resolution is the collector's interval (at least 1 s: rows are keyed
    /// by the millisecond, buckets by whole seconds).
    public func resolutionMillis(_ config: Config) -> Int64 {
        switch self {
        case .raw: return max(1000, Int64((config.collectInterval * 1000).rounded(.up) / 1000) * 1000)
        case .minute: return 60_000
        case .hour: return 3_600_000
        }
    }
}
