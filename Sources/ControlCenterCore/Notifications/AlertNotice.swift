import Foundation

/// One alert's state as the collector hands it to the Notifier: what a
/// webhook receiver or Alertmanager gets for it.
public struct AlertNotice: Sendable, Equatable {
    public enum State: String, Sendable {
        case firing, resolved
    }

    /// Stable per rule and labels (`fingerprint(labels:)`): the key under
    /// which only the newest state of an alert waits for a target.
    public var fingerprint: String
    /// Prometheus labels, including `alertname` and `severity`.
    public var labels: [String: String]
    /// `summary` and `description`, as Prometheus alerting rules name them.
    public var annotations: [String: String]
    public var state: State
    /// When the alert started firing (wall time).
    public var startsAt: Date
    /// When it resolved; nil while it fires.
    public var endsAt: Date?
    /// The metric's value at the last evaluation (the rule's unit).
    public var value: Double
    /// A link back to the alert's source, sent to Alertmanager when set.
    public var generatorURL: String?

    public init(fingerprint: String, labels: [String: String], annotations: [String: String], state: State,
                startsAt: Date, endsAt: Date? = nil, value: Double, generatorURL: String? = nil) {
        self.fingerprint = fingerprint
        self.labels = labels
        self.annotations = annotations
        self.state = state
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.value = value
        self.generatorURL = generatorURL
    }

    /// The label set's fingerprint as Prometheus and Alertmanager compute it
    /// (prometheus/common model.LabelSet.Fingerprint): 64-bit FNV-1a over the
    /// names in byte order, each name and value followed by a 0xFF byte,
    /// printed as 16 lowercase hex digits. Alertmanager's API shows the same
    /// string for our alert, so an operator can match the two.
    public static func fingerprint(labels: [String: String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
            for b in bytes {
                hash ^= UInt64(b)
                hash &*= 0x0000_0100_0000_01b3
            }
        }
        for name in labels.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            add(name.utf8)
            add([0xFF])
            add(labels[name]!.utf8)
            add([0xFF])
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
