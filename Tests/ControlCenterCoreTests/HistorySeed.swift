@testable import ControlCenterCore
import Foundation

/// Seeds full tiers with synthetic data for range tests and the history
/// benchmark: every bucket of each tier from `now - seconds` to `now`, for
/// each series, with `value` (a daily wave between 10 and 90; × 10⁸ for a
/// `_used` series, as bytes are) as a raw sample, or as a roll-up's average
/// with ±5 % around it as minimum and maximum. Rows go in 200 to an INSERT,
/// in one transaction.
enum HistorySeed {
    static func value(_ t: Int64, _ series: Int, _ name: String = "") -> Double {
        let phase: Double = Double(t) / 86_400_000 * 2 * Double.pi + Double(series)
        let v: Double = 50 + 40 * sin(phase)
        return name.contains("_used") ? (v * 1e8).rounded() : v
    }

    /// The reference host: 2 CPUs, 4 mounts, 3 interfaces (25 series).
    static let referenceHost: [String] = ["cpu", "cpu_core:0", "cpu_core:1", "load1", "load5", "load15", "memory",
        "memory_used", "swap", "swap_used", "processes"]
        + ["/", "/var", "/home", "/srv"].flatMap { ["disk:\($0)", "disk_used:\($0)"] }
        + ["eth0", "eth1", "wlan0"].flatMap { ["net_rx:\($0)", "net_tx:\($0)"] }

    static func seed(_ db: Database, config: Config, now: Int64, series: [String], tiers: [HistoryTier: Int64]) throws {
        let store = HistoryStore(db)
        let positions = try store.positions(for: series)
        try db.transaction {
            for (tier, seconds) in tiers {
                let width = tier.resolutionMillis(config)
                var t = HistoryStore.floor(now - seconds * 1000, width)
                while t < now {
                    var sql = "INSERT INTO \(tier.table) (ts, vals) VALUES "
                    var params: [DBValue] = []
                    while t < now, params.count < 400 {
                        var fields = [String](repeating: "", count: (positions.values.max() ?? 0) + 1)
                        for (i, name) in series.enumerated() {
                            let v = value(t, i, name)
                            fields[positions[name]!] = tier == .raw ? HistorySample.format(v)
                                : "\(HistorySample.format(v)):\(HistorySample.format(v * 0.95)):\(HistorySample.format(v * 1.05))"
                        }
                        sql += params.isEmpty ? "(?, ?)" : ", (?, ?)"
                        params += [.int(t), .text(fields.joined(separator: ","))]
                        t += width
                    }
                    try db.execute(sql, params)
                }
            }
        }
    }
}
