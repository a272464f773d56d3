@testable import ControlCenterCore
import Foundation

/// Seeds full roll-up tiers with synthetic data for range tests: every
/// bucket of each tier from `now - seconds` to `now`, for each series, with
/// `value` (a daily wave between 10 and 90) as average and ±5 around it as
/// minimum and maximum. Rows go in 200 to an INSERT, in one transaction.
enum HistorySeed {
    static func value(_ t: Int64, _ series: Int) -> Double {
        let phase: Double = Double(t) / 86_400_000 * 2 * Double.pi + Double(series)
        return 50 + 40 * sin(phase)
    }

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
                            let v = value(t, i)
                            fields[positions[name]!] = "\(HistorySample.format(v)):\(HistorySample.format(v - 5)):\(HistorySample.format(v + 5))"
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
