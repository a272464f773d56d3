import Foundation

/// One sample's figures, keyed by series name: `metric` or `metric:label`.
///
/// Metrics and units (the names `GET /api/system/history?metrics=` takes):
/// - `cpu` percent of all CPUs, `cpu_core:<n>` percent of CPU n (/proc/stat
///   deltas, as `/api/system/stats`); `load1`, `load5`, `load15` (/proc/loadavg);
/// - `memory` percent used, `memory_used` bytes (MemTotal − MemAvailable);
///   `swap` percent used, `swap_used` bytes (/proc/meminfo);
/// - `disk:<mount>` percent used, `disk_used:<mount>` bytes (statvfs);
/// - `net_rx:<interface>`, `net_tx:<interface>` bytes per second since the
///   previous sample (/proc/net/dev; loopback left out);
/// - `processes`: the number of processes (/proc/<pid> directories).
public struct HistorySample: Equatable, Sendable {
    public var values: [String: Double]

    public init(_ values: [String: Double]) { self.values = values }

    /// The metrics a request may name, each with its unit.
    public static let metrics: [String: String] = [
        "cpu": "percent", "cpu_core": "percent", "load1": "load", "load5": "load", "load15": "load",
        "memory": "percent", "memory_used": "bytes", "swap": "percent", "swap_used": "bytes",
        "disk": "percent", "disk_used": "bytes", "net_rx": "bytes_per_second", "net_tx": "bytes_per_second",
        "processes": "count",
    ]

    /// The figures of a stats body (`/api/system/stats`, as StatsBuilder
    /// writes it); nil when it is not that JSON.
    static func stats(json: [UInt8]) -> [String: Double]? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else { return nil }
        var out: [String: Double] = [:]
        func number(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
        if let cpu = root["cpu"] as? [String: Any] {
            out["cpu"] = number(cpu["usage_percent"])
            for case let core as [String: Any] in (cpu["cores"] as? [Any]) ?? [] {
                if let n = (core["cpu"] as? NSNumber)?.intValue, let p = number(core["usage_percent"]) { out["cpu_core:\(n)"] = p }
            }
            let load = (cpu["load_avg"] as? [Any]) ?? []
            for (i, name) in ["load1", "load5", "load15"].enumerated() where i < load.count { out[name] = number(load[i]) }
        }
        if let mem = root["memory"] as? [String: Any] {
            out["memory"] = number(mem["percent"])
            out["memory_used"] = number(mem["used"])
            if let swap = mem["swap"] as? [String: Any] {
                out["swap"] = number(swap["percent"])
                out["swap_used"] = number(swap["used"])
            }
        }
        for case let d as [String: Any] in (root["disks"] as? [Any]) ?? [] {
            guard let mount = d["mount"] as? String else { continue }
            out["disk:\(mount)"] = number(d["percent"])
            out["disk_used:\(mount)"] = number(d["used"])
        }
        return out
    }

    /// Received and sent byte counters per interface from /proc/net/dev's
    /// text (`name: rx_bytes … (8 fields) tx_bytes …`), loopback left out.
    static func netDevCounters(_ text: String) -> [String: (rx: UInt64, tx: UInt64)] {
        var out: [String: (rx: UInt64, tx: UInt64)] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let fields = line[line.index(after: colon)...].split(separator: " ")
            guard name != "lo", fields.count >= 9, let rx = UInt64(fields[0]), let tx = UInt64(fields[8]) else { continue }
            out[name] = (rx, tx)
        }
        return out
    }

    /// Positional text for a raw row: shortest decimal that reads back as
    /// the value to 0.01 (bytes are whole numbers; percents need no more).
    static func format(_ v: Double) -> String {
        guard v.isFinite else { return "" }
        let r = (v * 100).rounded() / 100
        if r == r.rounded(), abs(r) < 1e15 { return String(Int64(r)) }
        return String(r)
    }
}
