import Foundation

/// A managed service as an admin registered it: what to run, as whom, and how
/// to start, stop, restart and probe it. Runtime state (pid, status) is not
/// part of it.
///
/// The same JSON object is the API body (`POST /api/services`, `PUT
/// /api/services/{name}`), an element of a `services import` file, and the
/// `services.definition` column; `ServiceDefinition.parse` reads it and
/// `jsonObject` writes it, so the three cannot drift. Durations are seconds
/// (JSON numbers, fractions allowed).
public struct ServiceDefinition: Sendable, Equatable {
    /// `^[a-z0-9][a-z0-9_-]{0,62}$`: no `/`, no `.`, so a name is always a
    /// safe single path component (log files derive from it).
    public var name: String
    public var description: String
    /// argv; `command[0]` is run as is (a path, or a name looked up in the
    /// supervisor's `PATH`). Never passed to a shell.
    public var command: [String]
    /// Absolute; nil runs in `/`.
    public var workingDirectory: String?
    /// Variables added to the service's environment (admins only may read it).
    public var environment: [String: String]
    /// A local account name; nil runs as `CC_SERVICES_USER` under a root supervisor (`ServiceAccount`).
    public var user: String?
    public var group: String?
    /// The TCP port the service listens on, for display and probes.
    public var port: Int?
    public var autostart: Bool
    public var restartPolicy: RestartPolicy
    /// Capped exponential backoff: the n-th retry waits
    /// min(initial × 2^(n−1), max) seconds, with jitter.
    public var backoffInitialSeconds: Double
    public var backoffMaxSeconds: Double
    /// Retries before the service is `failed`; it is tried again after `retryCooldownSeconds`.
    public var maxRetries: Int
    public var retryCooldownSeconds: Double
    /// Names of services that must be running before this one starts (and stop after it).
    public var dependsOn: [String]
    /// How long the process must stay up to count as started.
    public var startTimeoutSeconds: Double
    /// How long after the stop signal before SIGKILL.
    public var stopTimeoutSeconds: Double
    public var stopSignal: StopSignal
    public var healthCheck: HealthCheck?
    /// RLIMIT_NOFILE for the service's processes.
    public var limitOpenFiles: Int?
    /// memory.max in bytes, applied only where the service's cgroup v2 has
    /// the memory controller; elsewhere ignored with a warning (`ServiceCgroup`).
    public var limitMemoryBytes: Int64?

    public enum RestartPolicy: String, Sendable, CaseIterable {
        case no, onFailure = "on-failure", always
    }

    /// The signals a service may ask to be stopped with (signal(7) names without SIG).
    public enum StopSignal: String, Sendable, CaseIterable {
        case TERM, INT, HUP, QUIT, KILL, USR1, USR2
    }

    /// A readiness probe: the service is `healthy` after one success and
    /// `unhealthy` after `failureThreshold` failures in a row.
    public struct HealthCheck: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// GET of a loopback http:// URL; healthy when the status matches.
            case http(url: String, expectedStatus: Int)
            /// A TCP connect to this port on 127.0.0.1.
            case tcp(port: Int)
            /// An argv run as the service's user; healthy on exit status 0.
            case exec(command: [String])
        }
        public var kind: Kind
        public var intervalSeconds: Double
        public var timeoutSeconds: Double
        public var failureThreshold: Int
    }

    /// Every default in one place (the API, the import file and the docs use these).
    public enum Defaults {
        public static let restartPolicy = RestartPolicy.onFailure
        public static let backoffInitialSeconds = 1.0
        public static let backoffMaxSeconds = 60.0
        public static let maxRetries = 5
        public static let retryCooldownSeconds = 300.0
        public static let startTimeoutSeconds = 1.0
        public static let stopTimeoutSeconds = 10.0
        public static let stopSignal = StopSignal.TERM
        public static let probeIntervalSeconds = 10.0
        public static let probeTimeoutSeconds = 2.0
        public static let probeFailureThreshold = 3
        public static let probeExpectedStatus = 200
    }

    /// The definition as a JSON object with every field present (nulls for
    /// what is unset), ready for `JSONSerialization` with `.sortedKeys`.
    public var jsonObject: [String: Any] {
        var o: [String: Any] = [
            "name": name, "description": description, "command": command,
            "working_directory": workingDirectory as Any? ?? NSNull(),
            "environment": environment,
            "user": user as Any? ?? NSNull(), "group": group as Any? ?? NSNull(),
            "port": port as Any? ?? NSNull(),
            "autostart": autostart, "restart_policy": restartPolicy.rawValue,
            "backoff_initial_seconds": backoffInitialSeconds, "backoff_max_seconds": backoffMaxSeconds,
            "max_retries": maxRetries, "retry_cooldown_seconds": retryCooldownSeconds,
            "depends_on": dependsOn,
            "start_timeout_seconds": startTimeoutSeconds, "stop_timeout_seconds": stopTimeoutSeconds,
            "stop_signal": stopSignal.rawValue,
        ]
        o["health_check"] = healthCheck.map { $0.jsonObject } ?? NSNull()
        var limits: [String: Any] = [:]
        limits["open_files"] = limitOpenFiles as Any? ?? NSNull()
        limits["memory_bytes"] = limitMemoryBytes as Any? ?? NSNull()
        o["limits"] = limits
        return o
    }

    /// The stored form: `jsonObject` with sorted keys, so equal definitions
    /// have equal bytes (what makes `services import` idempotent).
    public var storedJSON: String {
        let data = try! JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

extension ServiceDefinition.HealthCheck {
    var jsonObject: [String: Any] {
        var o: [String: Any] = ["interval_seconds": intervalSeconds, "timeout_seconds": timeoutSeconds,
                                "failure_threshold": failureThreshold]
        switch kind {
        case .http(let url, let status):
            o["type"] = "http"
            o["url"] = url
            o["expected_status"] = status
        case .tcp(let port):
            o["type"] = "tcp"
            o["port"] = port
        case .exec(let command):
            o["type"] = "exec"
            o["command"] = command
        }
        return o
    }
}
