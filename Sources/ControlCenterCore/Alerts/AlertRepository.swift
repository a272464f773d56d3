/// One row of `alerts`: an episode of a series, as the routes list it.
/// Times are Unix milliseconds.
public struct AlertRecord: Sendable, Equatable {
    public var id: Int64
    public var ruleID: Int64
    public var ruleName: String
    public var metric: String
    /// "" for a metric without a label.
    public var label: String
    public var severity: AlertRule.Severity
    public var state: AlertState
    public var value: Double?
    public var threshold: Double
    public var pendingSince: Int64
    public var firedAt: Int64?
    public var resolvedAt: Int64?
    public var ackedBy: String?
    public var ackedAt: Int64?
    public var notifyRetries: Int

    /// The contract's alert object (`GET /api/alerts/active|history`).
    public func write(_ w: inout JSONWriter) {
        func time(_ ms: Int64?) -> String? { ms.map { Clock.iso8601(Double($0) / 1000) } }
        w.beginObject()
        w.field("id", Int(id))
        w.field("rule_id", Int(ruleID))
        w.field("rule_name", ruleName)
        w.field("metric", metric)
        w.field("label", label.isEmpty ? nil : label)
        w.field("state", state.rawValue)
        w.field("severity", severity.rawValue)
        w.field("value", value, places: 3)
        w.field("threshold", threshold, places: 3)
        w.field("started_at", time(pendingSince))
        w.field("fired_at", time(firedAt))
        w.field("resolved_at", time(resolvedAt))
        w.field("acked_by", ackedBy)
        w.field("acked_at", time(ackedAt))
        w.endObject()
    }
}

/// A row of `alert_silences`. A nil matcher field matches anything.
public struct AlertSilence: Sendable, Equatable {
    public var id: Int64 = 0
    public var ruleName: String?
    public var metric: String?
    public var label: String?
    public var severity: AlertRule.Severity?
    /// Unix milliseconds, `startsAt <= t < endsAt`.
    public var startsAt: Int64
    public var endsAt: Int64
    public var createdBy: String
    public var comment: String?

    public func matches(ruleName r: String, metric m: String, label l: String, severity s: AlertRule.Severity) -> Bool {
        (ruleName.map { $0 == r } ?? true) && (metric.map { $0 == m } ?? true) && (label.map { $0 == l } ?? true)
            && (severity.map { $0 == s } ?? true)
    }

    public func write(_ w: inout JSONWriter) {
        w.beginObject()
        w.field("id", Int(id))
        w.beginObject("matcher")
        w.field("rule_name", ruleName)
        w.field("metric", metric)
        w.field("label", label)
        w.field("severity", severity?.rawValue)
        w.endObject()
        w.field("starts_at", Clock.iso8601(Double(startsAt) / 1000))
        w.field("ends_at", Clock.iso8601(Double(endsAt) / 1000))
        w.field("created_by", createdBy)
        w.field("comment", comment)
        w.endObject()
    }
}

/// `alert_rules`, `alerts` and `alert_silences`, by bound parameters only.
public struct AlertRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    // MARK: rules

    static let ruleColumns = """
        id, name, metric, label, comparator, threshold, clear_threshold, for_seconds, keep_firing_for_seconds,
        severity, enabled, targets, created_at, updated_at
        """

    static func decodeRule(_ r: Row) throws -> AlertRule {
        guard let name = r.string(1), let metric = r.string(2), let cmp = r.string(4).flatMap(AlertComparator.init),
              let threshold = r.double(5), let clear = r.double(6), let forS = r.double(7), let keepS = r.double(8),
              let severity = r.string(9).flatMap(AlertRule.Severity.init), let targets = r.string(11) else {
            throw DatabaseError.failed("malformed alert_rules row")
        }
        var rule = AlertRule(name: name, metric: metric, label: r.string(3),
                             condition: AlertCondition(comparator: cmp, threshold: threshold, clearThreshold: clear,
                                                       forSeconds: forS, keepFiringForSeconds: keepS),
                             severity: severity, enabled: r.bool(10), targets: try AlertRule.targets(fromJSON: targets))
        rule.id = r.int64(0) ?? 0
        rule.createdAt = r.int64(12) ?? 0
        rule.updatedAt = r.int64(13) ?? 0
        return rule
    }

    /// Every rule in id order (there are few; the collector reads them at every sample).
    public func rules() throws -> [AlertRule] {
        try db.query("SELECT \(Self.ruleColumns) FROM alert_rules ORDER BY id", []).map(Self.decodeRule)
    }

    public func rule(id: Int64) throws -> AlertRule? {
        try db.queryOne("SELECT \(Self.ruleColumns) FROM alert_rules WHERE id = ?", [.int(id)]).map(Self.decodeRule)
    }

    static func ruleValues(_ r: AlertRule) -> [DBValue] {
        [.text(r.name), .text(r.metric), DBValue(r.label), .text(r.condition.comparator.rawValue), .double(r.condition.threshold),
         .double(r.condition.clearThreshold), .double(r.condition.forSeconds), .double(r.condition.keepFiringForSeconds),
         .text(r.severity.rawValue), DBValue(r.enabled), .text(r.targetsJSON)]
    }

    /// The new id. Throws `DatabaseError.uniqueViolation` when the name is taken.
    public func insert(_ r: AlertRule, now: Int64 = Clock.wallMillis()) throws -> Int64 {
        let rows = try db.query("""
            INSERT INTO alert_rules (name, metric, label, comparator, threshold, clear_threshold, for_seconds,
                keep_firing_for_seconds, severity, enabled, targets, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """, Self.ruleValues(r) + [.int(now), .int(now)])
        guard let id = rows.first?.int64(0) else { throw DatabaseError.failed("INSERT returned no id") }
        return id
    }

    /// False when no such rule exists.
    public func update(id: Int64, _ r: AlertRule, now: Int64 = Clock.wallMillis()) throws -> Bool {
        try db.execute("""
            UPDATE alert_rules SET name = ?, metric = ?, label = ?, comparator = ?, threshold = ?, clear_threshold = ?,
                for_seconds = ?, keep_firing_for_seconds = ?, severity = ?, enabled = ?, targets = ?, updated_at = ?
            WHERE id = ?
            """, Self.ruleValues(r) + [.int(now), .int(id)]) > 0
    }

    public func deleteRule(id: Int64) throws -> Bool {
        try db.execute("DELETE FROM alert_rules WHERE id = ?", [.int(id)]) > 0
    }

    // MARK: alerts

    static let alertColumns = """
        id, rule_id, rule_name, metric, label, severity, state, value, threshold, pending_since, fired_at, resolved_at,
        acked_by, acked_at, notify_retries
        """

    static func decodeAlert(_ r: Row) throws -> AlertRecord {
        guard let id = r.int64(0), let ruleID = r.int64(1), let ruleName = r.string(2), let metric = r.string(3),
              let severity = r.string(5).flatMap(AlertRule.Severity.init), let state = r.string(6).flatMap(AlertState.init),
              let threshold = r.double(8), let pendingSince = r.int64(9) else {
            throw DatabaseError.failed("malformed alerts row")
        }
        return AlertRecord(id: id, ruleID: ruleID, ruleName: ruleName, metric: metric, label: r.string(4) ?? "",
                           severity: severity, state: state, value: r.double(7), threshold: threshold,
                           pendingSince: pendingSince, firedAt: r.int64(10), resolvedAt: r.int64(11),
                           ackedBy: r.string(12), ackedAt: r.int64(13), notifyRetries: r.int(14) ?? 0)
    }

    /// Pending and firing alerts, firing first, then newest first.
    public func open() throws -> [AlertRecord] {
        try db.query("""
            SELECT \(Self.alertColumns) FROM alerts WHERE state IN ('pending', 'firing')
            ORDER BY CASE state WHEN 'firing' THEN 0 ELSE 1 END, id DESC
            """, []).map(Self.decodeAlert)
    }

    /// Resolved alerts, newest first; `before` is the id of the last one of the previous page.
    public func resolved(limit: Int, before: Int64?) throws -> [AlertRecord] {
        try db.query("""
            SELECT \(Self.alertColumns) FROM alerts WHERE state = 'resolved' AND id < ? ORDER BY id DESC LIMIT ?
            """, [.int(before ?? Int64.max), .int(Int64(limit))]).map(Self.decodeAlert)
    }

    public func alert(id: Int64) throws -> AlertRecord? {
        try db.queryOne("SELECT \(Self.alertColumns) FROM alerts WHERE id = ?", [.int(id)]).map(Self.decodeAlert)
    }

    /// Opens an episode (pending, or firing at once when `for` is 0); returns its id.
    public func openAlert(rule: AlertRule, label: String, state: AlertState, value: Double?, now: Int64) throws -> Int64 {
        let rows = try db.query("""
            INSERT INTO alerts (rule_id, rule_name, metric, label, severity, state, value, threshold, pending_since,
                fired_at, notify_retries, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING id
            """, [.int(rule.id), .text(rule.name), .text(rule.metric), .text(label), .text(rule.severity.rawValue),
                  .text(state.rawValue), value.map { .double($0) } ?? .null, .double(rule.condition.threshold), .int(now),
                  state == .firing ? .int(now) : .null, .int(now)])
        guard let id = rows.first?.int64(0) else { throw DatabaseError.failed("INSERT returned no id") }
        return id
    }

    /// Moves an open episode to `state`: firing sets `fired_at`; resolved
    /// sets `resolved_at` and resets the notification retry count.
    public func transition(id: Int64, to state: AlertState, value: Double?, now: Int64) throws {
        try db.execute("""
            UPDATE alerts SET state = ?, value = COALESCE(?, value),
                fired_at = CASE WHEN ? = 'firing' THEN ? ELSE fired_at END,
                resolved_at = CASE WHEN ? = 'resolved' THEN ? ELSE resolved_at END,
                notify_retries = CASE WHEN ? = 'resolved' THEN 0 ELSE notify_retries END,
                updated_at = ?
            WHERE id = ?
            """, [.text(state.rawValue), value.map { .double($0) } ?? .null, .text(state.rawValue), .int(now),
                  .text(state.rawValue), .int(now), .text(state.rawValue), .int(now), .int(id)])
    }

    /// The latest value of an open episode.
    public func setValue(id: Int64, _ value: Double, now: Int64) throws {
        try db.execute("UPDATE alerts SET value = ?, updated_at = ? WHERE id = ?", [.double(value), .int(now), .int(id)])
    }

    /// False unless the alert exists and is open.
    public func ack(id: Int64, by user: String, now: Int64 = Clock.wallMillis()) throws -> Bool {
        try db.execute("""
            UPDATE alerts SET acked_by = ?, acked_at = ?, updated_at = ? WHERE id = ? AND state IN ('pending', 'firing')
            """, [.text(user), .int(now), .int(now), .int(id)]) > 0
    }

    // MARK: silences

    static let silenceColumns = "id, rule_name, metric, label, severity, starts_at, ends_at, created_by, comment"

    static func decodeSilence(_ r: Row) throws -> AlertSilence {
        guard let starts = r.int64(5), let ends = r.int64(6), let by = r.string(7) else {
            throw DatabaseError.failed("malformed alert_silences row")
        }
        return AlertSilence(id: r.int64(0) ?? 0, ruleName: r.string(1), metric: r.string(2), label: r.string(3),
                            severity: r.string(4).flatMap(AlertRule.Severity.init), startsAt: starts, endsAt: ends,
                            createdBy: by, comment: r.string(8))
    }

    /// Silences not yet ended at `now` (current and future), soonest end first.
    public func silences(now: Int64) throws -> [AlertSilence] {
        try db.query("SELECT \(Self.silenceColumns) FROM alert_silences WHERE ends_at > ? ORDER BY ends_at, id",
                     [.int(now)]).map(Self.decodeSilence)
    }

    public func insert(_ s: AlertSilence, now: Int64 = Clock.wallMillis()) throws -> Int64 {
        let rows = try db.query("""
            INSERT INTO alert_silences (rule_name, metric, label, severity, starts_at, ends_at, created_by, comment, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """, [DBValue(s.ruleName), DBValue(s.metric), DBValue(s.label), DBValue(s.severity?.rawValue), .int(s.startsAt),
                  .int(s.endsAt), .text(s.createdBy), DBValue(s.comment), .int(now)])
        guard let id = rows.first?.int64(0) else { throw DatabaseError.failed("INSERT returned no id") }
        return id
    }

    public func deleteSilence(id: Int64) throws -> Bool {
        try db.execute("DELETE FROM alert_silences WHERE id = ?", [.int(id)]) > 0
    }
}

extension Row {
    /// REAL on SQLite, text on PostgreSQL's text protocol.
    func double(_ i: Int) -> Double? {
        switch values[i] {
        case .double(let d): return d
        case .int(let v): return Double(v)
        case .text(let s): return Double(s)
        case .null: return nil
        }
    }
}
