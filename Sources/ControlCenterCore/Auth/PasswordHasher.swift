import CSodium

/// argon2id through libsodium's `crypto_pwhash_str` at the INTERACTIVE
/// limits (2 passes, 64 MiB): about 0.1 s of one core per login here, which
/// caps a brute-force attempt per core at ~10 guesses/s while the storage
/// pool's few workers stay responsive. The encoded string carries its own
/// parameters, so raising them later re-hashes on the next login.
public enum PasswordHasher {
    nonisolated(unsafe) static var opsLimit = UInt64(crypto_pwhash_opslimit_interactive())
    nonisolated(unsafe) static var memLimit = Int(crypto_pwhash_memlimit_interactive())

    public enum Failure: Error { case sodium }

    public static func hash(_ password: String) throws -> String {
        guard sodium_init() >= 0 else { throw Failure.sodium }
        var out = [CChar](repeating: 0, count: Int(crypto_pwhash_strbytes()))
        let pw = password.utf8CString
        let rc = pw.withUnsafeBufferPointer { c in
            crypto_pwhash_str(&out, c.baseAddress!, UInt64(c.count - 1), opsLimit, memLimit)
        }
        guard rc == 0 else { throw Failure.sodium }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// libsodium compares in constant time.
    public static func verify(_ password: String, hash: String) -> Bool {
        guard sodium_init() >= 0 else { return false }
        let pw = password.utf8CString
        return pw.withUnsafeBufferPointer { c in
            crypto_pwhash_str_verify(hash, c.baseAddress!, UInt64(c.count - 1)) == 0
        }
    }

    public static func needsRehash(_ hash: String) -> Bool {
        crypto_pwhash_str_needs_rehash(hash, opsLimit, memLimit) != 0
    }

    nonisolated(unsafe) private static var dummy: String?

    /// Same work as a real check, for unknown usernames, so response time
    /// does not reveal which usernames exist.
    public static func burnVerify(_ password: String) {
        if dummy == nil { dummy = try? hash("not-a-real-password-\(randomToken(bytes: 8))") }
        if let dummy { _ = verify(password, hash: dummy) }
    }

    /// URL-safe random text from libsodium's CSPRNG.
    public static func randomToken(bytes: Int) -> String {
        _ = sodium_init()
        var raw = [UInt8](repeating: 0, count: bytes)
        randombytes_buf(&raw, bytes)
        return Base64URL.encode(raw)
    }

    public static func restoreDefaultCost() {
        opsLimit = UInt64(crypto_pwhash_opslimit_interactive())
        memLimit = Int(crypto_pwhash_memlimit_interactive())
    }

    /// Tests only: the cheapest parameters libsodium allows.
    public static func useMinimalCostForTests() {
        opsLimit = UInt64(crypto_pwhash_opslimit_min())
        memLimit = Int(crypto_pwhash_memlimit_min())
    }
}
