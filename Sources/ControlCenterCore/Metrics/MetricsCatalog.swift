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

    /// Series already classified, kept by a worker between scrapes: the
    /// set of series changes only when a new route, method or status class
    /// is first counted.
    public final class Classifier {
        var known: [String: (String, SortKey)?] = [:]
        public init() {}

        func classify(_ series: String) -> (String, SortKey)? {
            if let hit = known[series] { return hit }
            let c = MetricsCatalog.classify(series)
            known[series] = c
            return c
        }
    }

    /// Writes every family with its series from `totals` (MetricsFile form).
    public static func write(_ t: inout PrometheusText, totals: [String: Double], classifier: Classifier = Classifier()) {
        var byFamily: [String: [(SortKey, String, Double)]] = [:]
        for (series, value) in totals {
            guard let (family, key) = classifier.classify(series) else { continue }
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

    /// The family a series belongs to, and its sort key. On bytes, as
    /// MetricsFile.decode: it runs for every series of every scrape.
    static func classify(_ series: String) -> (String, SortKey)? {
        let b = Array(series.utf8)
        let brace = b.firstIndex(of: 0x7B) ?? b.count
        var labels = Array(b[brace...])
        var le = 0.0
        // `le="…"` is always the last label (RequestMetrics writes it so).
        let marker = Array("le=\"".utf8)
        if labels.count > marker.count + 2, let at = lastRange(of: marker, in: labels) {
            let valueStart = at + marker.count
            if let close = labels[valueStart...].firstIndex(of: 0x22) {
                let text = String(decoding: labels[valueStart..<close], as: UTF8.self)
                le = text == "+Inf" ? .infinity : Double(text) ?? 0
                // With its comma, so a bucket's key is its _sum's and _count's.
                labels.removeSubrange((labels[at - 1] == 0x2C ? at - 1 : at)..<(close + 1))
            }
        }
        let name = String(decoding: b[..<brace], as: UTF8.self)
        let key = String(decoding: labels, as: UTF8.self)
        for f in families {
            if name == f.name { return (f.name, SortKey(labels: key, part: 0, le: le)) }
            guard f.type == "histogram", name.hasPrefix(f.name) else { continue }
            switch name.dropFirst(f.name.count) {
            case "_bucket": return (f.name, SortKey(labels: key, part: 0, le: le))
            case "_sum": return (f.name, SortKey(labels: key, part: 1, le: 0))
            case "_count": return (f.name, SortKey(labels: key, part: 2, le: 0))
            default: continue
            }
        }
        return nil
    }

    static func lastRange(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var i = hay.count - needle.count
        while i >= 0 {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i -= 1
        }
        return nil
    }
}
