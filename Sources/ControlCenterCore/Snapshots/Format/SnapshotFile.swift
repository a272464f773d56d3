/// The on-disk form of one published snapshot.
///
/// Layout (little-endian): a 64-byte header, then tagged sections.
///
///     0  magic "CCSNAP\r\n"     32 item count       u32
///     8  format version  u32    36 section count    u32
///     12 kind            u32    40 payload length   u64
///     16 taken_at ms     i64    48 payload checksum u64
///     24 taken_at mono ns u64   56 reserved         u64
///     (refresh duration µs is the first payload section, see `Tag.meta`)
///
/// A reader rejects anything whose magic, version, kind, length or checksum
/// does not match, so a truncated, corrupt or older-format file is rebuilt
/// rather than served.
struct SnapshotFile {
    static let magic: [UInt8] = Array("CCSNAP\r\n".utf8)
    static let formatVersion: UInt32 = 5
    static let headerSize = 64

    /// Section tags; each kind uses the ones it needs.
    enum Tag: UInt32 {
        case meta = 1          // refresh duration µs (u64)
        case items = 2         // concatenated pre-rendered JSON items
        case index = 3         // per-item records for filtering and sorting
        case body = 4          // default response body, complete (nginx sends it as views/<kind>.json)
        case samples = 5       // counters the next refresh needs for rates
        case portItems = 6     // ports view: JSON items
        case portIndex = 7     // ports view: records
        case viewerBody = 8    // default response body for a viewer token (`.body` is the anonymous one)
        case metrics = 9       // host figures in Prometheus text under node_exporter's names (/metrics)
    }

    var kind: SnapshotKind
    var takenAtMillis: Int64
    var takenAtMonoNanos: UInt64
    var refreshMicros: UInt64
    var itemCount: Int
    var sections: [UInt32: ArraySlice<UInt8>]

    func section(_ t: Tag) -> ArraySlice<UInt8> { sections[t.rawValue] ?? [] }

    static func encode(kind: SnapshotKind, takenAtMillis: Int64, takenAtMonoNanos: UInt64, refreshMicros: UInt64,
                       itemCount: Int, sections: [(Tag, [UInt8])]) -> [UInt8] {
        var meta = ByteWriter(capacity: 8)
        meta.u64(refreshMicros)
        let all = [(Tag.meta, meta.bytes)] + sections
        var payload = ByteWriter(capacity: all.reduce(0) { $0 + $1.1.count + 8 })
        for (tag, bytes) in all {
            payload.u32(tag.rawValue)
            payload.u32(UInt32(bytes.count))
            payload.bytes.append(contentsOf: bytes)
        }
        var h = ByteWriter(capacity: headerSize + payload.bytes.count)
        h.bytes.append(contentsOf: magic)
        h.u32(formatVersion)
        h.u32(kind.code)
        h.i64(takenAtMillis)
        h.u64(takenAtMonoNanos)
        h.u32(UInt32(itemCount))
        h.u32(UInt32(all.count))
        h.u64(UInt64(payload.bytes.count))
        h.u64(checksum(payload.bytes[...]))
        h.u64(0)
        h.bytes.append(contentsOf: payload.bytes)
        return h.bytes
    }

    /// Nil for anything not a complete, intact snapshot of `kind` in this format.
    static func decode(_ bytes: [UInt8], kind: SnapshotKind) -> SnapshotFile? {
        guard bytes.count >= headerSize, bytes.prefix(8).elementsEqual(magic) else { return nil }
        var r = ByteReader(bytes[8..<headerSize])
        guard r.u32() == formatVersion, r.u32() == kind.code,
              let taken = r.i64(), let mono = r.u64(), let count = r.u32(), let nsec = r.u32(),
              let plen = r.u64(), let sum = r.u64(),
              UInt64(bytes.count - headerSize) == plen else { return nil }
        let payload = bytes[headerSize...]
        guard checksum(payload) == sum else { return nil }
        var p = ByteReader(payload)
        var sections: [UInt32: ArraySlice<UInt8>] = [:]
        for _ in 0..<nsec {
            guard let tag = p.u32(), let len = p.u32().map({ Int($0) }), p.offset + len <= payload.endIndex else { return nil }
            sections[tag] = payload[p.offset..<(p.offset + len)]
            p = ByteReader(payload[(p.offset + len)...])
        }
        guard p.atEnd, let metaBytes = sections[Tag.meta.rawValue] else { return nil }
        var m = ByteReader(metaBytes)
        guard let micros = m.u64() else { return nil }
        return SnapshotFile(kind: kind, takenAtMillis: taken, takenAtMonoNanos: mono, refreshMicros: micros,
                            itemCount: Int(count), sections: sections)
    }

    /// 64-bit multiply-rotate over 8-byte words: catches truncation and bit
    /// flips at about 1 ns per 8 bytes; this is integrity, not security.
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        bytes.withUnsafeBytes { raw in
            let words = raw.count / 8
            for i in 0..<words {
                let w = raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                h = (h ^ w) &* 0x100_0000_01B3
                h = (h << 29) | (h >> 35)
            }
            for i in (words * 8)..<raw.count {
                h = (h ^ UInt64(raw[i])) &* 0x100_0000_01B3
            }
        }
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        return h
    }
}
