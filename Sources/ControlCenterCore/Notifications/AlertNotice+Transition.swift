import Foundation

extension AlertNotice {
    /// What the notifier sends for `transition`: firing and resolved alerts
    /// that no silence matched; nil for pending and inactive (nobody is told
    /// of an alert that never fired) and for silenced ones. The annotations
    /// follow Prometheus alerting rules' `summary` and `description`.
    public init?(_ t: AlertTransition) {
        guard !t.silenced else { return nil }
        let state: State
        switch t.state {
        case .firing: state = .firing
        case .resolved: state = .resolved
        case .pending, .inactive: return nil
        }
        let c = t.rule.condition
        let subject = t.labels.keys.filter { !["alertname", "metric", "severity"].contains($0) }.sorted()
            .map { "\($0) \(t.labels[$0]!)" }.joined(separator: ", ")
        let figure = t.value.map { String(format: "%.1f", $0) } ?? "no value"
        let summary = "\(t.rule.name): \(t.rule.metric)\(subject.isEmpty ? "" : " (\(subject))") is \(figure)"
        let description = state == .firing
            ? "\(t.rule.metric) \(c.comparator.rawValue) \(c.threshold) for \(Int(c.forSeconds)) s"
            : "\(t.rule.metric) back past \(c.clearThreshold) for \(Int(c.keepFiringForSeconds)) s"
        self.init(fingerprint: AlertNotice.fingerprint(labels: t.labels), labels: t.labels,
                  annotations: ["summary": summary, "description": description], state: state,
                  startsAt: Date(timeIntervalSince1970: Double(t.startsAt) / 1000),
                  endsAt: t.endsAt.map { Date(timeIntervalSince1970: Double($0) / 1000) }, value: t.value ?? 0)
    }
}
