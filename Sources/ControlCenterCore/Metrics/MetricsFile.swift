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
        for (series, value) in samples.sorted(by: { $0.key < $1.key }) {
            out.append(contentsOf: series.utf8)
            out.append(0x20)
            out.append(contentsOf: PrometheusText.format(value).utf8)
            out.append(0x0A)
        }
        return out
    }

    /// Lines that do not parse are skipped: a file is written whole by
    /// rename, so they can only come from a newer or foreign writer.
    public static func decode<C: Collection>(_ bytes: C) -> MetricsFile where C.Element == UInt8 {
        var file = MetricsFile()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("# folded ") {
                file.folded.append(String(line.dropFirst(9)))
                continue
            }
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            file.samples[String(line[..<space]), default: 0] += v
        }
        return file
    }

    public mutating func add(_ other: [String: Double]) {
        for (k, v) in other { samples[k, default: 0] += v }
    }
}
