import Foundation

/// A row of `alert_rules`. `label` narrows a labelled metric to one value
/// (`disk` on mount "/"); nil means every value, one alert series each.
public struct AlertRule: Sendable, Equatable {
    public var id: Int64 = 0
    public var name: String
    public var metric: String
    public var label: String?
    public var condition: AlertCondition
    public var severity: Severity
    public var enabled: Bool
    /// Where its notifications go (NotificationTarget: one type for the API, the column and the sender).
    public var targets: [NotificationTarget]
    /// Unix milliseconds.
    public var createdAt: Int64 = 0
    public var updatedAt: Int64 = 0

    public enum Severity: String, Sendable, CaseIterable { case warning, critical }

    public init(name: String, metric: String, label: String? = nil, condition: AlertCondition, severity: Severity,
                enabled: Bool = true, targets: [NotificationTarget] = []) {
        self.name = name
        self.metric = metric
        self.label = label
        self.condition = condition
        self.severity = severity
        self.enabled = enabled
        self.targets = targets
    }

    /// A refused field, answered as 400 `validation_error`.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let field: String
        public let reason: String
        public var description: String { "\(field): \(reason)" }
    }

    static let fields: Set<String> = ["name", "metric", "label", "comparator", "threshold", "clear_threshold",
                                      "for_seconds", "keep_firing_for_seconds", "severity", "enabled", "targets"]
    static let maxSeconds = 7.0 * 86_400
    static let maxTargets = 10

    /// A rule from a request body. `targets` absent keeps `keptTargets`
    /// (a PUT by an operator, who cannot read the stored secrets, need not
    /// resend them); every other omitted field takes its default. New
    /// targets are checked by `NotificationTarget.validate(allow:)`
    /// against `allow` (CC_ALERT_TARGET_ALLOW); its 400 is thrown as is.
    public static func parse(_ o: [String: Any], keptTargets: [NotificationTarget] = [], allow: [CIDR]) throws -> AlertRule {
        for k in o.keys.sorted() where !fields.contains(k) { throw Invalid(field: k, reason: "is not a rule field") }
        func string(_ k: String, max: Int) throws -> String? {
            guard let v = o[k], !(v is NSNull) else { return nil }
            guard let s = v as? String, !s.isEmpty, s.count <= max, !s.unicodeScalars.contains(where: { $0.value < 32 }) else {
                throw Invalid(field: k, reason: "must be a string of 1 to \(max) printable characters")
            }
            return s
        }
        func number(_ k: String) throws -> Double? {
            guard let v = o[k], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, !JSONInput.isBool(n), n.doubleValue.isFinite else {
                throw Invalid(field: k, reason: "must be a number")
            }
            return n.doubleValue
        }
        func seconds(_ k: String) throws -> Double {
            let s = try number(k) ?? 0
            guard (0...maxSeconds).contains(s) else { throw Invalid(field: k, reason: "must be 0 to \(Int(maxSeconds)) seconds") }
            return s
        }
        guard let name = try string("name", max: 100) else { throw Invalid(field: "name", reason: "is required") }
        guard let metric = try string("metric", max: 32) else { throw Invalid(field: "metric", reason: "is required") }
        guard let kind = AlertMetrics.catalog[metric] else {
            throw Invalid(field: "metric", reason: "must be one of \(AlertMetrics.catalog.keys.sorted().joined(separator: ", "))")
        }
        let label = try string("label", max: 256)
        if label != nil, kind.label == nil { throw Invalid(field: "label", reason: "\(metric) has no label") }
        guard let cmpText = try string("comparator", max: 2) else { throw Invalid(field: "comparator", reason: "is required") }
        guard let cmp = AlertComparator(rawValue: cmpText) else { throw Invalid(field: "comparator", reason: "must be >, >=, < or <=") }
        guard let threshold = try number("threshold") else { throw Invalid(field: "threshold", reason: "is required") }
        let clear = try number("clear_threshold") ?? threshold
        if cmp.isUpper ? clear > threshold : clear < threshold {
            throw Invalid(field: "clear_threshold", reason: "must be on the clear side of threshold (\(cmp.isUpper ? "at or below" : "at or above") \(threshold))")
        }
        let severityText = try string("severity", max: 16) ?? Severity.warning.rawValue
        guard let severity = Severity(rawValue: severityText) else { throw Invalid(field: "severity", reason: "must be warning or critical") }
        var enabled = true
        if let v = o["enabled"], !(v is NSNull) {
            guard let n = v as? NSNumber, JSONInput.isBool(n) else { throw Invalid(field: "enabled", reason: "must be true or false") }
            enabled = n.boolValue
        }
        let targets = try o["targets"].map(parseTargets) ?? keptTargets
        if o["targets"] != nil { for t in targets { try t.validate(allow: allow) } }
        return AlertRule(name: name, metric: metric, label: label,
                         condition: AlertCondition(comparator: cmp, threshold: threshold, clearThreshold: clear,
                                                   forSeconds: try seconds("for_seconds"),
                                                   keepFiringForSeconds: try seconds("keep_firing_for_seconds")),
                         severity: severity, enabled: enabled, targets: targets)
    }

    /// `[{type, url, headers}]`, checked for shape here (field names, the
    /// type, string values); the URL and headers are
    /// `NotificationTarget.validate`'s to judge.
    static func parseTargets(_ v: Any) throws -> [NotificationTarget] {
        if v is NSNull { return [] }
        guard let list = v as? [Any], list.count <= maxTargets else {
            throw Invalid(field: "targets", reason: "must be an array of at most \(maxTargets) targets")
        }
        return try list.enumerated().map { i, item in
            let f = "targets[\(i)]"
            guard let t = item as? [String: Any] else { throw Invalid(field: f, reason: "must be an object") }
            for k in t.keys.sorted() where !["type", "url", "headers"].contains(k) {
                throw Invalid(field: "\(f).\(k)", reason: "is not a target field")
            }
            guard let type = t["type"] as? String, let kind = NotificationTarget.Kind(rawValue: type) else {
                throw Invalid(field: "\(f).type", reason: "must be webhook or alertmanager")
            }
            guard let url = t["url"] as? String else { throw Invalid(field: "\(f).url", reason: "must be a string") }
            var headers: [String: String] = [:]
            if let h = t["headers"], !(h is NSNull) {
                guard let obj = h as? [String: Any], let strings = obj as? [String: String] else {
                    throw Invalid(field: "\(f).headers", reason: "must be an object of string values")
                }
                headers = strings
            }
            return NotificationTarget(type: kind, url: url, headers: headers)
        }
    }

    /// The targets as stored in `alert_rules.targets` (sorted keys, so an
    /// unchanged rule stores the same bytes).
    public var targetsJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(targets)) ?? Data("[]".utf8), as: UTF8.self)
    }

    /// The stored column back; malformed text is a storage error.
    static func targets(fromJSON text: String) throws -> [NotificationTarget] {
        guard let t = try? JSONDecoder().decode([NotificationTarget].self, from: Data(text.utf8)) else {
            throw DatabaseError.failed("malformed alert_rules.targets")
        }
        return t
    }

    /// The API's rule object. Without `secrets`, a target shows only its
    /// type, its URL's scheme and host, and its header names.
    public func write(_ w: inout JSONWriter, secrets: Bool) {
        w.beginObject()
        w.field("id", Int(id))
        w.field("name", name)
        w.field("metric", metric)
        w.field("label", label)
        w.field("comparator", condition.comparator.rawValue)
        w.field("threshold", condition.threshold, places: 3)
        w.field("clear_threshold", condition.clearThreshold, places: 3)
        w.field("for_seconds", condition.forSeconds, places: 3)
        w.field("keep_firing_for_seconds", condition.keepFiringForSeconds, places: 3)
        w.field("severity", severity.rawValue)
        w.field("enabled", enabled)
        w.beginArray("targets")
        for stored in targets {
            let t = secrets ? stored : stored.masked
            w.beginObject()
            w.field("type", t.type.rawValue)
            w.field("url", t.url)
            w.beginObject("headers")
            for k in t.headers.keys.sorted() { w.field(k, t.headers[k]!) }
            w.endObject()
            w.endObject()
        }
        w.endArray()
        w.field("masked", !secrets && !targets.isEmpty)
        w.field("created_at", Clock.iso8601(Double(createdAt) / 1000))
        w.field("updated_at", Clock.iso8601(Double(updatedAt) / 1000))
        w.endObject()
    }
}
