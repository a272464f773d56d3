/// The history's tiers, finest first, like netdata's: raw samples (one row
/// per collector sample), then roll-ups at 1 minute, 15 minutes, 1 hour and
/// 6 hours holding the average, minimum and maximum of what each bucket
/// covers. How long each is kept is a setting (`Config.historyRetention`).
///
/// The 15-minute and 6-hour tiers exist for speed: a query reads the
/// coarsest tier that still gives the points asked for, so 30 days read
/// 2,880 quarter-hour rows instead of 43,200 minute rows, and 2 years 2,920
/// six-hour rows instead of 17,520 hour rows (docs/performance.md).
public enum HistoryTier: String, Sendable, CaseIterable, Hashable {
    case raw, minute, quarterHour, hour, sixHours

    /// The table holding the tier (migration 7, HistorySchema).
    var table: String { "history_\(label)" }

    /// Name in API answers and in the table's name: `raw`, `1m`, `15m`, `1h`, `6h`.
    public var label: String {
        switch self {
        case .raw: return "raw"
        case .minute: return "1m"
        case .quarterHour: return "15m"
        case .hour: return "1h"
        case .sixHours: return "6h"
        }
    }

    /// The tier a roll-up bucket is computed from. Minutes, quarter hours and
    /// hours read the raw samples they cover, so their average is the
    /// samples' average; six hours read their six hour rows (averaged with
    /// equal weight; min and max exact), so the raw tier may be kept for less
    /// than six hours.
    var source: HistoryTier? {
        switch self {
        case .raw: return nil
        case .minute, .quarterHour, .hour: return .raw
        case .sixHours: return .hour
        }
    }

    /// Bucket width in milliseconds; a raw row is one sample, so its
    /// resolution is the collector's interval (at least 1 s: rows are keyed
    /// by the millisecond, buckets by whole seconds).
    public func resolutionMillis(_ config: Config) -> Int64 {
        switch self {
        case .raw: return max(1000, Int64((config.collectInterval * 1000).rounded(.up) / 1000) * 1000)
        case .minute: return 60_000
        case .quarterHour: return 900_000
        case .hour: return 3_600_000
        case .sixHours: return 21_600_000
        }
    }
}
