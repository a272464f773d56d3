/// What the master knows about one group of identical children: the request
/// pools today, later the collector and the service supervisor. Every group
/// is spawned, reaped, backed off, reloaded and stopped by the same code
/// (`MasterState`); a group differs from another only in these fields.
public struct ChildGroup: Sendable, Equatable {
    /// php-fpm's `emergency_restart_threshold` / `emergency_restart_interval`,
    /// applied as a backoff: `threshold` unexpected deaths within `interval`
    /// seconds pause respawning for 1, 2, 4 … `maxDelay` seconds.
    public struct RestartPolicy: Sendable, Equatable {
        public var threshold: Int
        public var interval: Double
        public var maxDelay: Double

        public init(threshold: Int, interval: Double, maxDelay: Double = 30) {
            self.threshold = threshold
            self.interval = interval
            self.maxDelay = maxDelay
        }
    }

    /// How a child is told to stop, php-fpm's escalation: QUIT (finish the
    /// current request, then exit), after `quitTimeout` seconds TERM (write
    /// buffered logs, then die), after `termTimeout` more seconds KILL.
    /// A fast stop starts at TERM.
    public struct StopPolicy: Sendable, Equatable {
        public var quitTimeout: Double
        public var termTimeout: Double

        public init(quitTimeout: Double, termTimeout: Double) {
            self.quitTimeout = quitTimeout
            self.termTimeout = termTimeout
        }
    }

    /// A child that rewrites `run/workers/<pid>.status` around each request
    /// (`WorkerStatusRecord`). The master kills one busy longer than
    /// `requestTimeout` seconds, and counts a new child as ready (during a
    /// reload) only once its file exists. Groups without it are ready once
    /// spawned and are never timed out.
    public struct Heartbeat: Sendable, Equatable {
        public var requestTimeout: Double

        public init(requestTimeout: Double) { self.requestTimeout = requestTimeout }
    }

    public var name: String
    /// Arguments after the executable; `--slot N` is appended per child.
    public var arguments: [String]
    /// Bound by the master and given to every child as fd 0 (the FastCGI
    /// convention). A group with a socket serves requests and decides
    /// readiness (`/health/ready`); one without never does.
    public var listen: ListenAddress?
    public var target: Int
    public var restart: RestartPolicy
    public var stop: StopPolicy
    public var heartbeat: Heartbeat?
    /// HUP starts a new generation of this group's children and retires the
    /// old one; otherwise its children live on across reloads.
    public var reloadOnHUP: Bool
    /// Its child writes the views nginx sends without an age check: when
    /// one exits, the master removes them (ViewFiles).
    public var publishesViews: Bool

    public init(name: String, arguments: [String], listen: ListenAddress?, target: Int, restart: RestartPolicy,
                stop: StopPolicy, heartbeat: Heartbeat?, reloadOnHUP: Bool, publishesViews: Bool = false) {
        self.name = name
        self.arguments = arguments
        self.listen = listen
        self.target = target
        self.restart = restart
        self.stop = stop
        self.heartbeat = heartbeat
        self.reloadOnHUP = reloadOnHUP
        self.publishesViews = publishesViews
    }

    public var servesRequests: Bool { listen != nil }

    /// Seconds from TERM to KILL. A worker's TERM handler only writes its
    /// buffered access log (one `write`) before dying, so this is ample.
    static let termTimeout = 5.0

    /// Seconds the supervisor gets to stop its services on QUIT before TERM.
    static let supervisorQuitTimeout = 60.0

    /// The groups `config` asks for: the main pool first (TTIN/TTOU resize
    /// it), then the storage pool unless `CC_STORAGE_WORKERS` is 0, then the
    /// collector (`control-center collector`: one child, no socket), then the
    /// supervisor of managed services unless `CC_SUPERVISOR` is false.
    public static func configured(_ config: Config) -> [ChildGroup] {
        func pool(_ name: String, _ listen: ListenAddress, _ target: Int) -> ChildGroup {
            ChildGroup(name: name, arguments: ["worker", "--pool", name], listen: listen, target: target,
                       restart: RestartPolicy(threshold: config.emergencyRestartThreshold,
                                              interval: config.emergencyRestartInterval),
                       stop: StopPolicy(quitTimeout: config.gracefulTimeout, termTimeout: termTimeout),
                       heartbeat: Heartbeat(requestTimeout: config.requestTimeout), reloadOnHUP: true)
        }
        var groups = [pool("main", config.listen, config.workers)]
        if config.storageWorkers > 0 { groups.append(pool("storage", config.storageListen, config.storageWorkers)) }
        // The collector finishes a sample within one interval of QUIT; a HUP
        // restarts it so that it samples with the new settings.
        groups.append(ChildGroup(name: "collector", arguments: ["collector"], listen: nil, target: 1,
                                 restart: RestartPolicy(threshold: config.emergencyRestartThreshold,
                                                        interval: config.emergencyRestartInterval),
                                 stop: StopPolicy(quitTimeout: config.collectInterval + 2, termTimeout: termTimeout),
                                 heartbeat: nil, reloadOnHUP: true, publishesViews: true))
        if config.supervisor {
            // One child, no socket, untouched by HUP (its services live on).
            // QUIT gives it time to stop every service: the longest stop
            // timeout a definition may have, plus a margin.
            groups.append(ChildGroup(name: "supervisor", arguments: ["supervisor"], listen: nil, target: 1,
                                     restart: RestartPolicy(threshold: config.emergencyRestartThreshold,
                                                            interval: config.emergencyRestartInterval),
                                     stop: StopPolicy(quitTimeout: supervisorQuitTimeout, termTimeout: termTimeout),
                                     heartbeat: nil, reloadOnHUP: false))
        }
        return groups
    }
}
