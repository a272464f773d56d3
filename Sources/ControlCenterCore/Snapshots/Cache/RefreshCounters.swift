/// How often a kind has been rebuilt, across all workers. Kept in a small file
/// next to the snapshot and rewritten only by the lock holder, so the
/// read-modify-write needs no other coordination.
public struct RefreshCounters: Sendable, Equatable {
    public var refreshes: Int = 0
    public var errors: Int = 0
    public var lastDurationMicros: Int = 0
    /// Sum of every successful refresh's duration (/metrics' rate of it over
    /// the rate of `refreshes` is the mean refresh time).
    public var totalDurationMicros: Int = 0
    public var lastTakenAtMillis: Int64 = 0
    public var lastError: String = ""

    public init() {}

    static func read(_ path: String) -> RefreshCounters {
        guard let bytes = AtomicFile.read(path, limit: 4096) else { return RefreshCounters() }
        var c = RefreshCounters()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let v = line[line.index(after: eq)...]
            switch line[..<eq] {
            case "refreshes": c.refreshes = Int(v) ?? 0
            case "errors": c.errors = Int(v) ?? 0
            case "last_duration_us": c.lastDurationMicros = Int(v) ?? 0
            case "total_duration_us": c.totalDurationMicros = Int(v) ?? 0
            case "last_taken_at_ms": c.lastTakenAtMillis = Int64(v) ?? 0
            case "last_error": c.lastError = String(v)
            default: break
            }
        }
        return c
    }

    func write(_ path: String) {
        let error = lastError.split(whereSeparator: \.isNewline).joined(separator: " ")
        let text = "refreshes=\(refreshes)\nerrors=\(errors)\nlast_duration_us=\(lastDurationMicros)\n"
            + "total_duration_us=\(totalDurationMicros)\n"
            + "last_taken_at_ms=\(lastTakenAtMillis)\nlast_error=\(error)\n"
        AtomicFile.write(Array(text.utf8), to: path, mode: 0o640) // read by workers (/api/pool/status)
    }
}
