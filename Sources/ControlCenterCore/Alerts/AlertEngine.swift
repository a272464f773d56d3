import Foundation

/// One state change of one alert series, handed to the notifier after the
/// sample that caused it (its row and event are already committed).
/// Times are Unix milliseconds: `startsAt` is when the alert fired (as
/// Prometheus sends `startsAt` to Alertmanager), or when it turned pending
/// for a `pending` or `inactive` transition; `endsAt` is set once resolved
/// (or back to inactive).
public struct AlertTransition: Sendable, Equatable {
    public var rule: AlertRule
    /// `alertname`, `metric`, `severity`, and the metric's label (`mount`) when it has one.
    public var labels: [String: String]
    public var state: AlertState
    public var value: Double?
    public var startsAt: Int64
    public var endsAt: Int64?
    public var alertID: Int64
    /// A silence matched: recorded as usual, not to be notified.
    public var silenced: Bool
    /// Not a change: an alert that was firing when this collector started,
    /// handed to the notifier again (Alertmanager forgets an alert that is
    /// not re-sent) with no event of its own.
    public var resumed = false
}

/// The collector's alert evaluation: at every sample it reads the rules,
/// steps each series through `AlertEvaluation`, and commits each
/// transition's row change and its event (source `alerts`) together.
///
/// The states live in the `alerts` table; timers run on the monotonic
/// clock in memory. A collector that restarts takes the open rows back as
/// they are (a firing alert stays firing without a new event or
/// notification) and restarts their timers from its start: a pending alert
/// needs its full `for` again, a clearing one its full `keep_firing_for`.
public final class AlertEngine {
    public static let eventSource = "alerts"

    struct SeriesKey: Hashable {
        var ruleID: Int64
        var label: String
    }

    struct Series {
        var state: AlertSeriesState
        var alertID: Int64
        /// Wall ms: the episode's pending start, and its firing.
        var pendingSince: Int64
        var firedAt: Int64?
        var value: Double?
        /// Wall ms of the row's last value write.
        var valueWrittenAt: Int64
    }

    /// An open alert's `value` is written at its transitions and at most this
    /// often in between (ms), not at every sample: an alert that fires for
    /// weeks must not cost a write per second.
    static let valueWriteInterval: Int64 = 10_000

    private var series: [SeriesKey: Series] = [:]
    private var loaded = false

    public init() {}

    /// Evaluates one sample and returns its transitions. Throws when the
    /// database fails; the series already committed keep their new state,
    /// the rest are retried at the next sample.
    public func evaluate(_ values: [AlertMetrics.Key: Double], db: Database, monotonic now: Double,
                         wall: Int64) throws -> (transitions: [AlertTransition], levels: AlertLevels) {
        let repo = AlertRepository(db)
        var resumed: [AlertRecord] = []
        if !loaded {
            for a in try repo.open() {
                let st = AlertSeriesState(state: a.state, breachedSince: now)
                series[SeriesKey(ruleID: a.ruleID, label: a.label)] = Series(state: st, alertID: a.id, pendingSince: a.pendingSince, firedAt: a.firedAt,
                                                                             value: a.value, valueWrittenAt: wall)
                if a.state == .firing { resumed.append(a) }
            }
            loaded = true
        }
        let rules = try repo.rules()
        var out: [AlertTransition] = []
        var silences: [AlertSilence]?
        for a in resumed {
            guard let rule = rules.first(where: { $0.id == a.ruleID && $0.enabled }) else { continue }
            if silences == nil { silences = try repo.silences(now: wall).filter { $0.startsAt <= wall } }
            let silenced = silences!.contains { $0.matches(ruleName: rule.name, metric: rule.metric, label: a.label, severity: rule.severity) }
            out.append(AlertTransition(rule: rule, labels: Self.labels(rule, label: a.label), state: .firing, value: a.value,
                                       startsAt: a.firedAt ?? a.pendingSince, endsAt: nil, alertID: a.id, silenced: silenced,
                                       resumed: true))
        }
        var seen = Set<SeriesKey>()
        for rule in rules where rule.enabled {
            for label in labels(of: rule, values) {
                let key = SeriesKey(ruleID: rule.id, label: label)
                seen.insert(key)
                let value = values[AlertMetrics.Key(rule.metric, label)]
                let prev = series[key]
                let (next, change) = AlertEvaluation.step(prev?.state ?? AlertSeriesState(), rule.condition, value: value, now: now)
                guard let change else {
                    if var s = prev {
                        s.state = next
                        if let value, s.state.state.isOpen, value != s.value, wall - s.valueWrittenAt >= Self.valueWriteInterval {
                            try repo.setValue(id: s.alertID, value, now: wall)
                            s.value = value
                            s.valueWrittenAt = wall
                        }
                        series[key] = s
                    }
                    continue
                }
                if silences == nil { silences = try repo.silences(now: wall).filter { $0.startsAt <= wall } }
                out.append(try commit(rule, label: label, prev: prev, to: next, change: change, value: value, wall: wall,
                                      silences: silences!, db: db))
            }
        }
        // Series whose rule was deleted or disabled, or whose label left the rule, end now.
        let byID = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, $0) })
        for (key, s) in series where !seen.contains(key) && s.state.state.isOpen {
            guard let a = try repo.alert(id: s.alertID) else { series[key] = nil; continue }
            var rule = byID[key.ruleID] ?? AlertRule(name: a.ruleName, metric: a.metric, condition: AlertCondition(
                comparator: .greater, threshold: a.threshold, clearThreshold: a.threshold, forSeconds: 0, keepFiringForSeconds: 0),
                severity: a.severity)
            rule.id = key.ruleID
            let end: AlertState = s.state.state == .firing ? .resolved : .inactive
            if silences == nil { silences = try repo.silences(now: wall).filter { $0.startsAt <= wall } }
            out.append(try commit(rule, label: key.label, prev: s, to: AlertSeriesState(state: end), change: end,
                                  value: nil, wall: wall, silences: silences!, db: db))
        }
        series = series.filter { $0.value.state.state.isOpen }
        return (out, levels(rules))
    }

    /// The label values a rule covers this sample: its own label, or every
    /// value the metric has now and every one it still has an open series for.
    func labels(of rule: AlertRule, _ values: [AlertMetrics.Key: Double]) -> [String] {
        if AlertMetrics.catalog[rule.metric]?.label == nil { return [""] }
        if let l = rule.label { return [l] }
        var all = Set(values.keys.filter { $0.metric == rule.metric }.map(\.label))
        for k in series.keys where k.ruleID == rule.id { all.insert(k.label) }
        return all.sorted()
    }

    private func commit(_ rule: AlertRule, label: String, prev: Series?, to next: AlertSeriesState, change: AlertState,
                        value: Double?, wall: Int64, silences: [AlertSilence], db: Database) throws -> AlertTransition {
        let repo = AlertRepository(db)
        let silenced = silences.contains { $0.matches(ruleName: rule.name, metric: rule.metric, label: label, severity: rule.severity) }
        let opens = prev.map { !$0.state.state.isOpen } ?? true
        let id = try db.transaction { () -> Int64 in
            let id: Int64
            if opens {
                id = try repo.openAlert(rule: rule, label: label, state: change, value: value, now: wall)
            } else {
                id = prev!.alertID
                try repo.transition(id: id, to: change, value: value, now: wall)
            }
            try EventRepository(db).insert(Self.event(rule, label: label, state: change, value: value, alertID: id,
                                                      silenced: silenced, at: wall))
            return id
        }
        let pendingSince = opens ? wall : prev!.pendingSince
        let firedAt = change == .firing ? wall : (opens ? nil : prev!.firedAt)
        series[SeriesKey(ruleID: rule.id, label: label)] = Series(state: next, alertID: id, pendingSince: pendingSince, firedAt: firedAt,
                                                                  value: value, valueWrittenAt: wall)
        return AlertTransition(rule: rule, labels: Self.labels(rule, label: label), state: change, value: value, startsAt: firedAt ?? pendingSince,
                               endsAt: change.isOpen ? nil : wall, alertID: id, silenced: silenced)
    }

    /// An alert's Prometheus labels: `alertname`, `metric`, `severity`, and
    /// the metric's label (`mount`, `interface`) when it has one.
    static func labels(_ rule: AlertRule, label: String) -> [String: String] {
        var labels = ["alertname": rule.name, "metric": rule.metric, "severity": rule.severity.rawValue]
        if let name = AlertMetrics.catalog[rule.metric]?.label, !label.isEmpty { labels[name] = label }
        return labels
    }

    /// The transition's event: warning or critical (the rule's severity)
    /// when it fires, info otherwise; `data` carries the figures.
    static func event(_ rule: AlertRule, label: String, state: AlertState, value: Double?, alertID: Int64,
                      silenced: Bool, at wall: Int64) -> Event {
        let subject = label.isEmpty ? rule.metric : "\(rule.metric) \(label)"
        let figure = value.map { String(format: "%.1f", $0) } ?? "no value"
        let c = rule.condition
        let message: String
        switch state {
        case .pending: message = "\(rule.name): \(subject) is \(figure) (\(c.comparator.rawValue) \(c.threshold)); fires after \(Int(c.forSeconds)) s"
        case .firing: message = "\(rule.name) firing: \(subject) is \(figure) (\(c.comparator.rawValue) \(c.threshold))"
        case .resolved: message = "\(rule.name) resolved: \(subject) is \(figure)"
        case .inactive: message = "\(rule.name): \(subject) is \(figure); back to normal before firing"
        }
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.field("alert_id", Int(alertID))
        w.field("rule_id", Int(rule.id))
        w.field("metric", rule.metric)
        w.field("label", label.isEmpty ? nil : label)
        w.field("state", state.rawValue)
        w.field("severity", rule.severity.rawValue)
        w.field("value", value, places: 3)
        w.field("threshold", c.threshold, places: 3)
        w.field("silenced", silenced)
        w.endObject()
        let level: EventLevel = state == .firing ? (rule.severity == .critical ? .critical : .warning) : .info
        return Event(ts: wall, level: level, source: eventSource, actor: nil, action: "alert.\(state.rawValue)",
                     target: rule.name, message: message, data: String(decoding: w.bytes, as: UTF8.self))
    }

    /// Each metric's highest severity among firing series, and the rules' thresholds.
    func levels(_ rules: [AlertRule]) -> AlertLevels {
        let byID = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, $0) })
        var levels: [String: String] = [:]
        for (key, s) in series where s.state.state == .firing {
            guard let r = byID[key.ruleID] else { continue }
            if levels[r.metric] != AlertRule.Severity.critical.rawValue { levels[r.metric] = r.severity.rawValue }
        }
        return AlertLevels(levels: levels, rules: rules.map {
            AlertLevels.Threshold(name: $0.name, metric: $0.metric, label: $0.label, comparator: $0.condition.comparator.rawValue,
                                  threshold: $0.condition.threshold, severity: $0.severity.rawValue, enabled: $0.enabled)
        })
    }
}
