import Glibc

/// One socket from /proc/net/{tcp,tcp6,udp,udp6}.
struct SocketSample {
    enum Proto: UInt8, CaseIterable {
        case tcp = 0, tcp6, udp, udp6
        var name: String { ["tcp", "tcp6", "udp", "udp6"][Int(rawValue)] }
        var file: String { "/proc/net/" + name }
        var isTCP: Bool { self == .tcp || self == .tcp6 }
    }

    var proto: Proto
    var localAddress: String
    var localPort: UInt16
    var remoteAddress: String
    var remotePort: UInt16
    var state: UInt8
    var uid: UInt32
    var inode: UInt64

    /// Names as psutil and the old dashboard use them; UDP has no state but
    /// "connected", which shows as ESTABLISHED.
    var stateName: String {
        if !proto.isTCP { return state == 1 ? "ESTABLISHED" : "NONE" }
        return tcpStateName(state)
    }

    /// Listening TCP, or UDP bound but not connected: what /ports lists.
    var isListening: Bool { proto.isTCP ? state == 0x0A : (state == 0x07 && localPort != 0) }
}

func tcpStateName(_ s: UInt8) -> String {
    switch s {
    case 0x01: "ESTABLISHED"
    case 0x02: "SYN_SENT"
    case 0x03: "SYN_RECV"
    case 0x04: "FIN_WAIT1"
    case 0x05: "FIN_WAIT2"
    case 0x06: "TIME_WAIT"
    case 0x07: "CLOSE"
    case 0x08: "CLOSE_WAIT"
    case 0x09: "LAST_ACK"
    case 0x0A: "LISTEN"
    case 0x0B: "CLOSING"
    case 0x0C: "NEW_SYN_RECV"
    default: "UNKNOWN"
    }
}

let allSocketStateNames = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
                           "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "NONE"]

/// Parses the kernel's socket tables and maps socket inodes to processes.
final class SocketScanner {
    let reader = ProcReader(capacity: 256 << 10)

    func sockets(_ protos: [SocketSample.Proto] = SocketSample.Proto.allCases) -> [SocketSample] {
        var out: [SocketSample] = []
        for proto in protos {
            guard let b = reader.read(proto.file) else { continue }
            var s = FieldScanner(b)
            s.nextLine() // header
            while !s.atEnd {
                if let sock = parseLine(&s, proto) { out.append(sock) }
                s.nextLine()
            }
        }
        return out
    }

    /// Only the state column, for the summary the network view carries.
    func stateCounts() -> (tcp: [UInt8: Int], udp: Int) {
        var tcp: [UInt8: Int] = [:]
        var udp = 0
        for sock in sockets() {
            if sock.proto.isTCP { tcp[sock.state, default: 0] += 1 } else { udp += 1 }
        }
        return (tcp, udp)
    }

    //   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    private func parseLine(_ s: inout FieldScanner, _ proto: SocketSample.Proto) -> SocketSample? {
        s.skipField() // "0:"
        guard let (la, lp) = address(&s, v6: proto == .tcp6 || proto == .udp6),
              let (ra, rp) = address(&s, v6: proto == .tcp6 || proto == .udp6),
              let st = s.uint(base: 16) else { return nil }
        s.skipFields(3)
        guard let uid = s.uint() else { return nil }
        s.skipFields(1)
        guard let inode = s.uint() else { return nil }
        return SocketSample(proto: proto, localAddress: la, localPort: lp, remoteAddress: ra, remotePort: rp,
                            state: UInt8(truncatingIfNeeded: st), uid: UInt32(truncatingIfNeeded: uid), inode: inode)
    }

    /// "0100007F:1F90": the address is the kernel's in-memory words printed
    /// in hex, i.e. each 32-bit word byte-swapped on little-endian hosts.
    private func address(_ s: inout FieldScanner, v6: Bool) -> (String, UInt16)? {
        s.skipSpaces()
        var raw = [UInt8](repeating: 0, count: 16)
        let words = v6 ? 4 : 1
        for w in 0..<words {
            var word: UInt32 = 0
            for _ in 0..<8 {
                guard s.i < s.b.count, let d = hexDigit(s.b[s.i]) else { return nil }
                word = word << 4 | UInt32(d)
                s.i += 1
            }
            // The printed value is the word as this CPU holds it, so its
            // in-memory bytes are the address in network order.
            withUnsafeBytes(of: word) { bytes in
                for k in 0..<4 { raw[w * 4 + k] = bytes[k] }
            }
        }
        guard s.expect(UInt8(ascii: ":")), let port = s.uint(base: 16) else { return nil }
        var buf = [CChar](repeating: 0, count: 64)
        let family = v6 ? AF_INET6 : AF_INET
        let ok = raw.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buf, 64) } != nil
        guard ok else { return nil }
        var text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if v6, text.hasPrefix("::ffff:"), text.contains(".") { text = String(text.dropFirst(7)) }
        return (text, UInt16(truncatingIfNeeded: port))
    }

    private func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// socket inode -> every pid holding it, ascending (forked children
    /// share their parent's sockets), from the `socket:[inode]` links under
    /// /proc/*/fd.
    func socketOwners(pids: [Int32]) -> [UInt64: [Int32]] {
        var owners: [UInt64: [Int32]] = [:]
        var link = [CChar](repeating: 0, count: 64)
        for pid in pids.sorted() {
            let dfd = reader.openProc(pid: pid, "fd", flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dfd >= 0, let dir = fdopendir(dfd) else { continue }
            defer { closedir(dir) }
            while let ent = readdir(dir) {
                guard ent.pointee.d_name.0 != 0x2E else { continue } // "." and ".."
                let n = withUnsafePointer(to: ent.pointee.d_name) { name in
                    name.withMemoryRebound(to: CChar.self, capacity: 256) { readlinkat(dfd, $0, &link, 63) }
                }
                // "socket:[12345]"
                guard n > 9, link[0] == 0x73, link[6] == 0x3A, link[7] == 0x5B else { continue }
                var inode: UInt64 = 0
                for i in 8..<n {
                    let c = UInt8(bitPattern: link[i])
                    guard c >= 0x30 && c <= 0x39 else { break }
                    inode = inode * 10 + UInt64(c - 0x30)
                }
                if owners[inode]?.last != pid { owners[inode, default: []].append(pid) }
            }
        }
        return owners
    }

    func comm(_ pid: Int32) -> String? {
        guard let b = reader.read(pid: pid, "comm", limit: 64) else { return nil }
        var end = b.count
        while end > 0 && b[end - 1] == 0x0A { end -= 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: b[0..<end]), as: UTF8.self)
    }
}
