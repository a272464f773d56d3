@testable import ControlCenterCore
import Foundation
import XCTest

final class JWTTests: XCTestCase {
    let signer = JWTSigner(secret: Array("0123456789abcdef0123456789abcdef".utf8))
    let now: Int64 = 1_800_000_000

    func claims(exp: Int64? = nil, type: String = "access") -> JWTClaims {
        JWTClaims(sub: "alice", userID: 7, role: "operator", iat: now, exp: exp ?? now + 3600, jti: "j-1", type: type,
                  tokenVersion: 2)
    }

    func testValidTokenRoundTrips() throws {
        let token = signer.sign(claims())
        XCTAssertEqual(token.split(separator: ".").count, 3)
        XCTAssertFalse(token.contains("="))
        XCTAssertEqual(try signer.verify(token, now: now + 10), claims())
        let header = try XCTUnwrap(Base64URL.decode(token.split(separator: ".")[0]))
        XCTAssertEqual(String(decoding: header, as: UTF8.self), #"{"alg":"HS256","typ":"JWT"}"#)
    }

    func testExpiredIsRefused() {
        let token = signer.sign(claims(exp: now - 1))
        XCTAssertThrowsError(try signer.verify(token, now: now)) { XCTAssertEqual($0 as? JWTError, .expired) }
        XCTAssertThrowsError(try signer.verify(signer.sign(claims()), now: now + 3600)) { XCTAssertEqual($0 as? JWTError, .expired) }
    }

    func testIssuedInTheFutureIsRefused() {
        XCTAssertThrowsError(try signer.verify(signer.sign(claims()), now: now - 3600)) {
            XCTAssertEqual($0 as? JWTError, .notYetValid)
        }
    }

    func testTamperedPayloadOrSignatureIsRefused() {
        let token = signer.sign(claims())
        var parts = token.split(separator: ".").map(String.init)
        var promoted = claims()
        promoted.role = "admin"
        parts[1] = signer.sign(promoted).split(separator: ".").map(String.init)[1]
        XCTAssertThrowsError(try signer.verify(parts.joined(separator: "."), now: now)) { XCTAssertEqual($0 as? JWTError, .badSignature) }
        var sig = Array(token.utf8)
        sig[sig.count - 2] = sig[sig.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertThrowsError(try signer.verify(String(decoding: sig, as: UTF8.self), now: now))
        let other = JWTSigner(secret: Array("another-key-another-key-another-k".utf8))
        XCTAssertThrowsError(try other.verify(token, now: now)) { XCTAssertEqual($0 as? JWTError, .badSignature) }
    }

    func testOtherAlgorithmsAreRefused() {
        let payload = signer.sign(claims()).split(separator: ".")[1]
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"HS512","typ":"JWT"}"#, #"{"alg":"RS256"}"#, #"{"typ":"JWT"}"#] {
            let h = Base64URL.encode(Array(header.utf8))
            for token in ["\(h).\(payload).", "\(h).\(payload).c2ln"] {
                XCTAssertThrowsError(try signer.verify(token, now: now)) { XCTAssertEqual($0 as? JWTError, .unsupportedAlgorithm) }
            }
        }
    }

    func testMalformedAndWrongTypeAreRefused() {
        for t in ["", "a.b", "a.b.c.d", "!!!.???.###", "e30.e30.e30"] {
            XCTAssertThrowsError(try signer.verify(t, now: now), t)
        }
        XCTAssertThrowsError(try signer.verify(signer.sign(claims(type: "refresh")), now: now)) {
            XCTAssertEqual($0 as? JWTError, .wrongType)
        }
    }

    /// The fast path (flat claims, no escapes) and the general one agree.
    func testClaimsWithEscapesOrUnicodeRoundTrip() throws {
        for sub in ["al\"ice", "b\\ob", "zoë", "tab\there", "line\nfeed"] {
            var c = claims()
            c.sub = sub
            XCTAssertEqual(try signer.verify(signer.sign(c), now: now), c, sub)
        }
        var big = claims()
        big.userID = 8_999_999_999_999_999
        XCTAssertEqual(try signer.verify(signer.sign(big), now: now), big)
    }

    func testBase64URLIsStrict() {
        XCTAssertEqual(Base64URL.decode("aGk"), Array("hi".utf8))
        XCTAssertEqual(Base64URL.encode(Array("hi".utf8)), "aGk")
        XCTAssertNil(Base64URL.decode("aGl"), "non-zero unused bits: a second spelling of the same bytes")
        XCTAssertNil(Base64URL.decode("aGk="))
        XCTAssertNil(Base64URL.decode("a+k/"))
        XCTAssertNil(Base64URL.decode("a"))
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            XCTAssertEqual(Base64URL.decode(Base64URL.encode(bytes)), bytes)
            XCTAssertEqual(Base64URL.encode(bytes),
                           Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                               .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: ""))
        }
    }

    func testSecretFileIsCreatedOnceWithMode0600() throws {
        let dir = NSTemporaryDirectory() + "cc-jwt-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try Config(values: ["CC_STATE_DIR": dir])
        let a = try JWTSecret.load(config)
        let b = try JWTSecret.load(config)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.count, 64, "256 bits, hex")
        var st = stat()
        XCTAssertEqual(stat(dir + "/jwt.secret", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let other = try Config(values: ["CC_STATE_DIR": dir + "/other"])
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: true)
        XCTAssertNotEqual(try JWTSecret.load(other), a, "generated, not a built-in default")
        XCTAssertEqual(try JWTSecret.load(try Config(values: ["CC_STATE_DIR": dir, "CC_JWT_SECRET": "from-env-from-env-from-env-12345"])),
                       Array("from-env-from-env-from-env-12345".utf8))
    }
}
