import ControlCenterCore

/// The request bodies of the two target types, written from an AlertNotice
/// with sorted keys so that the same notice gives the same bytes.
enum NotificationBody {
    /// The receiver name in webhook messages.
    static let receiver = "control-center"
    /// Alertmanager's "not yet" timestamp (Go's zero time.Time), its
    /// webhook's `endsAt` for a firing alert.
    static let zeroTime = -62_135_596_800.0

    /// Alertmanager's webhook message (version 4 of its format, one alert per
    /// message, the group being the alert itself), so receivers written for
    /// Alertmanager take it as is: `{"version":"4", "groupKey", "status",
    /// "receiver", "groupLabels", "commonLabels", "commonAnnotations",
    /// "externalURL", "truncatedAlerts", "alerts":[{"status", "labels",
    /// "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
    /// "value"}]}`. `value` is ours: the metric's value at the last evaluation.
    static func webhook(_ n: AlertNotice) -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        w.beginObject()
        w.field("version", "4")
        w.field("groupKey", n.fingerprint)
        w.field("status", n.state.rawValue)
        w.field("receiver", receiver)
        w.beginObject("groupLabels")
        w.endObject()
        object(&w, "commonLabels", n.labels)
        object(&w, "commonAnnotations", n.annotations)
        w.field("externalURL", "")
        w.field("truncatedAlerts", 0)
        w.beginArray("alerts")
        w.beginObject()
        w.field("status", n.state.rawValue)
        object(&w, "labels", n.labels)
        object(&w, "annotations", n.annotations)
        w.field("startsAt", timestamp: n.startsAt.timeIntervalSince1970)
        w.field("endsAt", timestamp: n.state == .resolved ? (n.endsAt ?? n.startsAt).timeIntervalSince1970 : zeroTime)
        w.field("generatorURL", n.generatorURL ?? "")
        w.field("fingerprint", n.fingerprint)
        w.field("value", n.value, places: 6)
        w.endObject()
        w.endArray()
        w.endObject()
        return w.bytes
    }

    /// Alertmanager's `POST /api/v2/alerts` body, `[{"labels", "annotations",
    /// "startsAt", "endsAt", "generatorURL"?}]` (its OpenAPI `postableAlerts`).
    /// A firing alert ends `endsAtAhead` seconds after `now` (wall seconds)
    /// unless it is sent again, as Prometheus does; a resolved one at its `endsAt`.
    static func alertmanager(_ n: AlertNotice, now: Double, endsAtAhead: Double) -> [UInt8] {
        var w = JSONWriter(capacity: 512)
        w.beginArray()
        w.beginObject()
        object(&w, "labels", n.labels)
        object(&w, "annotations", n.annotations)
        w.field("startsAt", timestamp: n.startsAt.timeIntervalSince1970)
        w.field("endsAt", timestamp: n.state == .resolved ? (n.endsAt?.timeIntervalSince1970 ?? now) : now + endsAtAhead)
        if let url = n.generatorURL { w.field("generatorURL", url) }
        w.endObject()
        w.endArray()
        return w.bytes
    }

    private static func object(_ w: inout JSONWriter, _ key: String, _ values: [String: String]) {
        w.beginObject(key)
        for (k, v) in values.sorted(by: { $0.key < $1.key }) { w.field(k, v) }
        w.endObject()
    }
}
