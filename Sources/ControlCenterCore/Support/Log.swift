import CSupport
import Glibc

public enum LogLevel: String, Sendable, Comparable {
    case debug, info, warning, error

    var rank: Int { switch self { case .debug: 0; case .info: 1; case .warning: 2; case .error: 3 } }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// A JSON-lines log. Every `write(2)` holds whole lines only, so lines from
/// many processes appending to one file never interleave. USR1 calls
/// `reopen()` for logrotate.
///
/// With a buffer (the access log, like nginx's `access_log buffer= flush=`)
/// lines collect in memory and go out in one write when the next line would
/// not fit, when `flushIfDue` finds the oldest line older than the flush
/// interval, on `reopen()` (to the old file) and on `flush()`.
public final class Log {
    public let path: String?
    public let level: LogLevel
    private var fd: Int32
    private let defaultFD: Int32
    public var fields: [String: String]
    private let buffer: OpaquePointer?
    private let flushIntervalNanos: UInt64
    private var oldestBufferedNanos: UInt64 = 0

    /// `path == nil` writes to `defaultFD` (stderr for the error log).
    /// `bufferSize` 0 writes each line at once.
    public init(path: String?, level: LogLevel = .info, defaultFD: Int32 = 2, fields: [String: String] = [:],
                bufferSize: Int = 0, flushInterval: Double = 1) {
        self.path = path == "off" ? nil : path
        self.level = level
        self.defaultFD = path == "off" ? -1 : defaultFD
        self.fields = fields
        self.fd = self.defaultFD
        self.buffer = bufferSize > 0 && self.defaultFD >= 0 ? cc_linebuf_create(bufferSize) : nil
        self.flushIntervalNanos = UInt64(max(0, flushInterval) * 1e9)
        reopen()
        retarget() // reopen() does nothing without a path, or if the open failed
    }

    deinit {
        flush()
        if let buffer {
            cc_linebuf_forget_on_fatal_signals(buffer)
            cc_linebuf_destroy(buffer)
        }
    }

    public var isEnabled: Bool { fd >= 0 }
    public var isBuffered: Bool { buffer != nil }
    public var bufferedBytes: Int { buffer.map { Int(cc_linebuf_length($0)) } ?? 0 }

    public func reopen() {
        guard let path else { return }
        let nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard nfd >= 0 else { return } // keep the old file rather than lose lines
        flush() // lines written before the rotation belong to the old file
        let old = fd
        fd = nfd
        retarget()
        if old >= 0 && old != defaultFD { close(old) }
    }

    /// One write of a regular file is never interleaved with another
    /// process's; a pipe guarantees that only up to PIPE_BUF bytes.
    private func retarget() {
        guard let buffer else { return }
        var st = stat()
        let regular = fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        cc_linebuf_set_target(buffer, fd, regular ? Int.max : Int(PIPE_BUF))
    }

    /// Writes a fatal signal's pending lines before the process dies (the
    /// worker's access log); SIGKILL still loses them.
    public func flushOnFatalSignals() {
        if let buffer { cc_linebuf_flush_on_fatal_signals(buffer) }
    }

    public func write(line bytes: [UInt8], nowNanos: UInt64 = Clock.monotonicNanos()) {
        guard fd >= 0 else { return }
        if let buffer {
            let appended = bytes.withUnsafeBytes { raw in
                if cc_linebuf_append(buffer, raw.baseAddress, raw.count) != 0 { return true }
                cc_linebuf_flush(buffer)
                return cc_linebuf_append(buffer, raw.baseAddress, raw.count) != 0
            }
            if appended {
                if cc_linebuf_length(buffer) == bytes.count { oldestBufferedNanos = nowNanos }
                return
            }
            // Longer than the whole buffer: straight out, after what was before it.
        }
        writeDirect(bytes)
    }

    /// Flushes when the oldest buffered line has waited the flush interval.
    public func flushIfDue(nowNanos: UInt64 = Clock.monotonicNanos()) {
        guard let buffer, cc_linebuf_length(buffer) > 0,
              nowNanos &- oldestBufferedNanos >= flushIntervalNanos else { return }
        cc_linebuf_flush(buffer)
    }

    public func flush() {
        if let buffer { cc_linebuf_flush(buffer) }
    }

    private func writeDirect(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    public func log(_ level: LogLevel, _ message: String, _ extra: [String: String] = [:]) {
        guard level >= self.level, fd >= 0 else { return }
        var w = JSONWriter()
        w.beginObject()
        w.field("time", Clock.iso8601(Clock.wallSeconds()))
        w.field("level", level.rawValue)
        w.field("msg", message)
        w.field("pid", Int(getpid()))
        for (k, v) in fields.sorted(by: { $0.key < $1.key }) { w.field(k, v) }
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) { w.field(k, v) }
        w.endObject()
        var line = w.bytes
        line.append(0x0A)
        write(line: line)
    }

    public func debug(_ m: String, _ f: [String: String] = [:]) { log(.debug, m, f) }
    public func info(_ m: String, _ f: [String: String] = [:]) { log(.info, m, f) }
    public func warning(_ m: String, _ f: [String: String] = [:]) { log(.warning, m, f) }
    public func error(_ m: String, _ f: [String: String] = [:]) { log(.error, m, f) }
}
