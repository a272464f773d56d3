import CSodium
import Glibc

/// The HS256 key: `CC_JWT_SECRET`, or 256 random bits generated once into
/// `$CC_STATE_DIR/jwt.secret` (mode 0600; a root master makes it 0640 with
/// CC_USER's group for its workers: StatePermissions). There is no built-in default.
public enum JWTSecret {
    /// 256 bits, the HS256 minimum of RFC 7518 §3.2.
    public static let minimumBytes = 32

    public static func load(_ config: Config) throws -> [UInt8] {
        if let s = config.jwtSecret { return Array(s.utf8) }
        return try loadOrCreate(path: config.stateDir + "/jwt.secret")
    }

    /// Every worker may get here at once on first start. The secret is
    /// written whole to a private temp file and then `link`ed into place,
    /// which fails if the name exists: exactly one writer wins, and no
    /// reader ever sees a partial file (which O_CREAT|O_EXCL alone allows).
    public static func loadOrCreate(path: String) throws -> [UInt8] {
        if let s = read(path) { return s }
        guard sodium_init() >= 0 else { throw ConfigError("libsodium failed to initialise") }
        var raw = [UInt8](repeating: 0, count: minimumBytes)
        randombytes_buf(&raw, raw.count)
        let hex = Array((raw.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined() + "\n").utf8)
        let tmp = "\(path).new.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let ok = hex.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == hex.count && fsync(fd) == 0
        close(fd)
        defer { unlink(tmp) }
        guard ok else { throw ConfigError("cannot write \(tmp)") }
        if link(tmp, path) != 0 && errno != EEXIST {
            throw ConfigError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        guard let s = read(path) else { throw ConfigError("cannot read \(path)") }
        return s
    }

    private static func read(_ path: String) -> [UInt8]? {
        guard var bytes = AtomicFile.read(path, limit: 4096) else { return nil }
        while let last = bytes.last, last == 0x0A || last == 0x20 { bytes.removeLast() }
        return bytes.count >= minimumBytes ? bytes : nil
    }
}
