import Glibc

struct InterfaceSample {
    /// `label` is the IPv4 address label (`ip addr ... label X:1`); nil for IPv6, which has none.
    struct Address: Equatable { var family: String; var address: String; var prefix: Int; var label: String? }

    var name: String
    var mac: String?
    var mtu: Int?
    var isUp: Bool
    var operState: String?
    var addresses: [Address] = []
    var counters: [String: UInt64] = [:]   // statistics/<name>

    static let counterNames = ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets",
                               "rx_errors", "tx_errors", "rx_dropped", "tx_dropped"]
}

/// Interfaces from /sys/class/net, addresses from getifaddrs (netlink).
final class InterfaceScanner {
    let reader = ProcReader(capacity: 8192)

    func scan() -> [InterfaceSample] {
        guard let dir = opendir("/sys/class/net") else { return [] }
        var names: [String] = []
        while let ent = readdir(dir) {
            let n = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !n.hasPrefix(".") { names.append(n) }
        }
        closedir(dir)
        names.sort()
        let addrs = addresses()
        return names.map { name in
            let base = "/sys/class/net/\(name)/"
            let flags = reader.line(base + "flags").flatMap { UInt32($0.dropFirst(2), radix: 16) } ?? 0
            var s = InterfaceSample(name: name, mac: reader.line(base + "address"),
                                    mtu: reader.line(base + "mtu").flatMap { Int($0) },
                                    isUp: flags & UInt32(IFF_UP) != 0, operState: reader.line(base + "operstate"))
            s.addresses = addrs[name] ?? []
            for c in InterfaceSample.counterNames {
                s.counters[c] = reader.uint(base + "statistics/" + c)
            }
            return s
        }
    }

    /// getifaddrs names an IPv4 address by its label, which for an alias
    /// (`eth0:1`) is not an interface; the interface is the part before the
    /// colon (interface names cannot hold one, and the kernel's own ioctls
    /// strip an alias suffix the same way).
    static func interfaceName(ofLabel label: String) -> String {
        label.firstIndex(of: ":").map { String(label[..<$0]) } ?? label
    }

    private func addresses() -> [String: [InterfaceSample.Address]] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [:] }
        defer { freeifaddrs(head) }
        var out: [String: [InterfaceSample.Address]] = [:]
        var p = head
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr, let cname = ifa.pointee.ifa_name else { continue }
            let label = String(cString: cname)
            let fam = Int32(sa.pointee.sa_family)
            guard fam == AF_INET || fam == AF_INET6 else { continue }
            var buf = [CChar](repeating: 0, count: 64)
            var prefix = 0
            if fam == AF_INET {
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &a, &buf, 64)
                }
                if let m = ifa.pointee.ifa_netmask {
                    m.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { prefix = $0.pointee.sin_addr.s_addr.nonzeroBitCount }
                }
            } else {
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    var a = sin.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &a, &buf, 64)
                }
                if let m = ifa.pointee.ifa_netmask {
                    m.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                        withUnsafeBytes(of: sin.pointee.sin6_addr) { prefix = $0.reduce(0) { $0 + $1.nonzeroBitCount } }
                    }
                }
            }
            out[Self.interfaceName(ofLabel: label), default: []].append(
                .init(family: fam == AF_INET ? "ipv4" : "ipv6",
                      address: String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                      prefix: prefix, label: fam == AF_INET ? label : nil))
        }
        return out
    }
}
