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
