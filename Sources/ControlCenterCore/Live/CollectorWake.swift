import Glibc

/// "New events were committed": a one-byte datagram from a request worker
/// to the collector's socket (`$CC_STATE_DIR/run/collector.wake`), so that
/// it publishes the new rows at once instead of at its next sample. Request
/// workers never publish themselves (a publish waits for nginx's fan-out).
/// Lossy by design: a full queue, a missing collector or any error drops the
/// wake, and the collector's own check every sample catches up.
public enum CollectorWake {
    /// This process's unbound sending socket (non-blocking), made on first use.
    nonisolated(unsafe) private static var sender: Int32 = -1

    /// Sends one wake to `path`; never blocks, never fails the caller.
    public static func notify(path: String) {
        if sender < 0 { sender = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        guard sender >= 0, var addr = address(path) else { return }
        var byte: UInt8 = 1
        _ = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(sender, &byte, 1, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// The collector's receiving socket at `path` (a stale one is replaced),
    /// non-blocking; mode 0660, so only the master's user and the request
    /// workers' group (CC_USER's, which run/ passes on: StatePermissions) may
    /// wake it. Returns -1 with errno on failure.
    public static func bind(path: String) -> Int32 {
        guard var addr = address(path) else { errno = ENAMETOOLONG; return -1 }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        unlink(path)
        let old = umask(0o117)
        defer { umask(old) }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { close(fd); return -1 }
        return fd
    }

    /// Reads every queued wake; true if there was at least one.
    public static func drain(_ fd: Int32) -> Bool {
        var buf = [UInt8](repeating: 0, count: 64)
        var any = false
        while recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT)) >= 0 { any = true }
        return any
    }

    private static func address(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return addr
    }
}
