import ArgumentParser
import ControlCenterCore
import Glibc

/// Hidden: rebuilds one snapshot kind N times and prints how long each full
/// refresh took (scan, render, publish). Scripts/bench.d/processes.sh uses it
/// to compare a refresh with `ps` over the same processes.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Time full snapshot refreshes.", shouldDisplay: false)

    @Argument(help: "processes, connections, network or stats") var kind: String
    @Option(name: .customLong("repeat"), help: "How many refreshes to run.") var count = 10

    func run() throws {
        guard let k = SnapshotKind(rawValue: kind) else { throw ValidationError("unknown kind \(kind)") }
        let cache = SnapshotCache(config: loadConfig())
        var ms: [Double] = []
        var items = 0
        for _ in 0..<max(1, count) {
            let t0 = Clock.monotonicNanos()
            let snap = try cache.forceRefresh(k)
            ms.append(Double(Clock.monotonicNanos() - t0) / 1e6)
            items = snap.itemCount
        }
        let sorted = ms.sorted()
        func f(_ v: Double) -> String { String(Int((v * 1000).rounded())) }
        print("kind=\(k.rawValue) items=\(items) refreshes=\(ms.count) "
              + "min_us=\(f(sorted[0])) median_us=\(f(sorted[sorted.count / 2])) "
              + "mean_us=\(f(ms.reduce(0, +) / Double(ms.count))) max_us=\(f(sorted[sorted.count - 1]))")
    }
}
