/// When a failed notification is tried again: capped exponential backoff
/// (`initial`, then doubled, never above `cap`), for at most `attempts`
/// attempts in all. With the defaults a receiver that is down is tried 8
/// times over about 4 minutes (2+4+8+16+32+64+120 s) before the Notifier
/// reports it failed. No jitter: one collector per host sends to a handful
/// of targets, so there is no herd to spread.
public struct RetrySchedule: Sendable, Equatable {
    /// Seconds before the first retry.
    public var initial: Double
    /// Longest wait between two attempts, seconds.
    public var cap: Double
    /// Attempts in all, the first included.
    public var attempts: Int

    public init(initial: Double = 2, cap: Double = 120, attempts: Int = 8) {
        self.initial = initial
        self.cap = cap
        self.attempts = attempts
    }

    /// Seconds to wait after the `failures`-th failed attempt (1 for the
    /// first) before the next; nil when no attempt is left.
    public func delay(afterFailures failures: Int) -> Double? {
        guard failures >= 1, failures < attempts else { return nil }
        // 2^k overflows nothing as a Double; min() caps it.
        var d = initial
        for _ in 1..<failures where d < cap { d *= 2 }
        return min(cap, d)
    }
}

/// What one attempt's result means for the notification.
enum DeliveryVerdict: Equatable {
    case delivered
    /// Worth another attempt: the receiver may come back (a transport error,
    /// 5xx, 408 Request Timeout, 429 Too Many Requests).
    case retry(String)
    /// Another attempt would fail the same way (any other status: a 4xx says
    /// the request is wrong; a 3xx is a redirect, which is never followed;
    /// a destination outside CC_ALERT_TARGET_ALLOW).
    case permanent(String)

    /// - Parameters:
    ///   - transportError: libcurl's message when the transfer failed, nil when an answer came.
    ///   - status: the HTTP status (0 when none).
    ///   - refusedAddress: the address the Notifier refused to connect to, if it did.
    static func of(transportError: String?, status: Int, refusedAddress: String?) -> DeliveryVerdict {
        if let transportError {
            // Refused one address but reached the next: not a refusal.
            if let refusedAddress { return .permanent("destination \(refusedAddress) is outside CC_ALERT_TARGET_ALLOW") }
            return .retry(transportError)
        }
        switch status {
        case 200..<300: return .delivered
        case 408, 429, 500..<600: return .retry("HTTP \(status)")
        default: return .permanent("HTTP \(status)")
        }
    }
}
