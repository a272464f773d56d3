/// The application metric families the workers count (RequestMetrics) and
/// MetricsStore sums: their HELP, TYPE, the series shown before anything was
/// counted, and the order of a family's series on the page.
public enum MetricsCatalog {
    public struct Family: Sendable {
        public let name: String
        public let type: String
        public let help: String
        /// Series (in MetricsFile form) shown as 0 until counted, so that
        /// alerts and dashboards find them on a fresh pool.
        public let zeros: [String]
    }

    public static let families: [Family] = [
        Family(name: "cc_http_requests_total", type: "counter",
               help: "Requests the workers answered, by route template (other: no route), method and status class.",
               zeros: []),
        Family(name: "cc_http_request_duration_seconds", type: "histogram",
               help: "Time from a request's arrival at a worker to its access-log line, by route template.",
               zeros: []),
        Family(name: "cc_database_errors_total", type: "counter",
               help: "Requests answered 503 because the database timed out or was unavailable, by error code.",
               zeros: ["cc_database_errors_total{code=\"database_timeout\"}",
                       "cc_database_errors_total{code=\"database_unavailable\"}"]),
        Family(name: "cc_login_failures_total", type: "counter",
               help: "Logins refused for a wrong username or password (401 invalid_credentials).",
               zeros: ["cc_login_failures_total"]),
        Family(name: "cc_login_throttled_total", type: "counter",
               help: "Logins refused by the database throttle (429 too_many_attempts; nginx's own 429s are not counted here).",
               zeros: ["cc_login_throttled_total"]),
    ]

    /// Writes every family with its series from `totals` (MetricsFile form).
    public static func write(_ t: inout PrometheusText, totals: [String: Double]) {
        var byFamily: [String: [(SortKey, String, Double)]] = [:]
        for (series, value) in totals {
            guard let (family, key) = classify(series) else { continue }
            byFamily[family, default: []].append((key, series, value))
        }
        for f in families {
            var rows = byFamily[f.name] ?? []
            for z in f.zeros where totals[z] == nil { rows.append((classify(z)!.1, z, 0)) }
            guard !rows.isEmpty else { continue }
            t.family(f.name, f.type, f.help)
            rows.sort { $0.0 < $1.0 }
            for (_, series, value) in rows {
                t.raw(series.utf8)
                t.raw(" ".utf8)
                t.raw(PrometheusText.format(value).utf8)
                t.raw("\n".utf8)
            }
        }
    }

    /// Orders a histogram's lines as the exposition format expects: per
    /// label set, buckets by ascending `le`, then `_sum` and `_count`.
    struct SortKey: Comparable {
        var labels: String
        var part: Int
        var le: Double

        static func < (a: SortKey, b: SortKey) -> Bool {
            (a.labels, a.part, a.le) < (b.labels, b.part, b.le)
        }
    }

    /// The family a series belongs to, and its sort key.
    static func classify(_ series: String) -> (String, SortKey)? {
        let brace = series.firstIndex(of: "{") ?? series.endIndex
        let name = String(series[..<brace])
        var labels = String(series[brace...])
        var le = 0.0
        if let r = labels.range(of: ",le=\"") ?? labels.range(of: "{le=\""),
           let end = labels[r.upperBound...].firstIndex(of: "\"") {
            let text = labels[r.upperBound..<end]
            le = text == "+Inf" ? .infinity : Double(text) ?? 0
            labels.removeSubrange(r.lowerBound..<labels.index(after: end))
        }
        for f in families {
            if name == f.name { return (f.name, SortKey(labels: labels, part: 0, le: le)) }
            guard f.type == "histogram", name.hasPrefix(f.name) else { continue }
            switch name.dropFirst(f.name.count) {
            case "_bucket": return (f.name, SortKey(labels: labels, part: 0, le: le))
            case "_sum": return (f.name, SortKey(labels: labels, part: 1, le: 0))
            case "_count": return (f.name, SortKey(labels: labels, part: 2, le: 0))
            default: continue
            }
        }
        return nil
    }
}
