import Glibc

/// Per-process state handlers share: config, logs, and lazily created
/// services (storage connection, snapshot cache) keyed by type.
///
/// A worker runs one request at a time, so nothing here needs a lock.
public final class WorkerContext {
    public let config: Config
    public let log: Log
    public let pool: String
    public let startedAt: Double
    /// When the master started: the service's uptime, as /health reports it.
    public let serviceStartedAt: Double
    public let pid: Int32
    /// The user this worker dropped to from root (`PrivilegeDrop`); nil when
    /// it runs as the master's own user.
    public let runsAs: WorkerUser?
    public internal(set) var requestsServed = 0
    private var services: [ObjectIdentifier: AnyObject] = [:]

    public init(config: Config, log: Log, pool: String = "main", runsAs: WorkerUser? = nil) {
        self.runsAs = runsAs
        self.config = config
        self.log = log
        self.pool = pool
        self.startedAt = Clock.wallSeconds()
        self.serviceStartedAt = Double(config.masterStartedAt ?? "") ?? startedAt
        self.pid = getpid()
    }

    /// The one instance of `T` in this process, made on first use.
    public func service<T: AnyObject>(_ type: T.Type, make: () throws -> T) rethrows -> T {
        let key = ObjectIdentifier(type)
        if let s = services[key] { return s as! T }
        let s = try make()
        services[key] = s
        return s
    }

    /// Drops a service so the next use makes a new one (after a failure, say).
    public func resetService<T: AnyObject>(_ type: T.Type) {
        services[ObjectIdentifier(type)] = nil
    }
}

public enum Version {
    public static let string = "0.1.0"
    public static let name = "control-center"
}
