/// Little-endian append-only encoder for the binary parts of snapshot files.
/// Records are decoded once per published file per worker, so a simple
/// sequential format beats fixed layouts in clarity at no measurable cost.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    /// NaN stands for "unknown" (a CPU% on the first snapshot, say).
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            u32(UInt32(buf.count))
            bytes.append(contentsOf: buf)
        }
    }
}

/// Bounds-checked reader: a corrupt file yields `nil`, never a trap.
struct ByteReader {
    let bytes: ArraySlice<UInt8>
    private(set) var offset: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.offset = bytes.startIndex
    }

    var atEnd: Bool { offset >= bytes.endIndex }

    private mutating func fixed<T: FixedWidthInteger>(_: T.Type) -> T? {
        let n = MemoryLayout<T>.size
        guard offset + n <= bytes.endIndex else { return nil }
        let v = bytes.withUnsafeBytes { raw in
            raw.loadUnaligned(fromByteOffset: offset - bytes.startIndex, as: T.self)
        }
        offset += n
        return T(littleEndian: v)
    }

    mutating func u8() -> UInt8? { fixed(UInt8.self) }
    mutating func u16() -> UInt16? { fixed(UInt16.self) }
    mutating func u32() -> UInt32? { fixed(UInt32.self) }
    mutating func u64() -> UInt64? { fixed(UInt64.self) }
    mutating func i32() -> Int32? { fixed(Int32.self) }
    mutating func i64() -> Int64? { fixed(Int64.self) }
    mutating func f64() -> Double? { u64().map { Double(bitPattern: $0) } }

    mutating func string() -> String? {
        guard let n = u32().map({ Int($0) }), offset + n <= bytes.endIndex else { return nil }
        let s = String(decoding: bytes[offset..<(offset + n)], as: UTF8.self)
        offset += n
        return s
    }
}
