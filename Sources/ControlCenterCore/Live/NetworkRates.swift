/// Host-wide network throughput for the live message: the byte counters of
/// every interface but loopback (/sys/class/net/<if>/statistics, through
/// InterfaceScanner), differenced between two readings.
public final class NetworkRates {
    public struct Rates: Equatable, Sendable {
        public var rxBytesPerSecond: Double
        public var txBytesPerSecond: Double
        /// Per interface (alert rules' `net_rx`, `net_tx`): only those with
        /// both counters in both readings and neither gone back.
        public var interfaces: [String: InterfaceRate] = [:]
    }

    public struct InterfaceRate: Equatable, Sendable {
        public var rxBytesPerSecond: Double
        public var txBytesPerSecond: Double
    }

    struct Reading: Equatable {
        var rx: [String: UInt64]
        var tx: [String: UInt64]
        var monoNanos: UInt64
    }

    private let scanner = InterfaceScanner()
    private var previous: Reading?

    public init() {}

    /// Rates since the previous call; nil on the first.
    public func sample() -> Rates? {
        var r = Reading(rx: [:], tx: [:], monoNanos: Clock.monotonicNanos())
        for i in scanner.scan() where i.name != "lo" {
            r.rx[i.name] = i.counters["rx_bytes"]
            r.tx[i.name] = i.counters["tx_bytes"]
        }
        defer { previous = r }
        return previous.flatMap { Self.rates(from: $0, to: r) }
    }

    /// Sums the per-interface increases; an interface that vanished, appeared
    /// or whose counter went back (re-created) contributes nothing, so a rate
    /// is never negative nor a whole counter at once.
    static func rates(from a: Reading, to b: Reading) -> Rates? {
        guard b.monoNanos > a.monoNanos else { return nil }
        let seconds = Double(b.monoNanos - a.monoNanos) / 1e9
        func sum(_ before: [String: UInt64], _ now: [String: UInt64]) -> Double {
            var total: UInt64 = 0
            for (name, v) in now { if let old = before[name], v >= old { total += v - old } }
            return Double(total) / seconds
        }
        var interfaces: [String: InterfaceRate] = [:]
        for (name, rx) in b.rx {
            guard let rx0 = a.rx[name], rx >= rx0, let tx = b.tx[name], let tx0 = a.tx[name], tx >= tx0 else { continue }
            interfaces[name] = InterfaceRate(rxBytesPerSecond: Double(rx - rx0) / seconds, txBytesPerSecond: Double(tx - tx0) / seconds)
        }
        return Rates(rxBytesPerSecond: sum(a.rx, b.rx), txBytesPerSecond: sum(a.tx, b.tx), interfaces: interfaces)
    }
}
