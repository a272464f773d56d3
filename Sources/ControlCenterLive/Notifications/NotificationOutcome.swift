import ControlCenterCore

/// What became of a notification, for the collector to record: a `failed`
/// outcome is the one `notification_failed` event of a notification that
/// kept failing (or that the receiver refused); `delivered` follows each
/// success, so a target that recovers can be told apart.
public struct NotificationOutcome: Sendable, Equatable {
    public enum Result: Sendable, Hashable {
        case delivered
        /// Why the last attempt failed (libcurl's message or `HTTP <status>`).
        case failed(reason: String)
    }

    public var result: Result
    /// The target as viewers may see it (`NotificationTarget.masked`), so the
    /// outcome can go into an event as it is.
    public var target: NotificationTarget
    public var fingerprint: String
    public var alertname: String
    public var state: AlertNotice.State
    /// Attempts made, the successful one included.
    public var attempts: Int

    /// The event type the collector records for a failure.
    public static let failedEventType = "notification_failed"
}

extension NotificationOutcome {
    /// The source of the events the collector records for alerts.
    public static let eventSource = "alerts"

    /// The `notification_failed` event of a failed outcome (nil for a
    /// delivery): level warning, source `alerts`, target the alert's name,
    /// `data` `{"fingerprint", "state", "target": {"type", "url"}, "attempts",
    /// "reason"}` with the target masked. `wall`: Unix ms.
    public func event(at wall: Int64) -> Event? {
        guard case .failed(let reason) = result else { return nil }
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.field("fingerprint", fingerprint)
        w.field("state", state.rawValue)
        w.beginObject("target")
        w.field("type", target.type.rawValue)
        w.field("url", target.url)
        w.endObject()
        w.field("attempts", attempts)
        w.field("reason", reason)
        w.endObject()
        return Event(ts: wall, level: .warning, source: Self.eventSource, actor: nil, action: Self.failedEventType,
                     target: alertname.isEmpty ? nil : alertname,
                     message: "\(target.type.rawValue) notification of \(alertname) (\(state.rawValue)) to \(target.url) failed after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(reason)",
                     data: String(decoding: w.bytes, as: UTF8.self))
    }
}
