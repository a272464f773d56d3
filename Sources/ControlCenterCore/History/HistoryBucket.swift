/// Average, minimum and maximum of the samples one bucket covers.
public struct HistoryBucket: Equatable, Sendable {
    public var avg: Double
    public var min: Double
    public var max: Double

    public init(avg: Double, min: Double, max: Double) {
        self.avg = avg
        self.min = min
        self.max = max
    }

    /// Sums raw values (or the averages of finer buckets, weighted by one)
    /// into a bucket.
    struct Accumulator {
        var sum = 0.0, count = 0, low = Double.infinity, high = -Double.infinity

        mutating func add(_ v: Double) { add(avg: v, min: v, max: v) }

        mutating func add(avg: Double, min: Double, max: Double) {
            sum += avg
            count += 1
            low = Swift.min(low, min)
            high = Swift.max(high, max)
        }

        var bucket: HistoryBucket? { count == 0 ? nil : HistoryBucket(avg: sum / Double(count), min: low, max: high) }
    }
}

/// The `vals` text of history rows (HistorySchema): fields separated by
/// commas, one per series position; a raw field is one number, a roll-up
/// field `avg:min:max`; an empty field is no value.
enum HistoryCodec {
    /// Calls `body(position, value)` for every non-empty raw field.
    static func forEachValue(_ vals: String, _ body: (Int, Double) -> Void) {
        for (i, f) in vals.split(separator: ",", omittingEmptySubsequences: false).enumerated() where !f.isEmpty {
            if let v = Double(f) { body(i, v) }
        }
    }

    /// The field at `position` of a row: raw (one number) or roll-up.
    static func bucket(_ vals: Substring, at position: Int) -> HistoryBucket? {
        guard let f = field(vals, position), !f.isEmpty else { return nil }
        let parts = f.split(separator: ":")
        if parts.count == 3, let a = Double(parts[0]), let lo = Double(parts[1]), let hi = Double(parts[2]) {
            return HistoryBucket(avg: a, min: lo, max: hi)
        }
        return Double(f).map { HistoryBucket(avg: $0, min: $0, max: $0) }
    }

    /// The `position`-th comma-separated field, without splitting the rest.
    static func field(_ vals: Substring, _ position: Int) -> Substring? {
        var start = vals.startIndex
        var n = 0
        while n < position {
            guard let comma = vals[start...].firstIndex(of: ",") else { return nil }
            start = vals.index(after: comma)
            n += 1
        }
        let end = vals[start...].firstIndex(of: ",") ?? vals.endIndex
        return vals[start..<end]
    }
}
