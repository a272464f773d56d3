import Glibc

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

    /// Sums raw values (each its own average, min and max) or finer buckets
    /// (their averages weighted by one) into a bucket.
    struct Accumulator {
        var sum = 0.0, count = 0, low = Double.infinity, high = -Double.infinity

        mutating func add(_ b: HistoryBucket) {
            sum += b.avg
            count += 1
            low = Swift.min(low, b.min)
            high = Swift.max(high, b.max)
        }

        var bucket: HistoryBucket? { count == 0 ? nil : HistoryBucket(avg: sum / Double(count), min: low, max: high) }
    }
}

/// The `vals` text of history rows (HistorySchema): fields separated by
/// commas, one per series position; a raw field is one number, a roll-up
/// field `avg:min:max`; an empty field is no value. Read as bytes with
/// strtod, once per row: a 1-hour answer reads 3,600 raw rows.
enum HistoryCodec {
    /// Calls `body(slot, bucket)` for each `wanted` position (ascending)
    /// that has a value in `vals`; a raw value is its own average, min and max.
    static func scan(_ vals: String, wanted: [(position: Int, slot: Int)], _ body: (Int, HistoryBucket) -> Void) {
        var bytes = Array(vals.utf8)
        bytes.append(0)
        bytes.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            let n = buf.count - 1
            var i = 0, field = 0
            for w in wanted {
                while field < w.position {
                    while i < n, base[i] != UInt8(ascii: ",") { i += 1 }
                    guard i < n else { return }
                    i += 1
                    field += 1
                }
                if let b = parseField(base, at: i) { body(w.slot, b) }
            }
        }
    }

    /// Calls `body(position, bucket)` for every non-empty field, raw or roll-up.
    static func forEachBucket(_ vals: String, _ body: (Int, HistoryBucket) -> Void) {
        var bytes = Array(vals.utf8)
        bytes.append(0)
        bytes.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            let n = buf.count - 1
            var i = 0, field = 0
            while i <= n {
                if let b = parseField(base, at: i) { body(field, b) }
                while i < n, base[i] != UInt8(ascii: ",") { i += 1 }
                i += 1
                field += 1
            }
        }
    }

    /// The field at `position` of a row: raw (one number) or roll-up.
    static func bucket(_ vals: String, at position: Int) -> HistoryBucket? {
        var out: HistoryBucket?
        scan(vals, wanted: [(position, 0)]) { _, b in out = b }
        return out
    }

    /// One field starting at `p[i]`, ending at a comma or the NUL.
    private static func parseField(_ p: UnsafeMutablePointer<UInt8>, at i: Int) -> HistoryBucket? {
        let start = UnsafeMutableRawPointer(p + i).assumingMemoryBound(to: CChar.self)
        var end: UnsafeMutablePointer<CChar>?
        let avg = strtod(start, &end)
        guard let e = end, e != start else { return nil }
        guard e.pointee == CChar(UInt8(ascii: ":")) else { return HistoryBucket(avg: avg, min: avg, max: avg) }
        let lo = strtod(e + 1, &end)
        guard let e2 = end, e2 != e + 1, e2.pointee == CChar(UInt8(ascii: ":")) else { return nil }
        let hi = strtod(e2 + 1, &end)
        guard let e3 = end, e3 != e2 + 1 else { return nil }
        return HistoryBucket(avg: avg, min: lo, max: hi)
    }
}
