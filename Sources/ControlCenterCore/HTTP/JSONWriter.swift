/// Writes JSON straight into a byte buffer.
///
/// Foundation's JSONEncoder costs ~10x more per list and its key order is not
/// stable, so responses and snapshots are written with this instead. Commas are
/// tracked with one bit per open container, so callers only say what to write.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8]
    private var needsComma: [Bool] = [false]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // MARK: containers

    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma.append(false) }
    public mutating func endObject() { needsComma.removeLast(); bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma.append(false) }
    public mutating func endArray() { needsComma.removeLast(); bytes.append(UInt8(ascii: "]")) }

    public mutating func beginObject(_ key: String) { self.key(key); beginObject() }
    public mutating func beginArray(_ key: String) { self.key(key); beginArray() }

    /// Writes `"key":` and leaves the writer expecting the value.
    public mutating func key(_ key: String) {
        separate()
        appendQuoted(key)
        bytes.append(UInt8(ascii: ":"))
        pendingValue = true
    }

    /// Set between a key and its value: the value must not write a comma.
    private var pendingValue = false

    private mutating func separate() {
        if pendingValue {
            pendingValue = false
            return
        }
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
    }

    // MARK: values

    public mutating func string(_ s: String) { separate(); appendQuoted(s) }
    public mutating func string(_ s: String?) { if let s { string(s) } else { null() } }
    public mutating func int(_ v: Int) { separate(); appendInt(v) }
    public mutating func int(_ v: Int?) { if let v { int(v) } else { null() } }
    public mutating func uint64(_ v: UInt64) { separate(); appendUInt(v) }
    public mutating func bool(_ v: Bool) { separate(); bytes.append(contentsOf: v ? trueBytes : falseBytes) }
    public mutating func null() { separate(); bytes.append(contentsOf: nullBytes) }

    /// Doubles are rounded to `places` decimals; NaN and infinity become null.
    public mutating func double(_ v: Double, places: Int = 2) {
        separate()
        guard v.isFinite else { bytes.append(contentsOf: nullBytes); return }
        appendDouble(v, places: places)
    }

    public mutating func double(_ v: Double?, places: Int = 2) {
        if let v { double(v, places: places) } else { null() }
    }

    /// An RFC 3339 timestamp string, written straight into the buffer.
    public mutating func timestamp(_ seconds: Double) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        Clock.appendISO8601(seconds, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func field(_ k: String, timestamp seconds: Double) { key(k); timestamp(seconds) }

    /// Splices already-serialised JSON (a pre-rendered snapshot item, say).
    public mutating func raw<C: Collection>(_ json: C) where C.Element == UInt8 {
        separate()
        bytes.append(contentsOf: json)
    }

    // MARK: key + value shorthands

    public mutating func field(_ k: String, _ v: String) { key(k); string(v) }
    public mutating func field(_ k: String, _ v: String?) { key(k); string(v) }
    public mutating func field(_ k: String, _ v: Int) { key(k); int(v) }
    public mutating func field(_ k: String, _ v: Int?) { key(k); int(v) }
    public mutating func field(_ k: String, _ v: UInt64) { key(k); uint64(v) }
    public mutating func field(_ k: String, _ v: Bool) { key(k); bool(v) }
    public mutating func field(_ k: String, _ v: Double, places: Int = 2) { key(k); double(v, places: places) }
    public mutating func field(_ k: String, _ v: Double?, places: Int = 2) { key(k); double(v, places: places) }
    public mutating func nullField(_ k: String) { key(k); null() }

    // MARK: encoding

    private mutating func appendQuoted(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { buf in
            var start = 0
            for i in 0..<buf.count {
                let c = buf[i]
                if c >= 0x20 && c != 0x22 && c != 0x5C { continue }
                if start < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<i])) }
                start = i + 1
                switch c {
                case 0x22: bytes.append(0x5C); bytes.append(0x22)
                case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
                case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
                default:
                    bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              hexDigits[Int(c >> 4)], hexDigits[Int(c & 0xF)]])
                }
            }
            if start < buf.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<buf.count])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendInt(_ v: Int) {
        if v < 0 {
            bytes.append(UInt8(ascii: "-"))
            appendUInt(UInt64(v.magnitude))
        } else {
            appendUInt(UInt64(v))
        }
    }

    private mutating func appendUInt(_ v: UInt64) {
        if v < 10 { bytes.append(UInt8(ascii: "0") + UInt8(v)); return }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = v
        var count = 0
        withUnsafeMutableBytes(of: &tmp) { raw in
            while n > 0 {
                raw[19 - count] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
                count += 1
            }
            bytes.append(contentsOf: raw[(20 - count)..<20])
        }
    }

    private mutating func appendDouble(_ v: Double, places: Int) {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (v * scale).rounded()
        if abs(scaled) >= 9.0e15 {
            // Too large for exact integer scaling; Swift's shortest form is valid JSON.
            bytes.append(contentsOf: Array(v.description.utf8))
            return
        }
        var whole = Int64(scaled)
        if whole < 0 { bytes.append(UInt8(ascii: "-")); whole = -whole }
        let s = Int64(scale)
        appendUInt(UInt64(whole / s))
        var frac = whole % s
        guard places > 0, frac != 0 else { return }
        // Digits written in place, trailing zeros dropped: no array per number.
        var kept = places
        while frac % 10 == 0 { frac /= 10; kept -= 1 }
        bytes.append(UInt8(ascii: "."))
        let at = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: kept))
        var i = at + kept - 1
        while frac > 0 {
            bytes[i] = UInt8(ascii: "0") + UInt8(frac % 10)
            frac /= 10
            i -= 1
        }
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
private let trueBytes: [UInt8] = Array("true".utf8)
private let falseBytes: [UInt8] = Array("false".utf8)
private let nullBytes: [UInt8] = Array("null".utf8)
