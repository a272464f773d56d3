import Foundation

/// The supervisor's decisions about one service, without system calls:
/// what an exit means under the restart policy, and how long to back off.
/// Times are wall-clock seconds (they are stored and shown).
public enum ServicePolicy {
    /// `service_state.status` and `GET /api/services/{name}/status`.
    public enum Status: String, Sendable, CaseIterable {
        case stopped, starting, running, stopping, failed, backoff
    }

    /// How a process ended (waitpid(2)): an exit code, or the signal that killed it.
    public struct Exit: Sendable, Equatable {
        public var code: Int32?
        public var signal: Int32?

        public init(code: Int32? = nil, signal: Int32? = nil) {
            self.code = code
            self.signal = signal
        }

        /// Anything but exit code 0 is a failure.
        public var isFailure: Bool { code != 0 || signal != nil }
    }

    /// What the supervisor keeps per service between events.
    public struct Runtime: Sendable, Equatable {
        public var status: Status = .stopped
        /// Whether the last accepted action (or autostart) wants it running.
        public var wanted = false
        public var pid: Int32?
        /// The process's start time in clock ticks since boot (/proc/PID/stat
        /// field 22), which tells it from a later process given the same pid.
        public var startTicks: UInt64?
        public var startedAt: Double?
        /// Restarts made by the policy, ever (shown in the status).
        public var restarts = 0
        /// Failed runs in a row; backoff grows with it, and it resets once a
        /// run reaches `running` and lasts `backoffMaxSeconds`, or after the cool-down.
        public var failures = 0
        public var lastExit: Exit?
        public var lastExitAt: Double?
        /// When a `backoff` or `failed` service is tried again.
        public var nextRetryAt: Double?
        /// When a `stopping` service gets SIGKILL.
        public var killAt: Double?

        public init() {}
    }

    /// The wait before the `failures`-th retry: initial × 2^(failures−1),
    /// capped at the maximum, then scaled by `jitter` (0.9…1.1, so that
    /// services that failed together do not retry together) and capped again.
    public static func backoff(_ def: ServiceDefinition, failures: Int, jitter: Double) -> Double {
        let exponent = Double(max(0, min(failures - 1, 60)))
        let raw = min(def.backoffInitialSeconds * pow(2, exponent), def.backoffMaxSeconds)
        return min(raw * jitter, def.backoffMaxSeconds)
    }

    /// The state after the service's main process ended at `now`.
    /// A stop that was asked for ends `stopped`; otherwise the policy says
    /// whether to retry (`backoff`), give up until the cool-down (`failed`),
    /// or stay down (`stopped` after a clean exit, `failed` after a failure).
    public static func afterExit(_ def: ServiceDefinition, _ rt: Runtime, _ exit: Exit, now: Double, jitter: Double) -> Runtime {
        var r = rt
        r.pid = nil
        r.startTicks = nil
        r.killAt = nil
        r.lastExit = exit
        r.lastExitAt = now
        let ranFor = rt.startedAt.map { now - $0 } ?? 0
        r.startedAt = nil
        guard rt.wanted, rt.status != .stopping else {
            r.status = .stopped
            r.nextRetryAt = nil
            return r
        }
        // A run shorter than the start timeout never counted as started: a failure even with exit 0.
        let failed = exit.isFailure || ranFor < def.startTimeoutSeconds
        // Only a run that got to `running` and lasted the longest backoff clears the count.
        if rt.status == .running && ranFor >= max(def.backoffMaxSeconds, def.startTimeoutSeconds) { r.failures = 0 }
        let restart: Bool
        switch def.restartPolicy {
        case .no: restart = false
        case .onFailure: restart = failed
        case .always: restart = true
        }
        guard restart else {
            r.status = failed ? .failed : .stopped
            r.wanted = false
            r.nextRetryAt = nil
            return r
        }
        if failed { r.failures += 1 }
        if r.failures > def.maxRetries {
            r.status = .failed
            r.nextRetryAt = now + def.retryCooldownSeconds
        } else {
            r.status = .backoff
            r.nextRetryAt = now + (failed ? backoff(def, failures: r.failures, jitter: jitter) : def.backoffInitialSeconds)
        }
        return r
    }

    /// Whether a wanted service that is not running may be started at `now`
    /// (its dependencies aside). A `failed` service past its cool-down starts
    /// over with no failures counted.
    public static func mayStart(_ rt: Runtime, now: Double) -> Bool {
        guard rt.wanted, rt.pid == nil else { return false }
        switch rt.status {
        case .stopped: return true
        case .backoff, .failed: return (rt.nextRetryAt ?? 0) <= now
        case .starting, .running, .stopping: return false
        }
    }

    /// `starting` becomes `running` once the process has been up for the start timeout.
    public static func isStarted(_ def: ServiceDefinition, _ rt: Runtime, now: Double) -> Bool {
        rt.status == .starting && rt.startedAt.map { now - $0 >= def.startTimeoutSeconds } == true
    }

    /// Start order: every service after the services it depends on (the
    /// registry refuses cycles, so this always succeeds); ties by name.
    public static func startOrder(_ dependencies: [String: [String]]) -> [String] {
        var done = Set<String>()
        var order: [String] = []
        func visit(_ n: String) {
            guard !done.contains(n) else { return }
            done.insert(n)
            for d in (dependencies[n] ?? []).sorted() where dependencies[d] != nil { visit(d) }
            order.append(n)
        }
        for n in dependencies.keys.sorted() { visit(n) }
        return order
    }
}
