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
        withTerminatedBytes(vals) { base, n in
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
        withTerminatedBytes(vals) { base, n in
            var i = 0, field = 0
            while i <= n {
                if let b = parseField(base, at: i) { body(field, b) }
                while i < n, base[i] != UInt8(ascii: ",") { i += 1 }
                i += 1
                field += 1
            }
        }
    }

    /// `vals`' bytes followed by a NUL (the parsers' end mark, and what
    /// strtod needs), with the count before the NUL.
    private static func withTerminatedBytes(_ vals: String, _ body: (UnsafeMutablePointer<UInt8>, Int) -> Void) {
        var bytes = Array(vals.utf8)
        bytes.append(0)
        bytes.withUnsafeMutableBufferPointer { buf in body(buf.baseAddress!, buf.count - 1) }
    }

    /// The field at `position` of a row: raw (one number) or roll-up.
    static func bucket(_ vals: String, at position: Int) -> HistoryBucket? {
        var out: HistoryBucket?
        scan(vals, wanted: [(position, 0)]) { _, b in out = b }
        return out
    }

    /// One field starting at `p[i]`, ending at a comma or the NUL.
    private static func parseField(_ p: UnsafeMutablePointer<UInt8>, at i: Int) -> HistoryBucket? {
        guard let (avg, e) = number(p, at: i) else { return nil }
        guard p[e] == UInt8(ascii: ":") else { return HistoryBucket(avg: avg, min: avg, max: avg) }
        guard let (lo, e2) = number(p, at: e + 1), p[e2] == UInt8(ascii: ":"), let (hi, _) = number(p, at: e2 + 1)
        else { return nil }
        return HistoryBucket(avg: avg, min: lo, max: hi)
    }

    /// The number at `p[i]` and the index after it. `-?digits(.digits)?` with
    /// at most 15 digits, as HistorySample.format writes, is read as that
    /// integer over a power of ten: both exact, so one division gives the
    /// correctly rounded value strtod gives, at a fraction of its cost (the
    /// decoding dominated a range query). Anything else goes to strtod.
    private static func number(_ p: UnsafeMutablePointer<UInt8>, at i: Int) -> (Double, Int)? {
        var j = i
        let negative = p[j] == UInt8(ascii: "-")
        if negative { j += 1 }
        var mantissa: Int64 = 0, digits = 0, decimals = 0, dot = false
        while true {
            let c = p[j]
            if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                mantissa = mantissa &* 10 &+ Int64(c - UInt8(ascii: "0"))
                digits += 1
                if dot { decimals += 1 }
            } else if c == UInt8(ascii: "."), !dot {
                dot = true
            } else {
                break
            }
            j += 1
        }
        let next = p[j]
        if digits > 0, digits <= 15, next == 0 || next == UInt8(ascii: ",") || next == UInt8(ascii: ":") {
            let v = Double(mantissa) / powersOfTen[decimals]
            return (negative ? -v : v, j)
        }
        let start = UnsafeMutableRawPointer(p + i).assumingMemoryBound(to: CChar.self)
        var end: UnsafeMutablePointer<CChar>?
        let v = strtod(start, &end)
        guard let e = end, e != start else { return nil }
        return (v, UnsafeMutableRawPointer(e).assumingMemoryBound(to: UInt8.self) - p)
    }

    private static let powersOfTen: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15]
}
