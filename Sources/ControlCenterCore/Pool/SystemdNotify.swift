import Glibc

/// systemd's readiness protocol without libsystemd: one datagram of
/// `KEY=VALUE` lines to the unix socket named by `$NOTIFY_SOCKET` (a path,
/// or `@name` for the abstract namespace), as sd_notify(3) sends it. Without
/// the variable (not started by systemd) every call does nothing.
public struct SystemdNotify: Sendable {
    let socketPath: String?

    /// The name is taken from the environment once, at master start; the
    /// master removes it from its children's environment (`childEnvironment`)
    /// so that workers and managed services never talk to systemd as us.
    public init(environment: [String: String]) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Every child group is up (`MasterState.isReady`).
    public func ready(status: String) { send(["READY=1", "STATUS=" + status]) }

    /// A HUP began a reload. MONOTONIC_USEC is CLOCK_MONOTONIC in µs: systemd
    /// 253+ wants it with RELOADING=1 (it matches the reload to this
    /// message); 252 (Debian 12) ignores fields it does not know.
    public func reloading(monotonicMicros: UInt64) {
        send(["RELOADING=1", "MONOTONIC_USEC=\(monotonicMicros)", "STATUS=reloading: starting a new generation"])
    }

    /// The master began to stop (QUIT, TERM or INT).
    public func stopping(status: String) { send(["STOPPING=1", "STATUS=" + status]) }

    /// Sends one datagram; returns false if it could not (no socket, or the
    /// send failed: systemd is gone, which is no reason to stop serving).
    @discardableResult
    func send(_ lines: [String]) -> Bool {
        guard let path = socketPath else { return false }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var name = Array(path.utf8)
        let abstract = name.first == UInt8(ascii: "@")
        if abstract { name[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard name.count < capacity else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in name.enumerated() { raw[i] = b }
        }
        // An abstract name is exactly its bytes; a path ends at its NUL.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (abstract ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array((lines.joined(separator: "\n") + "\n").utf8)
        let sent = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
        return sent == message.count
    }
}
