/// What one worker tells the master and the status page about itself.
///
/// It lives in a small per-worker file under `run/workers/` that the worker
/// overwrites in place at the start and end of every request: this is the
/// heartbeat (the master kills a worker busy longer than the request timeout)
/// and the source of `/api/pool/status`. No shared memory is involved; the
/// record is text so an operator can `cat` it.
public struct WorkerStatusRecord: Sendable, Equatable {
    public var pid: Int32
    public var pool: String
    public var slot: Int
    public var startedMillis: Int64
    public var served: Int
    public var busy: Bool
    /// When the current request began (busy) or the last one ended (idle).
    public var sinceMillis: Int64
    public var method: String
    public var path: String

    public static let size = 512
    static let magic = "ccw1"

    public init(pid: Int32, pool: String, slot: Int, startedMillis: Int64, served: Int = 0,
                busy: Bool = false, sinceMillis: Int64 = 0, method: String = "", path: String = "") {
        self.pid = pid
        self.pool = pool
        self.slot = slot
        self.startedMillis = startedMillis
        self.served = served
        self.busy = busy
        self.sinceMillis = sinceMillis
        self.method = method
        self.path = path
    }

    /// Fixed-size text: `ccw1 pid pool slot started served B|I since method path ccw1` + padding + `\n`.
    /// The trailing magic lets a reader reject a torn or truncated read.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        encode(into: &bytes)
        return bytes
    }

    /// Byte-level encoding into a reused buffer: this runs twice per request.
    public func encode(into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(Self.size)
        func word<S: Sequence>(_ s: S, limit: Int) where S.Element == UInt8 {
            var n = 0
            for c in s {
                if n == limit { break }
                out.append(c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 ? UInt8(ascii: "_") : c)
                n += 1
            }
            if n == 0 { out.append(UInt8(ascii: "-")) }
            out.append(0x20)
        }
        func number(_ v: Int64) {
            if v < 0 { out.append(UInt8(ascii: "-")) }
            var m = v.magnitude
            var digits: [UInt8] = []
            repeat { digits.append(UInt8(ascii: "0") + UInt8(m % 10)); m /= 10 } while m > 0
            out.append(contentsOf: digits.reversed())
            out.append(0x20)
        }
        word(Self.magic.utf8, limit: 8)
        number(Int64(pid))
        word(pool.utf8, limit: 32)
        number(Int64(slot))
        number(startedMillis)
        number(Int64(served))
        out.append(busy ? UInt8(ascii: "B") : UInt8(ascii: "I")); out.append(0x20)
        number(sinceMillis)
        word(method.utf8, limit: 16)
        word(path.utf8, limit: 300)
        out.append(contentsOf: Self.magic.utf8)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: max(0, Self.size - 1 - out.count)))
        out.append(0x0A)
    }

    public init?(decoding bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 11, parts[0] == Self.magic, parts[10].hasPrefix(Self.magic),
              let pid = Int32(parts[1]), let slot = Int(parts[3]), let started = Int64(parts[4]),
              let served = Int(parts[5]), let since = Int64(parts[7]) else { return nil }
        self.init(pid: pid, pool: parts[2], slot: slot, startedMillis: started, served: served,
                  busy: parts[6] == "B", sinceMillis: since,
                  method: parts[8] == "-" ? "" : parts[8], path: parts[9] == "-" ? "" : parts[9])
    }
}
