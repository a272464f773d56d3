/// The one format of the per-worker metrics files and of the folded total
/// (`$CC_STATE_DIR/run/metrics/`): one exposition sample line per series,
/// `name{labels} value`, with no HELP or TYPE (MetricsCatalog adds those at
/// a scrape). Every value is additive: counters, and histogram buckets,
/// sums and counts, so the pool's figure is the plain sum over files. The
/// folded total also lists the files already added to it (`# folded NAME`),
/// so a fold interrupted before it unlinked them cannot count them twice.
public struct MetricsFile: Equatable, Sendable {
    public var samples: [String: Double] = [:]
    public var folded: [String] = []

    public init(samples: [String: Double] = [:], folded: [String] = []) {
        self.samples = samples
        self.folded = folded
    }

    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(samples.count * 80 + folded.count * 32)
        for name in folded { out.append(contentsOf: "# folded \(name)\n".utf8) }
        // Unsorted: every line is added to its series, so order carries nothing.
        for (series, value) in samples {
            out.append(contentsOf: series.utf8)
            out.append(0x20)
            out.append(contentsOf: PrometheusText.format(value).utf8)
            out.append(0x0A)
        }
        return out
    }

    /// Lines that do not parse are skipped: a file is written whole by
    /// rename, so they can only come from a newer or foreign writer. Works on
    /// bytes: a scrape decodes every worker's file, and String's
    /// Character-by-Character splitting cost milliseconds per scrape.
    public static func decode<C: Collection>(_ bytes: C) -> MetricsFile where C.Element == UInt8 {
        let b = Array(bytes)
        var file = MetricsFile()
        file.samples.reserveCapacity(b.count / 64)
        let foldedPrefix = Array("# folded ".utf8)
        var start = 0
        while start < b.count {
            var end = start, lastSpace = -1
            while end < b.count && b[end] != 0x0A {
                if b[end] == 0x20 { lastSpace = end }
                end += 1
            }
            if end - start > foldedPrefix.count && b[start..<(start + foldedPrefix.count)].elementsEqual(foldedPrefix) {
                file.folded.append(String(decoding: b[(start + foldedPrefix.count)..<end], as: UTF8.self))
            } else if b[start] != 0x23, lastSpace > start, let v = number(b[(lastSpace + 1)..<end]) {
                file.samples[String(decoding: b[start..<lastSpace], as: UTF8.self), default: 0] += v
            }
            start = end + 1
        }
        return file
    }

    /// Whole numbers digit by digit; anything else (fractions, exponents,
    /// `+Inf`, `NaN`) through Double's own parser.
    static func number(_ b: ArraySlice<UInt8>) -> Double? {
        guard !b.isEmpty else { return nil }
        if b.count < 16, b.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            return Double(b.reduce(0) { $0 * 10 + Int($1 - 0x30) })
        }
        return Double(String(decoding: b, as: UTF8.self))
    }

    public mutating func add(_ other: [String: Double]) {
        for (k, v) in other { samples[k, default: 0] += v }
    }
}
