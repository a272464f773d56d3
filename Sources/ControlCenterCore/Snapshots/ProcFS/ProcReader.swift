import Glibc

/// Reads small kernel files (/proc, /sys) into one reusable buffer: a scan of
/// a few hundred processes opens about a thousand files, so per-file
/// allocations and String round trips would dominate its cost.
final class ProcReader {
    private(set) var buffer: UnsafeMutableRawBufferPointer
    private var path = [CChar](repeating: 0, count: 512)

    init(capacity: Int = 64 << 10) {
        buffer = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { buffer.deallocate() }

    /// Bytes read from `path` into `buffer`, or nil. Reads at most `limit`.
    func read(_ path: String, limit: Int? = nil) -> UnsafeRawBufferPointer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return read(fd: fd, limit: limit)
    }

    /// `/proc/<pid>/<leaf>` without building a Swift String per file.
    func read(pid: Int32, _ leaf: StaticString, limit: Int? = nil) -> UnsafeRawBufferPointer? {
        let fd = openProc(pid: pid, leaf)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return read(fd: fd, limit: limit)
    }

    func openProc(pid: Int32, _ leaf: StaticString, flags: Int32 = O_RDONLY | O_CLOEXEC) -> Int32 {
        path.withUnsafeMutableBufferPointer { p in
            var i = 0
            for c in "/proc/".utf8 { p[i] = CChar(bitPattern: c); i += 1 }
            var digits: [CChar] = []
            var n = Int(pid)
            repeat { digits.append(CChar(48 + n % 10)); n /= 10 } while n > 0
            for d in digits.reversed() { p[i] = d; i += 1 }
            p[i] = CChar(bitPattern: UInt8(ascii: "/")); i += 1
            leaf.withUTF8Buffer { for c in $0 { p[i] = CChar(bitPattern: c); i += 1 } }
            if leaf.utf8CodeUnitCount == 0 { i -= 1 }
            p[i] = 0
            return open(p.baseAddress!, flags)
        }
    }

    private func read(fd: Int32, limit: Int?) -> UnsafeRawBufferPointer? {
        var off = 0
        while true {
            if limit == nil && off == buffer.count { grow() }
            let cap = min(limit ?? buffer.count, buffer.count)
            if off >= cap { break }
            let n = Glibc.read(fd, buffer.baseAddress! + off, cap - off)
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            off += n
        }
        return UnsafeRawBufferPointer(start: buffer.baseAddress, count: off)
    }

    private func grow() {
        let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 8)
        bigger.copyMemory(from: UnsafeRawBufferPointer(buffer))
        buffer.deallocate()
        buffer = bigger
    }

    /// Whole file as a String (small config-like files only).
    func string(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A one-line /sys value, trimmed.
    func line(_ path: String) -> String? {
        guard let b = read(path, limit: 4096) else { return nil }
        var end = b.count
        while end > 0 && (b[end - 1] == 0x0A || b[end - 1] == 0x20) { end -= 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: b[0..<end]), as: UTF8.self)
    }

    func uint(_ path: String) -> UInt64? {
        guard let b = read(path, limit: 64) else { return nil }
        var s = FieldScanner(b)
        return s.uint()
    }

    func readlink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = Glibc.readlink(path, &buf, 4096)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A cursor over bytes for the whitespace-separated numbers /proc is made of.
struct FieldScanner {
    let b: UnsafeRawBufferPointer
    var i = 0

    init(_ b: UnsafeRawBufferPointer, at i: Int = 0) {
        self.b = b
        self.i = i
    }

    var atEnd: Bool { i >= b.count }

    mutating func skipSpaces() {
        while i < b.count && (b[i] == 0x20 || b[i] == 0x09) { i += 1 }
    }

    mutating func skipField() {
        skipSpaces()
        while i < b.count && b[i] != 0x20 && b[i] != 0x09 && b[i] != 0x0A { i += 1 }
    }

    mutating func skipFields(_ n: Int) { for _ in 0..<n { skipField() } }

    mutating func uint(base: UInt64 = 10) -> UInt64? {
        skipSpaces()
        var v: UInt64 = 0
        var any = false
        while i < b.count {
            let c = b[i]
            let d: UInt64
            if c >= 0x30 && c <= 0x39 { d = UInt64(c - 0x30) }
            else if base == 16 && c >= 0x41 && c <= 0x46 { d = UInt64(c - 0x41 + 10) }
            else if base == 16 && c >= 0x61 && c <= 0x66 { d = UInt64(c - 0x61 + 10) }
            else { break }
            v = v &* base &+ d
            any = true
            i += 1
        }
        return any ? v : nil
    }

    mutating func int() -> Int64? {
        skipSpaces()
        if i < b.count && b[i] == 0x2D {
            i += 1
            return uint().map { -Int64($0) }
        }
        return uint().map { Int64($0) }
    }

    mutating func word() -> String {
        skipSpaces()
        let start = i
        while i < b.count && b[i] != 0x20 && b[i] != 0x09 && b[i] != 0x0A { i += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    }

    mutating func expect(_ c: UInt8) -> Bool {
        if i < b.count && b[i] == c { i += 1; return true }
        return false
    }

    mutating func nextLine() {
        while i < b.count && b[i] != 0x0A { i += 1 }
        if i < b.count { i += 1 }
    }

    /// Moves past the next occurrence of `needle`; false if absent.
    mutating func find(_ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        return needle.withUTF8Buffer { nb in
            guard n > 0, b.count >= n else { return false }
            var j = i
            while j + n <= b.count {
                if b[j] == nb[0] {
                    var k = 1
                    while k < n && b[j + k] == nb[k] { k += 1 }
                    if k == n { i = j + n; return true }
                }
                j += 1
            }
            return false
        }
    }
}

/// Lines of a text file as Substrings of one String: fine for small files.
func procLines(_ text: String) -> [Substring] { text.split(separator: "\n") }
