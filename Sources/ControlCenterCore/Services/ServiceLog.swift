import Foundation
import Glibc

/// A service's output: `<CC_STATE_DIR>/services/<name>/<offset>.log`, where
/// `offset` is the position of the file's first byte in everything the
/// service ever wrote. The newest file is the one being written; at
/// `maxBytes` the writer starts a new one (only between lines, so none is
/// split) and deletes the oldest beyond `maxFiles`. So a position is a
/// cursor that stays valid across rotations, and one older than the oldest
/// file is known to be lost (`truncated`). The supervisor writes
/// (`ServiceLogWriter`), workers read (`ServiceLogReader`): one format, one file.
public enum ServiceLogFiles {
    /// The directory of one service; `name` is a validated service name.
    public static func directory(_ root: String, _ name: String) -> String { root + "/" + name }

    /// Every file of a service as (start offset, path), oldest first.
    public static func segments(_ dir: String) -> [(start: UInt64, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { n -> (UInt64, String)? in
            guard n.hasSuffix(".log"), let start = UInt64(n.dropLast(4)) else { return nil }
            return (start, dir + "/" + n)
        }.sorted { $0.0 < $1.0 }
    }

    static func size(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_size) : 0
    }

    static func fileName(_ start: UInt64) -> String { String(format: "%020llu.log", start) }
}

/// Appends whole lines to a service's log files and rotates them by size.
final class ServiceLogWriter {
    let dir: String
    let maxBytes: UInt64
    let maxFiles: Int
    private var fd: Int32 = -1
    private var start: UInt64 = 0
    private var size: UInt64 = 0

    init(root: String, name: String, maxBytes: UInt64, maxFiles: Int) {
        dir = ServiceLogFiles.directory(root, name)
        self.maxBytes = maxBytes
        self.maxFiles = maxFiles
        mkdir(dir, 0o750)
        if let last = ServiceLogFiles.segments(dir).last {
            start = last.start
            size = ServiceLogFiles.size(last.path)
        }
        open(at: start)
    }

    deinit { if fd >= 0 { close(fd) } }

    private func open(at offset: UInt64) {
        if fd >= 0 { close(fd) }
        fd = Glibc.open(dir + "/" + ServiceLogFiles.fileName(offset), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        start = offset
    }

    /// Writes `lines` (whole lines, each ending in a newline) to the current
    /// file, first starting a new one if they would not fit.
    func append(_ lines: ArraySlice<UInt8>) {
        guard !lines.isEmpty else { return }
        if size > 0 && size + UInt64(lines.count) > maxBytes { rotate() }
        lines.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue } else { return } }
                done += n
            }
        }
        size += UInt64(lines.count)
    }

    private func rotate() {
        open(at: start + size)
        size = 0
        let all = ServiceLogFiles.segments(dir)
        for old in all.dropLast(maxFiles) { unlink(old.path) }
    }
}

/// Reads a service's log from the end, or from a cursor, without loading
/// whole files: a tail reads backwards in `chunk`-byte steps until it has
/// its lines.
public enum ServiceLogReader {
    public struct Page: Equatable {
        public var lines: [String]
        /// The cursor after the last line returned (pass it as `since`).
        public var next: UInt64
        /// The cursor asked for was older than the oldest file kept.
        public var truncated: Bool
    }

    static let chunk = 65_536

    static func read(_ path: String, at offset: UInt64, count: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return n > 0 ? Array(buf.prefix(n)) : []
    }

    /// The last `lines` whole lines.
    public static func tail(_ dir: String, lines want: Int) -> Page {
        let segs = ServiceLogFiles.segments(dir)
        guard let last = segs.last else { return Page(lines: [], next: 0, truncated: false) }
        let end = last.start + ServiceLogFiles.size(last.path)
        var collected: [[UInt8]] = []   // lines, newest first
        var carry: [UInt8] = []         // the start of a line whose beginning is in an earlier chunk
        outer: for seg in segs.reversed() {
            var pos = ServiceLogFiles.size(seg.path)
            while pos > 0 {
                let n = min(UInt64(chunk), pos)
                pos -= n
                var bytes = read(seg.path, at: pos, count: Int(n)) + carry
                if collected.isEmpty && carry.isEmpty, bytes.last == 0x0A { bytes.removeLast() }
                var parts = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
                carry = Array(parts.removeFirst())
                for p in parts.reversed() {
                    collected.append(Array(p))
                    if collected.count == want { break outer }
                }
            }
        }
        if collected.count < want && !carry.isEmpty { collected.append(carry) }
        return Page(lines: collected.reversed().map { String(decoding: $0, as: UTF8.self) }, next: end, truncated: false)
    }

    /// Up to `lines` whole lines from `cursor` on; a partial last line waits for the next call.
    public static func since(_ dir: String, cursor: UInt64, lines want: Int) -> Page {
        let segs = ServiceLogFiles.segments(dir)
        guard let first = segs.first else { return Page(lines: [], next: cursor, truncated: false) }
        var pos = cursor
        var truncated = false
        if pos < first.start {
            pos = first.start
            truncated = true
        }
        var out: [String] = []
        for seg in segs {
            let size = ServiceLogFiles.size(seg.path)
            guard pos < seg.start + size else { continue }
            if pos < seg.start { pos = seg.start }
            while out.count < want, pos < seg.start + size {
                let bytes = read(seg.path, at: pos - seg.start, count: min(chunk, Int(seg.start + size - pos)))
                guard let lastNewline = bytes.lastIndex(of: 0x0A) else { break }
                var consumed = 0
                for line in bytes[...lastNewline].split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
                    guard out.count < want else { break }
                    out.append(String(decoding: line, as: UTF8.self))
                    consumed += line.count + 1
                }
                pos += UInt64(consumed)
            }
            if out.count >= want { break }
        }
        return Page(lines: out, next: pos, truncated: truncated)
    }
}

/// The read end of one service's output pipe in the supervisor: bytes in,
/// whole lines out to the service's `ServiceLogWriter`. A line longer than
/// `maxLine` is cut into `maxLine`-byte lines (so a reader's chunk always
/// holds a line end); a last line without a newline gets one at EOF.
final class ServiceOutputPipe {
    static let maxLine = 16_384
    let fd: Int32
    let writer: ServiceLogWriter
    private var pending: [UInt8] = []

    init(fd: Int32, writer: ServiceLogWriter) {
        self.fd = fd
        self.writer = writer
    }

    /// Reads what is there; false at EOF (every writer has closed it).
    func pump() -> Bool {
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n > 0 {
                pending += buf[0..<n]
                flushLines()
                continue
            }
            if n == 0 {
                if !pending.isEmpty { pending.append(0x0A) }
                flushLines()
                return false
            }
            return errno == EAGAIN || errno == EINTR
        }
    }

    private func flushLines() {
        while pending.count > Self.maxLine, pending[..<Self.maxLine].firstIndex(of: 0x0A) == nil {
            writer.append(pending[..<Self.maxLine] + [0x0A])
            pending.removeFirst(Self.maxLine)
        }
        if let last = pending.lastIndex(of: 0x0A) {
            writer.append(pending[...last])
            pending.removeFirst(last + 1)
        }
    }
}
