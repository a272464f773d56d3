import Foundation
import Glibc

/// An IPv4 or IPv6 network in CIDR notation (RFC 4632, RFC 4291 section 2.3),
/// as nginx's `geo` and `set_real_ip_from` take it: `10.0.0.0/8`, `::1`,
/// `2001:db8::/32`. A bare address is a single host (/32 or /128).
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public let address: String
    public let prefixLength: Int
    public let isIPv6: Bool

    /// Throws ConfigError for anything inet_pton(3) does not read as an
    /// address, or a prefix length outside 0...32 (IPv4) or 0...128 (IPv6).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let addr = parts[0]
        var buf = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, addr, &buf) == 1 {
            isIPv6 = false
        } else if inet_pton(AF_INET6, addr, &buf) == 1 {
            isIPv6 = true
        } else {
            throw ConfigError("'\(text)' is not an IPv4 or IPv6 address or CIDR")
        }
        let maxLength = isIPv6 ? 128 : 32
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...maxLength).contains(n) else {
                throw ConfigError("'\(text)': prefix length must be 0...\(maxLength)")
            }
            prefixLength = n
        } else {
            prefixLength = maxLength
        }
        address = addr
    }

    public var description: String {
        prefixLength == (isIPv6 ? 128 : 32) ? address : "\(address)/\(prefixLength)"
    }

    /// A comma-separated list; empty text is an empty list.
    public static func list(_ text: String, setting: String) throws -> [CIDR] {
        try text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map {
            do { return try CIDR(parsing: $0) } catch let e as ConfigError { throw ConfigError("\(setting): \(e.description)") }
        }
    }

    /// True when `address` (a literal, as nginx's `$remote_addr` gives it) is
    /// inside this network; an address of the other family never is.
    public func contains(_ address: String) -> Bool {
        let family = isIPv6 ? AF_INET6 : AF_INET
        var net = [UInt8](repeating: 0, count: 16), addr = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, self.address, &net) == 1, inet_pton(family, address, &addr) == 1 else { return false }
        var bits = prefixLength
        for i in 0..<(isIPv6 ? 16 : 4) where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if net[i] & mask != addr[i] & mask { return false }
            bits -= 8
        }
        return true
    }

    /// True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback).
    public static func isLoopback(_ address: String) -> Bool {
        var buf = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, address, &buf) == 1 { return buf[0] == 127 }
        if inet_pton(AF_INET6, address, &buf) == 1 {
            if buf[0..<15].allSatisfy({ $0 == 0 }) && buf[15] == 1 { return true }
            return buf[0..<10].allSatisfy({ $0 == 0 }) && buf[10] == 0xff && buf[11] == 0xff && buf[12] == 127
        }
        return false
    }
}
