import Foundation
import Glibc

/// What `/health/detailed` says of alerts, in `run/alert-levels`: each
/// metric's level from the firing alerts and every rule's thresholds. The
/// collector writes it at each sample; main-pool workers read it, so the
/// route needs no database.
///
/// Format: a JSON object `{"levels": {metric: "warning"|"critical"},
/// "rules": [{name, metric, label, comparator, threshold, severity, enabled}]}`;
/// a metric without a firing alert is absent from `levels`. The file's
/// mtime is when it was written.
public struct AlertLevels: Sendable, Equatable {
    public struct Threshold: Sendable, Equatable {
        public var name: String
        public var metric: String
        public var label: String?
        public var comparator: String
        public var threshold: Double
        public var severity: String
        public var enabled: Bool
    }

    /// Metric → the highest severity among its firing alerts.
    public var levels: [String: String]
    public var rules: [Threshold]

    public init(levels: [String: String], rules: [Threshold]) {
        self.levels = levels
        self.rules = rules
    }

    public static func path(runDir: String) -> String { runDir + "/alert-levels" }

    public func encoded() -> [UInt8] {
        var w = JSONWriter(capacity: 512)
        w.beginObject()
        w.beginObject("levels")
        for k in levels.keys.sorted() { w.field(k, levels[k]!) }
        w.endObject()
        w.key("rules")
        writeRules(&w)
        w.endObject()
        return w.bytes
    }

    /// The rules as a JSON array (also `/health/detailed`'s `thresholds`).
    public func writeRules(_ w: inout JSONWriter) {
        w.beginArray()
        for r in rules {
            w.beginObject()
            w.field("name", r.name)
            w.field("metric", r.metric)
            w.field("label", r.label)
            w.field("comparator", r.comparator)
            w.field("threshold", r.threshold, places: 3)
            w.field("severity", r.severity)
            w.field("enabled", r.enabled)
            w.endObject()
        }
        w.endArray()
    }

    public init?(parsing bytes: [UInt8]) {
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let levels = o["levels"] as? [String: String], let rules = o["rules"] as? [[String: Any]] else { return nil }
        self.levels = levels
        self.rules = rules.compactMap { r in
            guard let name = r["name"] as? String, let metric = r["metric"] as? String, let cmp = r["comparator"] as? String,
                  let t = (r["threshold"] as? NSNumber)?.doubleValue, let sev = r["severity"] as? String,
                  let enabled = r["enabled"] as? Bool else { return nil }
            return Threshold(name: name, metric: metric, label: r["label"] as? String, comparator: cmp, threshold: t,
                             severity: sev, enabled: enabled)
        }
    }

    /// World-readable (0644): the same thresholds the public `/health/detailed` shows.
    @discardableResult
    public func write(runDir: String) -> Bool {
        AtomicFile.write(encoded(), to: Self.path(runDir: runDir), mode: 0o644)
    }

    /// Marks an unchanged file as current (its mtime is what readers take
    /// for its age): far cheaper than writing and renaming it again.
    /// False when there is no file to touch.
    @discardableResult
    public static func touch(runDir: String) -> Bool {
        utimensat(AT_FDCWD, path(runDir: runDir), nil, 0) == 0
    }

    /// The levels, unless the file is missing, unreadable or older than
    /// `maxAge` seconds (the collector is down: old levels would lie).
    public static func read(runDir: String, maxAge: Double, now: Double = Clock.wallSeconds()) -> AlertLevels? {
        let path = Self.path(runDir: runDir)
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        guard now - mtime <= maxAge, let data = FileManager.default.contents(atPath: path) else { return nil }
        return AlertLevels(parsing: Array(data))
    }
}
