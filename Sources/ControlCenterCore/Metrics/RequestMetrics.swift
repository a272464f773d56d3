/// One worker's application metrics, counted where the access-log line is
/// written (FastCGIWorker), never in handlers, and kept in memory: a request
/// costs a dictionary update and a bucket search. The totals go to the
/// worker's file in MetricsStore at most once a second, when the worker is
/// idle, before a scrape (so nothing a scrape showed can be lost) and on
/// exit, as the access log buffer does; a
/// SIGKILLed worker loses at most its last second, and its file stays.
public final class RequestMetrics {
    /// Upper bounds of `cc_http_request_duration_seconds`, 0.5 ms to 10 s.
    public static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                           1, 2.5, 5, 10]
    /// Methods counted under their own name; anything else is `other`, so a
    /// client cannot make new series.
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    struct Key: Hashable { var route: String; var method: String; var code: String }
    struct Histogram { var counts = [Int](repeating: 0, count: RequestMetrics.buckets.count + 1); var sum = 0.0 }

    private var requests: [Key: Int] = [:]
    private var durations: [String: Histogram] = [:]
    private var errors: [String: Int] = [:]
    private var dirty = false
    private var lastWriteNanos: UInt64 = 0
    let path: String?

    /// `path` nil keeps the counts in memory only (unit tests, no run dir).
    public init(path: String?) { self.path = path }

    /// Counts one answered request. `route` is the router's template (nil:
    /// no route matched, counted as `other`); `errorCode` is the JSON error
    /// envelope's code, which counts database errors and login failures.
    public func record(route: String?, method: String, status: Int, errorCode: String?, seconds: Double) {
        let r = route ?? "other"
        requests[Key(route: r, method: Self.methods.contains(method) ? method : "other",
                     code: Self.statusClass(status)), default: 0] += 1
        var i = 0
        while i < Self.buckets.count && seconds > Self.buckets[i] { i += 1 }
        // In place (the default subscript), so the bucket array is not copied per request.
        durations[r, default: Histogram()].counts[i] += 1
        durations[r, default: Histogram()].sum += seconds
        if let errorCode, let series = Self.errorSeries[errorCode] { errors[series, default: 0] += 1 }
        dirty = true
    }

    /// `2xx` … `5xx`; anything outside 100–599 is `other`.
    static func statusClass(_ status: Int) -> String {
        (100...599).contains(status) ? classes[status / 100 - 1] : "other"
    }
    private static let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    /// Error codes (APIError) that are counted apart, and their series.
    static let errorSeries: [String: String] = [
        "database_timeout": "cc_database_errors_total{code=\"database_timeout\"}",
        "database_unavailable": "cc_database_errors_total{code=\"database_unavailable\"}",
        "invalid_credentials": "cc_login_failures_total",
        "too_many_attempts": "cc_login_throttled_total",
    ]

    /// Series names already built, so a write or scrape formats no strings.
    private var requestNames: [Key: String] = [:]
    /// Per route: the bucket series (0.5 ms … +Inf), then `_sum`, then `_count`.
    private var histogramNames: [String: [String]] = [:]

    /// Every series this worker has counted, in MetricsFile's form.
    public func samples() -> [String: Double] {
        var out: [String: Double] = [:]
        out.reserveCapacity(requests.count + durations.count * (Self.buckets.count + 3) + errors.count)
        for (k, n) in requests {
            let name = requestNames[k] ?? {
                let made = "cc_http_requests_total{route=\"\(PrometheusText.escapeLabel(k.route))\",method=\"\(k.method)\",code=\"\(k.code)\"}"
                requestNames[k] = made
                return made
            }()
            out[name] = Double(n)
        }
        for (route, h) in durations {
            let names = histogramNames[route] ?? {
                let r = PrometheusText.escapeLabel(route)
                let made = (Self.buckets.map(PrometheusText.format) + ["+Inf"]).map {
                    "cc_http_request_duration_seconds_bucket{route=\"\(r)\",le=\"\($0)\"}"
                } + ["cc_http_request_duration_seconds_sum{route=\"\(r)\"}", "cc_http_request_duration_seconds_count{route=\"\(r)\"}"]
                histogramNames[route] = made
                return made
            }()
            var cumulative = 0
            for i in 0...Self.buckets.count {
                cumulative += h.counts[i]
                out[names[i]] = Double(cumulative)
            }
            out[names[Self.buckets.count + 1]] = h.sum
            out[names[Self.buckets.count + 2]] = Double(cumulative)
        }
        for (series, n) in errors { out[series] = Double(n) }
        return out
    }

    /// Writes the file if anything changed and a second has passed.
    public func writeIfDue(nowNanos: UInt64) {
        guard dirty, nowNanos &- lastWriteNanos >= 1_000_000_000 else { return }
        write(nowNanos: nowNanos)
    }

    /// Writes the file now if anything changed (idle, exit, before a scrape).
    public func write(nowNanos: UInt64) {
        guard dirty, let path else { return }
        // A failed write (run dir gone) is retried a second later, not per request.
        lastWriteNanos = nowNanos
        if AtomicFile.write(MetricsFile(samples: samples()).encode(), to: path) { dirty = false }
    }
}
