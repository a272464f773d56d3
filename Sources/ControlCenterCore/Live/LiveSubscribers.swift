import Foundation
import Glibc

/// Subscribers of each live channel, as nchan counted them in its answer to
/// the collector's latest publish on that channel (`"subscribers": N` of
/// nchan's channel info), kept in `run/live-subscribers` for /metrics: the
/// collector writes it, workers read it, so a scrape asks nginx nothing.
///
/// Format: one `CHANNEL COUNT` line per channel; the file's mtime is when
/// it was written.
public struct LiveSubscribers: Sendable, Equatable {
    /// Channel name → subscribers at its latest publish.
    public var byChannel: [String: Int]

    public init(byChannel: [String: Int]) { self.byChannel = byChannel }

    /// Counts per channel id (`system.0`, `system.1`, …, `events`), summed
    /// per channel: a subscriber is in exactly one shard.
    public init(summingShards byID: [String: Int]) {
        byChannel = byID.reduce(into: [:]) { $0[LiveChannels.channel(ofID: $1.key), default: 0] += $1.value }
    }

    public static func path(runDir: String) -> String { runDir + "/live-subscribers" }

    public func encoded() -> [UInt8] {
        Array(byChannel.keys.sorted().map { "\($0) \(byChannel[$0]!)\n" }.joined().utf8)
    }

    public init(parsing text: String) {
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let n = Int(parts[1]), n >= 0 { out[String(parts[0])] = n }
        }
        byChannel = out
    }

    /// Written world-readable (0644): counts only, for every worker.
    @discardableResult
    public func write(runDir: String) -> Bool {
        AtomicFile.write(encoded(), to: Self.path(runDir: runDir), mode: 0o644)
    }

    /// The counts, unless the file is missing or older than `maxAge` seconds
    /// (the collector is down or publishes nothing: an old count would lie).
    public static func read(runDir: String, maxAge: Double, now: Double = Clock.wallSeconds()) -> LiveSubscribers? {
        let path = Self.path(runDir: runDir)
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        guard now - mtime <= maxAge, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return LiveSubscribers(parsing: text)
    }
}
