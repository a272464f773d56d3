import Crypto
import Foundation

/// The claims this service issues and accepts. `tv` is the user's token
/// version: a password change bumps it, which invalidates every older token
/// of that user at once, not only the one being used.
public struct JWTClaims: Sendable, Equatable {
    public var sub: String
    public var userID: Int64
    public var role: String
    public var iat: Int64
    public var exp: Int64
    public var jti: String
    public var type: String
    public var tokenVersion: Int

    public init(sub: String, userID: Int64, role: String, iat: Int64, exp: Int64, jti: String,
                type: String = "access", tokenVersion: Int = 0) {
        self.sub = sub
        self.userID = userID
        self.role = role
        self.iat = iat
        self.exp = exp
        self.jti = jti
        self.type = type
        self.tokenVersion = tokenVersion
    }
}

public enum JWTError: Error, Equatable {
    case malformed, unsupportedAlgorithm, badSignature, expired, notYetValid, wrongType

    public var message: String {
        switch self {
        case .malformed: return "Malformed token"
        case .unsupportedAlgorithm: return "Unsupported token algorithm"
        case .badSignature: return "Invalid token signature"
        case .expired: return "Token expired"
        case .notYetValid: return "Token not yet valid"
        case .wrongType: return "Wrong token type"
        }
    }
}

/// HS256 with swift-crypto's HMAC; the signature check is its constant-time
/// `isValidAuthenticationCode`. Only `alg: HS256` is accepted: a token
/// naming any other algorithm (`none` included) is refused before any
/// signature work.
public struct JWTSigner {
    private let key: SymmetricKey
    static let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    public init(secret: [UInt8]) {
        key = SymmetricKey(data: secret)
    }

    public func sign(_ c: JWTClaims) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("sub", c.sub)
        w.field("user_id", Int(c.userID))
        w.field("role", c.role)
        w.field("iat", Int(c.iat))
        w.field("exp", Int(c.exp))
        w.field("jti", c.jti)
        w.field("type", c.type)
        w.field("tv", c.tokenVersion)
        w.endObject()
        let signingInput = Self.header + "." + Base64URL.encode(w.bytes)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return signingInput + "." + Base64URL.encode(Array(mac))
    }

    /// Every authenticated request runs this, so the common case stays off
    /// Foundation: the header is compared byte for byte with the one this
    /// service issues, base64url is decoded by hand, and the payload (signed,
    /// so written by `sign`) is read by a small flat-object scanner. Anything
    /// else (another header, escapes, non-integer numbers) takes the general
    /// JSONSerialization path, with the same rules.
    public func verify(_ token: String, now: Int64, leeway: Int64 = 30) throws(JWTError) -> JWTClaims {
        var token = token
        let claims = try token.withUTF8 { t in Result { () throws(JWTError) -> JWTClaims in try decode(t) } }.get()
        guard claims.type == "access" else { throw .wrongType }
        guard claims.exp > now else { throw .expired }
        guard claims.iat <= now + leeway else { throw .notYetValid }
        return claims
    }

    /// Header, signature and claims of one token; time checks are the caller's.
    private func decode(_ t: UnsafeBufferPointer<UInt8>) throws(JWTError) -> JWTClaims {
        guard t.count < 4096, let d1 = t.firstIndex(of: UInt8(ascii: ".")) else { throw .malformed }
        guard let d2 = t[(d1 + 1)...].firstIndex(of: UInt8(ascii: ".")),
              t[(d2 + 1)...].firstIndex(of: UInt8(ascii: ".")) == nil else { throw .malformed }
        let headerPart = UnsafeBufferPointer(rebasing: t[..<d1])
        if !headerPart.elementsEqual(Self.headerBytes) {
            guard let headerBytes = Base64URL.decode(bytes: headerPart),
                  let header = (try? JSONSerialization.jsonObject(with: Data(headerBytes))) as? [String: Any] else {
                throw .malformed
            }
            guard header["alg"] as? String == "HS256" else { throw .unsupportedAlgorithm }
        }
        guard let sig = Base64URL.decode(bytes: UnsafeBufferPointer(rebasing: t[(d2 + 1)...])) else { throw .malformed }
        let signingInput = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(t)[..<d2])
        guard HMAC<SHA256>.isValidAuthenticationCode(sig, authenticating: signingInput, using: key) else {
            throw .badSignature
        }
        guard let payload = Base64URL.decode(bytes: UnsafeBufferPointer(rebasing: t[(d1 + 1)..<d2])) else {
            throw .malformed
        }
        if let c = FlatClaims.parse(payload) { return c }
        return try Self.parseGeneral(payload)
    }

    static let headerBytes = Array(header.utf8)

    private static func parseGeneral(_ payload: [UInt8]) throws(JWTError) -> JWTClaims {
        guard let p = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any],
              let sub = p["sub"] as? String, let uid = Self.integer(p["user_id"]), let role = p["role"] as? String,
              let iat = Self.integer(p["iat"]), let exp = Self.integer(p["exp"]), let jti = p["jti"] as? String,
              let type = p["type"] as? String else {
            throw .malformed
        }
        return JWTClaims(sub: sub, userID: uid, role: role, iat: iat, exp: exp, jti: jti, type: type,
                         tokenVersion: Self.integer(p["tv"]).map { Int($0) } ?? 0)
    }

    private static func integer(_ v: Any?) -> Int64? {
        guard let n = v as? NSNumber, !JSONInput.isBool(n) else { return nil }
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9e15 else { return nil }
        return n.int64Value
    }
}

/// A flat JSON object of strings and integers, as `JWTSigner.sign` writes
/// it. nil for anything else (nesting, escapes, fractions, duplicate or
/// missing claims), and the caller falls back to JSONSerialization.
enum FlatClaims {
    static func parse(_ b: [UInt8]) -> JWTClaims? {
        b.withUnsafeBufferPointer { parse($0) }
    }

    private static func parse(_ b: UnsafeBufferPointer<UInt8>) -> JWTClaims? {
        var i = 0
        let n = b.count
        func skipSpace() { while i < n, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        /// A string without escapes, as its bytes' range.
        func string() -> Range<Int>? {
            guard i < n, b[i] == 0x22 else { return nil }
            let start = i + 1
            var j = start
            while j < n, b[j] != 0x22 {
                if b[j] == 0x5C || b[j] < 0x20 { return nil }
                j += 1
            }
            guard j < n else { return nil }
            i = j + 1
            return start..<j
        }
        func integer() -> Int64? {
            var neg = false
            if i < n, b[i] == UInt8(ascii: "-") { neg = true; i += 1 }
            let start = i
            var v: Int64 = 0
            while i < n, b[i] >= 0x30, b[i] <= 0x39 {
                guard i - start < 16 else { return nil }   // |v| < 9e15, as the general path
                v = v * 10 + Int64(b[i] - 0x30)
                i += 1
            }
            guard i > start, v < 9_000_000_000_000_000 else { return nil }
            if i < n, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") { return nil }
            return neg ? -v : v
        }
        func text(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }
        func isKey(_ r: Range<Int>, _ k: StaticString) -> Bool {
            r.count == k.utf8CodeUnitCount && memcmp(b.baseAddress! + r.lowerBound, k.utf8Start, r.count) == 0
        }

        var sub: String?, role: String?, jti: String?, type: String?
        var uid: Int64?, iat: Int64?, exp: Int64?, tv: Int64?
        skipSpace()
        guard i < n, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        skipSpace()
        if i < n, b[i] == UInt8(ascii: "}") { return nil }
        while true {
            skipSpace()
            guard let k = string() else { return nil }
            skipSpace()
            guard i < n, b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            skipSpace()
            guard i < n else { return nil }
            if b[i] == 0x22 {
                guard let v = string() else { return nil }
                if isKey(k, "sub") { guard sub == nil else { return nil }; sub = text(v) }
                else if isKey(k, "role") { guard role == nil else { return nil }; role = text(v) }
                else if isKey(k, "jti") { guard jti == nil else { return nil }; jti = text(v) }
                else if isKey(k, "type") { guard type == nil else { return nil }; type = text(v) }
                else if isKey(k, "user_id") || isKey(k, "iat") || isKey(k, "exp") || isKey(k, "tv") { return nil }
            } else {
                guard let v = integer() else { return nil }
                if isKey(k, "user_id") { guard uid == nil else { return nil }; uid = v }
                else if isKey(k, "iat") { guard iat == nil else { return nil }; iat = v }
                else if isKey(k, "exp") { guard exp == nil else { return nil }; exp = v }
                else if isKey(k, "tv") { guard tv == nil else { return nil }; tv = v }
                else if isKey(k, "sub") || isKey(k, "role") || isKey(k, "jti") || isKey(k, "type") { return nil }
            }
            skipSpace()
            guard i < n else { return nil }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            guard b[i] == UInt8(ascii: "}") else { return nil }
            i += 1
            break
        }
        skipSpace()
        guard i == n, let sub, let uid, let role, let iat, let exp, let jti, let type else { return nil }
        return JWTClaims(sub: sub, userID: uid, role: role, iat: iat, exp: exp, jti: jti, type: type,
                         tokenVersion: Int(tv ?? 0))
    }
}

/// Unpadded base64url (RFC 4648 section 5), strict: no padding, no `+` or
/// `/`, no whitespace, and the unused low bits of the last character must
/// be zero, so each byte string has exactly one accepted encoding.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(v >> 18)]); out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)]); out.append(alphabet[Int(v & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out.append(alphabet[Int(v >> 18)]); out.append(alphabet[Int(v >> 12 & 63)])
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int(v >> 18)]); out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode<S: StringProtocol>(_ s: S) -> [UInt8]? {
        var str = String(s)
        return str.withUTF8 { decode(bytes: $0) }
    }

    public static func decode(bytes s: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let n = s.count
        guard n % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(n * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in s {
            let v = table[Int(c)]
            guard v != 0xFF else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        guard acc == 0 else { return nil }   // non-canonical trailing bits
        return out
    }
}
