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

    public func verify(_ token: String, now: Int64, leeway: Int64 = 30) throws(JWTError) -> JWTClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count < 4096,
              let headerBytes = Base64URL.decode(parts[0]),
              let header = (try? JSONSerialization.jsonObject(with: Data(headerBytes))) as? [String: Any] else {
            throw .malformed
        }
        guard header["alg"] as? String == "HS256" else { throw .unsupportedAlgorithm }
        guard let sig = Base64URL.decode(parts[2]) else { throw .malformed }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard HMAC<SHA256>.isValidAuthenticationCode(sig, authenticating: signingInput, using: key) else {
            throw .badSignature
        }
        guard let payloadBytes = Base64URL.decode(parts[1]),
              let p = (try? JSONSerialization.jsonObject(with: Data(payloadBytes))) as? [String: Any],
              let sub = p["sub"] as? String, let uid = Self.integer(p["user_id"]), let role = p["role"] as? String,
              let iat = Self.integer(p["iat"]), let exp = Self.integer(p["exp"]), let jti = p["jti"] as? String,
              let type = p["type"] as? String else {
            throw .malformed
        }
        guard type == "access" else { throw .wrongType }
        guard exp > now else { throw .expired }
        guard iat <= now + leeway else { throw .notYetValid }
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

public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        var s = Data(bytes).base64EncodedString()
        s = s.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }

    public static func decode<S: StringProtocol>(_ s: S) -> [UInt8]? {
        guard !s.contains("="), !s.contains("+"), !s.contains("/") else { return nil }
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while t.utf8.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { Array($0) }
    }
}
