import Glibc

public enum LogLevel: String, Sendable, Comparable {
    case debug, info, warning, error

    var rank: Int { switch self { case .debug: 0; case .info: 1; case .warning: 2; case .error: 3 } }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// A JSON-lines log written with one `write(2)` per line, so lines from many
/// processes appending to one file never interleave. USR1 calls `reopen()`
/// for logrotate.
public final class Log {
    public let path: String?
    public let level: LogLevel
    private var fd: Int32
    private let defaultFD: Int32
    public var fields: [String: String]

    /// `path == nil` writes to `defaultFD` (stderr for the error log).
    public init(path: String?, level: LogLevel = .info, defaultFD: Int32 = 2, fields: [String: String] = [:]) {
        self.path = path == "off" ? nil : path
        self.level = level
        self.defaultFD = path == "off" ? -1 : defaultFD
        self.fields = fields
        self.fd = self.defaultFD
        reopen()
    }

    public var isEnabled: Bool { fd >= 0 }

    public func reopen() {
        guard let path else { return }
        let nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard nfd >= 0 else { return } // keep the old file rather than lose lines
        if fd >= 0 && fd != defaultFD { close(fd) }
        fd = nfd
    }

    public func write(line bytes: [UInt8]) {
        guard fd >= 0 else { return }
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
