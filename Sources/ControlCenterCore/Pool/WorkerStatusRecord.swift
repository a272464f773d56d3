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

    /// Fixed-size text: `ccw1 pid pool slot started served B|I since method path` + padding + `\n`.
    /// The trailing magic lets a reader reject a torn or truncated read.
    public func encoded() -> [UInt8] {
        let safePath = String(path.unicodeScalars.map { $0 == " " || $0 == "\n" ? "_" : Character($0) }.prefix(300))
        let safeMethod = method.isEmpty ? "-" : String(method.prefix(16))
        let line = "\(Self.magic) \(pid) \(pool) \(slot) \(startedMillis) \(served) \(busy ? "B" : "I") \(sinceMillis) \(safeMethod) \(safePath.isEmpty ? "-" : safePath) \(Self.magic)"
        var bytes = Array(line.utf8.prefix(Self.size - 1))
        bytes.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: Self.size - 1 - bytes.count))
        bytes.append(0x0A)
        return bytes
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
