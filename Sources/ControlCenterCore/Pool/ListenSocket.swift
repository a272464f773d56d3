import CSupport
import Glibc

/// Binds the socket a pool's workers accept on. The master owns it for its
/// whole life, so workers can come and go without a connection being refused.
public enum ListenSocket {
    public struct BindError: Error, CustomStringConvertible {
        public let description: String
    }

    /// A unix socket is mode 0660 with group `group` (nginx's workers' group;
    /// nil keeps the master's own), so only nginx and the master's user can
    /// speak FastCGI to the pool: a direct client would skip nginx's limits
    /// and could claim any REMOTE_ADDR.
    public static func bind(_ address: ListenAddress, backlog: Int, group: gid_t? = nil) throws -> Int32 {
        switch address {
        case .unix(let path): return try bindUnix(path: path, backlog: backlog, group: group)
        case .tcp(let host, let port): return try bindTCP(host: host, port: port, backlog: backlog)
        }
    }

    /// Makes a blocking accept() on `fd` return EAGAIN after `seconds` (0 =
    /// never). Workers buffer access-log lines; this is how an idle worker,
    /// blocked in accept, gets to flush them. Linux honours SO_RCVTIMEO in
    /// accept for AF_UNIX and TCP listeners.
    public static func setAcceptTimeout(_ fd: Int32, seconds: Double) {
        _ = cc_set_accept_timeout(fd, Int(seconds * 1000))
    }

    /// True if something accepts connections at `path` (a live server).
    /// The probe never blocks: a live server with a full backlog answers
    /// EAGAIN, which counts as live.
    public static func isUnixSocketLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = unixAddress(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return rc == 0 || errno == EAGAIN
    }

    static func unixAddress(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    private static func bindUnix(path: String, backlog: Int, group: gid_t?) throws -> Int32 {
        if access(path, F_OK) == 0 {
            // Workers of a master that just died may hold the socket for a
            // moment (they follow it via PDEATHSIG): give them 2 s to go.
            var live = isUnixSocketLive(path)
            var waited = 0.0
            while live && waited < 2 {
                Clock.sleep(seconds: 0.1)
                waited += 0.1
                live = isUnixSocketLive(path)
            }
            if live { throw BindError(description: "another server is listening on \(path)") }
            unlink(path) // stale socket from a master that died
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BindError(description: "socket(): \(String(cString: strerror(errno)))") }
        var addr = unixAddress(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let msg = String(cString: strerror(errno))
            close(fd)
            throw BindError(description: "bind(\(path)): \(msg)")
        }
        if let group, chown(path, uid_t.max, group) != 0 {
            let msg = String(cString: strerror(errno))
            close(fd)
            throw BindError(description: "chown(\(path), group \(group)): \(msg)")
        }
        chmod(path, 0o660)
        guard Glibc.listen(fd, Int32(clamping: backlog)) == 0 else {
            close(fd)
            throw BindError(description: "listen(\(path)): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    private static func bindTCP(host: String, port: Int, backlog: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var res: UnsafeMutablePointer<addrinfo>?
        let gai = getaddrinfo(host, String(port), &hints, &res)
        guard gai == 0, let ai = res else {
            throw BindError(description: "cannot resolve \(host): \(String(cString: gai_strerror(gai)))")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BindError(description: "socket(): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else {
            let msg = String(cString: strerror(errno))
            close(fd)
            throw BindError(description: "bind(\(host):\(port)): \(msg)")
        }
        guard Glibc.listen(fd, Int32(clamping: backlog)) == 0 else {
            close(fd)
            throw BindError(description: "listen(\(host):\(port)): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}
