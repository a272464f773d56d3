import Foundation
import Glibc

/// The master's pid file doubles as its lock: it is held with `flock` for the
/// master's whole life, so a second master fails at once, and a stale file
/// (its owner died) is simply locked again and overwritten.
public final class PidFile {
    public let path: String
    private let fd: Int32

    public struct AlreadyRunning: Error, CustomStringConvertible {
        public let pid: String
        public let path: String
        public var description: String { "another master (pid \(pid)) holds \(path)" }
    }

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigError("cannot open pid file \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buf = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buf, 31)
            close(fd)
            let owner = String(decoding: buf.prefix(max(0, n)), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw AlreadyRunning(pid: owner.isEmpty ? "?" : owner, path: path)
        }
        ftruncate(fd, 0)
        let text = Array("\(getpid())\n".utf8)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Reads the pid a pid file names, if any.
    public static func readPid(_ path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buf, 31)
        guard n > 0 else { return nil }
        return Int32(String(decoding: buf.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func remove() {
        unlink(path)
        close(fd)
    }
}
