/// Decoded `application/x-www-form-urlencoded` pairs, in order, repeats kept.
public struct QueryParameters: Sendable {
    public private(set) var pairs: [(String, String)] = []

    public init(parsing raw: String) {
        guard !raw.isEmpty else { return }
        for part in raw.split(separator: "&", omittingEmptySubsequences: true) {
            if let eq = part.firstIndex(of: "=") {
                pairs.append((Self.decode(part[..<eq]), Self.decode(part[part.index(after: eq)...])))
            } else {
                pairs.append((Self.decode(part), ""))
            }
        }
    }

    /// The first value for `name`.
    public subscript(_ name: String) -> String? {
        pairs.first { $0.0 == name }?.1
    }

    public func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }

    public var names: [String] { pairs.map(\.0) }

    /// Percent-decoding with `+` as space; invalid escapes are kept literally
    /// and invalid UTF-8 is repaired, so decoding never fails.
    public static func decode<S: StringProtocol>(_ s: S) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            switch c {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if it.count >= 2, let h = hexValue(it[it.startIndex]), let l = hexValue(it[it.startIndex + 1]) {
                    out.append(h << 4 | l)
                    it = it.dropFirst(2)
                } else {
                    out.append(c)
                }
            default: out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
