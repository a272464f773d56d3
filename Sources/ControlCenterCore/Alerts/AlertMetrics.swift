import Foundation

/// The figures an alert rule can watch, from the collector's current stats
/// snapshot (the `/api/system/stats` body StatsBuilder writes):
/// - `cpu`: percent of all CPUs busy since the previous sample (/proc/stat);
/// - `memory`: percent used, MemTotal − MemAvailable (/proc/meminfo);
/// - `swap`: percent of swap used (/proc/meminfo);
/// - `disk`: percent used per mount (statvfs), labelled by mount point;
/// - `load1`, `load5`, `load15`: load averages (/proc/loadavg);
/// - `net_rx`, `net_tx`: bytes per second received and sent since the
///   previous sample, per interface but loopback (NetworkRates).
///
/// Series are named like the history's: `metric`, or `metric:label`.
public enum AlertMetrics {
    /// Each metric's unit, and the name of its label when it has one.
    public static let catalog: [String: (unit: String, label: String?)] = [
        "cpu": ("percent", nil), "memory": ("percent", nil), "swap": ("percent", nil), "disk": ("percent", "mount"),
        "load1": ("load", nil), "load5": ("load", nil), "load15": ("load", nil),
        "net_rx": ("bytes_per_second", "interface"), "net_tx": ("bytes_per_second", "interface"),
    ]

    /// One sampled figure: `label` is "" for a metric without one.
    public struct Key: Hashable, Sendable {
        public var metric: String
        public var label: String
        public init(_ metric: String, _ label: String = "") {
            self.metric = metric
            self.label = label
        }

        /// `metric` or `metric:label`, as in the synthetic metrics file.
        public init(series: String) {
            if let colon = series.firstIndex(of: ":") {
                self.init(String(series[..<colon]), String(series[series.index(after: colon)...]))
            } else {
                self.init(series)
            }
        }
    }

    /// The figures of a stats snapshot and the network rates of the same sample.
    public static func values(stats: LoadedSnapshot, network: NetworkRates.Rates?) -> [Key: Double] {
        values(statsBody: stats.file.section(.body), network: network)
    }

    static func values(statsBody: ArraySlice<UInt8>, network: NetworkRates.Rates?) -> [Key: Double] {
        var out = values(statsBody: statsBody)
        for (name, r) in network?.interfaces ?? [:] {
            out[Key("net_rx", name)] = r.rxBytesPerSecond
            out[Key("net_tx", name)] = r.txBytesPerSecond
        }
        return out
    }

    /// The figures of a stats body as stored (`/api/system/stats`'s answer).
    static func values(statsBody: ArraySlice<UInt8>) -> [Key: Double] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(statsBody)) as? [String: Any] else { return [:] }
        func number(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
        var out: [Key: Double] = [:]
        if let cpu = root["cpu"] as? [String: Any] {
            out[Key("cpu")] = number(cpu["usage_percent"])
            let load = (cpu["load_avg"] as? [Any]) ?? []
            for (i, name) in ["load1", "load5", "load15"].enumerated() where i < load.count { out[Key(name)] = number(load[i]) }
        }
        if let mem = root["memory"] as? [String: Any] {
            out[Key("memory")] = number(mem["percent"])
            out[Key("swap")] = number((mem["swap"] as? [String: Any])?["percent"])
        }
        for case let d as [String: Any] in (root["disks"] as? [Any]) ?? [] {
            if let mount = d["mount"] as? String { out[Key("disk", mount)] = number(d["percent"]) }
        }
        return out
    }

    /// The synthetic source for tests (`CC_TEST_METRICS_FILE`, honoured only
    /// with `CC_TEST_ROUTES=true`): a JSON object of series to numbers,
    /// `{"cpu": 95, "disk:/data": 97}`, read at every sample. A missing or
    /// malformed file gives no figures (every alert counts as clear).
    public static func values(testFile path: String) -> [Key: Double] {
        guard let data = FileManager.default.contents(atPath: path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        var out: [Key: Double] = [:]
        for (k, v) in obj { if let n = v as? NSNumber { out[Key(series: k)] = n.doubleValue } }
        return out
    }
}
