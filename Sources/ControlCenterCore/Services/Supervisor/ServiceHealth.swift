/// The supervisor's decisions about a service's health probe, without
/// system calls: when the next probe is due and what a result means.
/// Times are monotonic seconds.
public enum ServiceHealth {
    /// `health` of `GET /api/services/{name}/status` and `service_state.health`.
    public enum Health: String, Sendable, CaseIterable {
        case healthy, unhealthy, unknown
    }

    /// What the supervisor keeps per probed service.
    public struct State: Sendable, Equatable {
        public var health: Health = .unknown
        /// Failed probes in a row (any success resets it).
        public var failures = 0
        public var nextProbeAt: Double
        /// Why the last probe failed ("HTTP 404", "timed out after 2 s"), nil after a success.
        public var lastError: String?

        /// The first probe comes one interval after the service starts (as
        /// Kubernetes' initial delay would), not while it is still binding its port.
        public init(check: ServiceDefinition.HealthCheck, since now: Double) {
            nextProbeAt = now + check.intervalSeconds
        }
    }

    /// The state after a probe that ended at `now`: `healthy` after one
    /// success, `unhealthy` after `failureThreshold` failures in a row,
    /// unchanged in between; the next probe one interval later.
    public static func after(_ check: ServiceDefinition.HealthCheck, _ state: State, error: String?, now: Double) -> State {
        var s = state
        s.nextProbeAt = now + check.intervalSeconds
        s.lastError = error
        if error == nil {
            s.failures = 0
            s.health = .healthy
        } else {
            s.failures += 1
            if s.failures >= check.failureThreshold { s.health = .unhealthy }
        }
        return s
    }

    /// Only a service whose process counts as started is probed.
    public static func isProbed(_ status: ServicePolicy.Status) -> Bool {
        status == .running
    }
}
