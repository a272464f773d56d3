import Foundation

/// Every setting, read from `CC_*` environment variables over an optional
/// `KEY=VALUE` file (`CC_CONFIG_FILE`) over the defaults below.
///
/// Environment wins over the file so that one-off overrides need no edit; the
/// file exists so that a HUP can change settings of a running master.
public struct Config: Sendable, Equatable {
    public var stateDir: String
    public var listen: ListenAddress
    public var storageListen: ListenAddress
    public var workers: Int
    public var storageWorkers: Int
    public var listenBacklog: Int
    public var requestTimeout: Double
    public var maxRequests: Int
    public var maxRequestsJitter: Int
    public var maxBody: Int
    public var gracefulTimeout: Double
    public var emergencyRestartThreshold: Int
    public var emergencyRestartInterval: Double
    public var logFile: String?
    public var accessLog: String?
    public var accessLogBuffer: Int
    public var accessLogFlush: Double
    public var logLevel: LogLevel
    public var testRoutes: Bool
    /// `CC_SUPERVISOR`: the master runs the `supervisor` child group.
    public var supervisor: Bool
    /// `CC_SERVICE_LOG_MAX_BYTES` and `CC_SERVICE_LOG_FILES` (`ServiceLogWriter`).
    public var serviceLogMaxBytes: UInt64
    public var serviceLogFiles: Int
    /// `CC_SERVICES_STOP_ON_EXIT`: on QUIT or TERM the supervisor stops the
    /// services (dependents first); otherwise it leaves them running and the
    /// next supervisor re-adopts them.
    public var servicesStopOnExit: Bool
    /// `CC_SERVICES_TRACKING`: `auto` puts each service in a cgroup v2 of its
    /// own where one is writable (`ServiceCgroup`); `subreaper` never does.
    public var servicesTracking: ServicesTracking
    public enum ServicesTracking: String, Sendable { case auto, subreaper }
    public var pidFile: String
    public var databaseURL: String
    public var dbTimeout: Double
    public var jwtSecret: String?
    public var tokenTTL: Int
    public var publicRead: Bool
    /// Origins, lowercase, whose pages may subscribe with the session
    /// cookie besides the served one (CC_ALLOWED_ORIGINS).
    public var allowedOrigins: [String]
    public var cacheTTL: [String: Double]
    public var cacheMaxStale: Double
    public var nginxViews: Bool
    /// Seconds between the collector's samples (CC_COLLECT_INTERVAL).
    public var collectInterval: Double
    /// Networks besides loopback that may scrape /metrics (CC_METRICS_ALLOW):
    /// nginx's `allow` list and the worker's own check.
    public var metricsAllow: [CIDR]
    /// How long each history tier is kept (HistoryTier), in seconds:
    /// CC_HISTORY_RAW_HOURS, CC_HISTORY_MINUTE_DAYS, CC_HISTORY_15MINUTE_DAYS,
    /// CC_HISTORY_HOUR_DAYS, CC_HISTORY_6HOUR_DAYS.
    public var historyRetention: [HistoryTier: Int64]
    /// Days events (CC_EVENTS_RETENTION_DAYS) and audit records
    /// (CC_AUDIT_RETENTION_DAYS) are kept; EventRetention prunes them.
    public var eventsRetentionDays: Int
    public var auditRetentionDays: Int
    /// Networks alert notification targets may be in (CC_ALERT_TARGET_ALLOW):
    /// checked when a target is stored and again at each connection.
    public var alertTargetAllow: [CIDR]
    public var httpPort: Int
    /// What only nginx's configuration reads (NginxSettings.swift).
    public var nginx: NginxSettings
    public var configFile: String?
    /// `CC_TEST_METRICS_FILE`: the synthetic metric source alerts read
    /// instead of the stats snapshot (AlertMetrics); nil unless CC_TEST_ROUTES=true.
    public var testMetricsFile: String?
    /// `CC_USER`: the unprivileged user request workers run as when the
    /// master is root (`WorkerUser`).
    public var user: String
    /// `CC_SERVICES_USER`: the user a managed service whose definition
    /// names none runs as under a root supervisor (`ServiceAccount`). Not
    /// `CC_USER`: a service must not share the workers' access to
    /// jwt.secret and the database.
    public var servicesUser: String
    /// Set by the master for its workers (CC_MASTER_STARTED).
    public var masterStartedAt: String?

    public var runDir: String { stateDir + "/run" }

    /// How long a blocking accept() in a worker lasts before it returns
    /// EAGAIN, so that an idle worker flushes its buffered access log; 0 when
    /// nothing is buffered.
    public var acceptWakeup: Double {
        accessLogBuffer > 0 && accessLog != "off" ? min(accessLogFlush, 1) : 0
    }
    public var cacheDir: String { stateDir + "/cache" }
    /// Pre-rendered default views that nginx reads itself (world-readable:
    /// they hold only what the public read routes answer anyway).
    public var viewsDir: String { stateDir + "/views" }
    /// Views are written only when nginx may serve them without a token.
    public var writesViews: Bool { nginxViews && publicRead }
    public var workerStatusDir: String { runDir + "/workers" }
    /// flock(2)ed slot files of storage workers waiting on a service action
    /// (`ServiceActionRoutes.waitSlot`).
    public var actionWaitDir: String { runDir + "/action-wait" }
    /// Holds nginx's nchan publisher socket; mode 0700, because nginx makes
    /// every unix socket it listens on 0666 and only the collector may publish.
    public var publishDir: String { runDir + "/publish" }
    /// nginx's nchan publisher socket (control-center-live-http.conf); only
    /// the collector connects to it.
    public var publishSocket: String { publishDir + "/nchan.sock" }
    /// The collector's wake socket (CollectorWake): request workers send to
    /// it after committing a write, so new events are published at once.
    public var collectorWakeSocket: String { runDir + "/collector.wake" }
    /// nginx's internal server for the live channels' handshake checks
    /// (control-center-live-http.conf, with CC_PUBLIC_READ=false).
    public var streamAuthorizeSocket: String { runDir + "/stream-authorize.sock" }
    /// The FIFO a worker writes one byte to after queueing a service action,
    /// so the supervisor takes it at once instead of at its next poll.
    public var supervisorWakePath: String { runDir + "/supervisor.wake" }
    /// The file the supervisor rewrites when a service action ends, watched
    /// by workers answering `?wait=` (`ServiceActionNotice`).
    public var serviceActionNoticePath: String { runDir + "/service-actions.notice" }
    /// Per-service output files (`<name>/<offset>.log`, `ServiceLogFiles`), named from the validated name only.
    public var serviceLogDir: String { stateDir + "/services" }

    /// Setting names with defaults and meaning: README's table and
    /// `check-config` are both printed from this list.
    public static let settings: [(name: String, defaultValue: String, meaning: String)] = [
        ("CC_STATE_DIR", "./var", "State directory: sockets, pid file, cache, database, logs"),
        ("CC_CONFIG_FILE", "(none)", "Optional KEY=VALUE file with any of these settings; re-read on HUP"),
        ("CC_HTTP_PORT", "8080", "Port nginx listens on (Scripts/run, tests)"),
        ("CC_HTTP_ADDR", "127.0.0.1", "IPv4 or IPv6 address nginx listens on (standalone nginx.conf)"),
        ("CC_NGINX_WORKERS", "2", "nginx worker processes (standalone nginx.conf)"),
        ("CC_NGINX_USER", "www-data when run as root, else (none)", "User nginx's workers run as; the FastCGI sockets are mode 0660 with its group"),
        ("CC_STREAM_BUFFER", "120/120", "Live messages nchan keeps per channel for resuming subscribers: COUNT/SECONDS"),
        ("CC_STREAM_MAX_PER_IP", "50", "Live subscriptions per client address (nginx limit_conn; CC_RATE_LIMIT_EXEMPT networks are exempt); more get 429"),
        ("CC_STREAM_SHARDS", "16", "Shards of the system live channel (1-64): nginx puts each client address in one, and the collector publishes to them one after another, so one fan-out never holds nginx's workers for long; 1 = one channel"),
        ("CC_RATE_LIMIT", "50", "Requests per second per client on /api/ (nginx limit_req)"),
        ("CC_RATE_BURST", "100", "Burst allowed above CC_RATE_LIMIT before 429"),
        ("CC_LOGIN_RATE_LIMIT", "10", "Login attempts per minute per client (nginx), before the database throttle"),
        ("CC_RATE_LIMIT_EXEMPT", "127.0.0.0/8,::1", "Comma-separated client CIDRs nginx never rate-limits; may be empty"),
        ("CC_TRUSTED_PROXIES", "(none)", "Comma-separated proxy CIDRs whose X-Forwarded-For nginx believes; empty: the client address is the peer's"),
        ("CC_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1] (plus CC_HTTP_ADDR when that is not loopback)", "Host header names served, without port; others get 421. Required when CC_HTTP_ADDR is 0.0.0.0 or ::"),
        ("CC_WEB_DIR", "web/ of the source tree the binary was built from", "The dashboard's static files, served by nginx under /ui/ (set it where an installed binary's web/ lives)"),
        ("CC_NGINX_KEEPALIVE", "(off)", "Only for measuring: kept-alive FastCGI connections per upstream (harmful with libfcgi)"),
        ("CC_LISTEN", "unix:$CC_STATE_DIR/run/fcgi.sock", "FastCGI socket of the main pool: unix:PATH or HOST:PORT"),
        ("CC_STORAGE_LISTEN", "unix:$CC_STATE_DIR/run/fcgi-storage.sock", "FastCGI socket of the storage pool"),
        ("CC_LISTEN_ALLOW_REMOTE", "false", "true allows a CC_LISTEN / CC_STORAGE_LISTEN TCP address that is not loopback (any host reaching it speaks FastCGI to the pool)"),
        ("CC_WORKERS", "4", "Workers in the main pool (system, health, status routes)"),
        ("CC_STORAGE_WORKERS", "8", "Workers in the storage pool (auth, events); 0 disables the pool"),
        ("CC_LISTEN_BACKLOG", "4096", "listen() backlog; the kernel caps it at net.core.somaxconn"),
        ("CC_REQUEST_TIMEOUT", "10", "Seconds one request may run before nginx answers 504 and the worker is killed"),
        ("CC_MAX_REQUESTS", "50000", "Requests after which a worker is recycled; 0 = never"),
        ("CC_MAX_REQUESTS_JITTER", "10% of CC_MAX_REQUESTS", "Random extra requests per worker, so recycling is staggered"),
        ("CC_MAX_BODY", "1048576", "Largest request body in bytes; larger gets 413"),
        ("CC_GRACEFUL_TIMEOUT", "30", "Seconds a worker told to stop (QUIT) may finish its request before TERM, then KILL 5 s later"),
        ("CC_EMERGENCY_RESTART_THRESHOLD", "10", "Worker deaths within the interval that make the master back off"),
        ("CC_EMERGENCY_RESTART_INTERVAL", "60", "Window in seconds for the threshold above"),
        ("CC_LOG_FILE", "(stderr)", "Master and error log (JSON lines); reopened on USR1"),
        ("CC_ACCESS_LOG", "(stdout)", "Access log (one JSON line per request), a path, or 'off'; reopened on USR1"),
        ("CC_ACCESS_LOG_BUFFER", "32768", "Bytes of access-log lines a worker buffers before one write; 0 = one write per line"),
        ("CC_ACCESS_LOG_FLUSH", "1", "Seconds a buffered access-log line may wait before it is written"),
        ("CC_LOG_LEVEL", "info", "debug, info, warning or error"),
        ("CC_SUPERVISOR", "true", "Run the service supervisor (a child of the master that starts, stops and restarts the registered services)"),
        ("CC_SERVICE_LOG_MAX_BYTES", "10485760", "Size at which a service's output file is rotated (bytes)"),
        ("CC_SERVICE_LOG_FILES", "5", "Output files kept per service (the oldest is deleted at rotation)"),
        ("CC_SERVICES_STOP_ON_EXIT", "false", "Stop the services (dependents first) when Control Center stops; by default they keep running and are re-adopted at the next start"),
        ("CC_SERVICES_TRACKING", "auto", "`auto`: each service in a cgroup v2 of its own where one is writable, else tracked as a child subreaper; `subreaper`: never a cgroup"),
        ("CC_TEST_ROUTES", "false", "Enables /api/test/* routes (tests and load scenarios only)"),
        ("CC_PID_FILE", "$CC_STATE_DIR/run/master.pid", "Master pid file (also the single-master lock)"),
        ("CC_DATABASE_URL", "sqlite://$CC_STATE_DIR/control-center.db", "sqlite:///path or postgres://user@host:port/db"),
        ("CC_DB_TIMEOUT", "5", "Statement timeout in seconds"),
        ("CC_JWT_SECRET", "(generated, $CC_STATE_DIR/jwt.secret)", "HS256 signing secret, at least 32 bytes"),
        ("CC_TOKEN_TTL", "3600", "Access token lifetime in seconds (also the cc_session cookie's Max-Age)"),
        ("CC_ALLOWED_ORIGINS", "(none)", "Comma-separated origins (scheme://host[:port]) besides the served one whose pages may subscribe to the live channels with the session cookie"),
        ("CC_PUBLIC_READ", "true", "Anonymous clients may read the host summary and the public process and port fields (README \"What is public\"); false requires a viewer token on every system route"),
        ("CC_CACHE_TTL_PROCESSES", "2", "Seconds a processes snapshot is fresh (the collector refreshes it every half of this)"),
        ("CC_CACHE_TTL_NETWORK", "2", "Seconds a network snapshot is fresh"),
        ("CC_CACHE_TTL_STATS", "2", "Seconds a stats snapshot is fresh"),
        ("CC_CACHE_TTL_CONNECTIONS", "5", "Seconds a connections/ports snapshot is fresh"),
        ("CC_CACHE_MAX_STALE", "30", "Seconds an old snapshot may still be served (by workers, and by nginx as a view) when the collector is late; beyond it 503"),
        ("CC_COLLECT_INTERVAL", "1", "Seconds between two samples of the collector (stats snapshot and one live message)"),
        ("CC_METRICS_ALLOW", "(none)", "Comma-separated client CIDRs besides loopback that may scrape /metrics (nginx allow list, checked again by the worker)"),
        ("CC_HISTORY_RAW_HOURS", "48", "Hours the collector's raw history samples are kept"),
        ("CC_HISTORY_MINUTE_DAYS", "90", "Days the 1-minute history roll-ups (average, min, max) are kept"),
        ("CC_HISTORY_15MINUTE_DAYS", "90", "Days the 15-minute history roll-ups (average, min, max) are kept"),
        ("CC_HISTORY_HOUR_DAYS", "730", "Days the 1-hour history roll-ups (average, min, max) are kept"),
        ("CC_HISTORY_6HOUR_DAYS", "730", "Days the 6-hour history roll-ups (average, min, max) are kept"),
        ("CC_EVENTS_RETENTION_DAYS", "90", "Days events are kept (the collector prunes older ones, alert transitions included), and closed alerts"),
        ("CC_AUDIT_RETENTION_DAYS", "365", "Days audit records (events of source 'audit') are kept"),
        // Alert notifications (issue 11).
        ("CC_ALERT_TARGET_ALLOW", "127.0.0.0/8,::1", "Comma-separated CIDRs alert notification targets (webhooks, Alertmanager) may resolve to and connect to; a target elsewhere is refused. Add your receivers' networks"),
        ("CC_USER", "control-center", "User the request workers run as when the master is root (the collector and the supervisor keep root); must exist (Scripts/run creates it)"),
        ("CC_SERVICES_USER", "control-center-svc", "User a managed service whose definition names no user runs as under a root master; not CC_USER, so that a service cannot read the workers' secret or database; must exist to start such a service (Scripts/run creates it)"),
        ("CC_NGINX_VIEWS", "true", "nginx sends the default processes, stats and network views itself from the files the collector writes (only with CC_PUBLIC_READ=true)"),
        // Alerts (issue 11 §2).
        ("CC_TEST_METRICS_FILE", "(none)", "Tests only, honoured with CC_TEST_ROUTES=true: a JSON object of series to values ({\"cpu\": 95, \"disk:/\": 97}) that alert rules read instead of the host's figures"),
    ]

    public static func load(environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> Config {
        var values: [String: String] = [:]
        let file = env["CC_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigError("cannot read CC_CONFIG_FILE \(file)")
            }
            values = try parseFile(text)
        }
        let known = Set(settings.map(\.name)).union(internalNames)
        // A typo in the file is an error; the environment may hold CC_ names
        // meant for the scripts (CC_BIN, CC_TEST_*), so those are left alone.
        for k in values.keys where !known.contains(k) { throw ConfigError("unknown setting \(k) in \(file ?? "")") }
        for (k, v) in env where known.contains(k) { values[k] = v }
        return try Config(values: values, configFile: file)
    }

    /// `KEY=VALUE` lines; `#` starts a comment; values may be quoted.
    public static func parseFile(_ text: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { throw ConfigError("line \(n + 1): expected KEY=VALUE") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            }
            guard key.hasPrefix("CC_") else { throw ConfigError("line \(n + 1): \(key) is not a CC_ setting") }
            out[key] = value
        }
        return out
    }

    public init(values v: [String: String], configFile: String? = nil) throws {
        let p = Parser(values: v)
        self.configFile = configFile
        stateDir = Self.absolute(p.string("CC_STATE_DIR") ?? "./var")
        let state = stateDir
        listen = try ListenAddress(parsing: p.string("CC_LISTEN") ?? "unix:\(state)/run/fcgi.sock")
        storageListen = try ListenAddress(parsing: p.string("CC_STORAGE_LISTEN") ?? "unix:\(state)/run/fcgi-storage.sock")
        // A TCP socket has no owner or mode: whoever reaches it talks FastCGI
        // to the pool directly, past nginx's limits, with any REMOTE_ADDR.
        if try !p.bool("CC_LISTEN_ALLOW_REMOTE", default: false) {
            for (name, address) in [("CC_LISTEN", listen), ("CC_STORAGE_LISTEN", storageListen)] where !address.isLoopback {
                throw ConfigError("\(name)=\(address) is not a loopback address: every host that reaches it could "
                    + "send requests to the pool past nginx. Use a unix socket, 127.0.0.1 or [::1], or set "
                    + "CC_LISTEN_ALLOW_REMOTE=true (and firewall the port)")
            }
        }
        workers = try p.int("CC_WORKERS", default: 4, range: 1...512)
        storageWorkers = try p.int("CC_STORAGE_WORKERS", default: 8, range: 0...512)
        listenBacklog = try p.int("CC_LISTEN_BACKLOG", default: 4096, range: 1...1_000_000)
        requestTimeout = try p.double("CC_REQUEST_TIMEOUT", default: 10, range: 0.1...3600)
        maxRequests = try p.int("CC_MAX_REQUESTS", default: 50_000, range: 0...Int(Int32.max))
        maxRequestsJitter = try p.int("CC_MAX_REQUESTS_JITTER", default: maxRequests / 10, range: 0...Int(Int32.max))
        maxBody = try p.int("CC_MAX_BODY", default: 1 << 20, range: 0...(1 << 30))
        gracefulTimeout = try p.double("CC_GRACEFUL_TIMEOUT", default: 30, range: 0...3600)
        emergencyRestartThreshold = try p.int("CC_EMERGENCY_RESTART_THRESHOLD", default: 10, range: 1...100_000)
        emergencyRestartInterval = try p.double("CC_EMERGENCY_RESTART_INTERVAL", default: 60, range: 1...86_400)
        logFile = p.string("CC_LOG_FILE").map(Self.absolute)
        accessLog = p.string("CC_ACCESS_LOG").map { $0 == "off" ? $0 : Self.absolute($0) }
        accessLogBuffer = try p.int("CC_ACCESS_LOG_BUFFER", default: 32768, range: 0...(16 << 20))
        accessLogFlush = try p.double("CC_ACCESS_LOG_FLUSH", default: 1, range: 0.01...3600)
        guard let level = LogLevel(rawValue: p.string("CC_LOG_LEVEL") ?? "info") else {
            throw ConfigError("CC_LOG_LEVEL must be debug, info, warning or error")
        }
        logLevel = level
        testRoutes = try p.bool("CC_TEST_ROUTES", default: false)
        supervisor = try p.bool("CC_SUPERVISOR", default: true)
        serviceLogMaxBytes = UInt64(try p.int("CC_SERVICE_LOG_MAX_BYTES", default: 10 << 20, range: 65_536...(1 << 40)))
        serviceLogFiles = try p.int("CC_SERVICE_LOG_FILES", default: 5, range: 1...1000)
        servicesStopOnExit = try p.bool("CC_SERVICES_STOP_ON_EXIT", default: false)
        guard let tracking = ServicesTracking(rawValue: p.string("CC_SERVICES_TRACKING") ?? "auto") else {
            throw ConfigError("CC_SERVICES_TRACKING must be auto or subreaper")
        }
        servicesTracking = tracking
        pidFile = Self.absolute(p.string("CC_PID_FILE") ?? "\(state)/run/master.pid")
        databaseURL = p.string("CC_DATABASE_URL") ?? "sqlite://\(state)/control-center.db"
        guard databaseURL.hasPrefix("sqlite://") || databaseURL.hasPrefix("postgres://")
            || databaseURL.hasPrefix("postgresql://") else {
            throw ConfigError("CC_DATABASE_URL must start with sqlite:// or postgres://")
        }
        dbTimeout = try p.double("CC_DB_TIMEOUT", default: 5, range: 0.05...600)
        jwtSecret = p.string("CC_JWT_SECRET")
        // RFC 7518 §3.2: an HS256 key must be at least 256 bits.
        if let secret = jwtSecret, secret.utf8.count < JWTSecret.minimumBytes {
            throw ConfigError("CC_JWT_SECRET must be at least \(JWTSecret.minimumBytes) bytes (RFC 7518 §3.2), got \(secret.utf8.count); "
                              + "unset it to use a generated one, or use e.g. `openssl rand -hex 32`")
        }
        tokenTTL = try p.int("CC_TOKEN_TTL", default: 3600, range: 10...(86_400 * 365))
        publicRead = try p.bool("CC_PUBLIC_READ", default: true)
        allowedOrigins = try (p.string("CC_ALLOWED_ORIGINS") ?? "").split(separator: ",").map {
            let o = $0.trimmingCharacters(in: .whitespaces).lowercased()
            guard o.range(of: #"^https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?$"#, options: .regularExpression) != nil else {
                throw ConfigError("CC_ALLOWED_ORIGINS: '\(o)' is not an origin (scheme://host[:port], no path)")
            }
            return o
        }
        cacheTTL = [
            "processes": try p.double("CC_CACHE_TTL_PROCESSES", default: 2, range: 0.05...3600),
            "network": try p.double("CC_CACHE_TTL_NETWORK", default: 2, range: 0.05...3600),
            "stats": try p.double("CC_CACHE_TTL_STATS", default: 2, range: 0.05...3600),
            "connections": try p.double("CC_CACHE_TTL_CONNECTIONS", default: 5, range: 0.05...3600),
        ]
        cacheMaxStale = try p.double("CC_CACHE_MAX_STALE", default: 30, range: 0.1...86_400)
        nginxViews = try p.bool("CC_NGINX_VIEWS", default: true)
        collectInterval = try p.double("CC_COLLECT_INTERVAL", default: 1, range: 0.05...3600)
        metricsAllow = try CIDR.list(p.string("CC_METRICS_ALLOW") ?? "", setting: "CC_METRICS_ALLOW")
        historyRetention = [
            .raw: Int64(try p.int("CC_HISTORY_RAW_HOURS", default: 48, range: 1...(24 * 365))) * 3600,
            .minute: Int64(try p.int("CC_HISTORY_MINUTE_DAYS", default: 90, range: 1...3650)) * 86_400,
            .quarterHour: Int64(try p.int("CC_HISTORY_15MINUTE_DAYS", default: 90, range: 1...36_500)) * 86_400,
            .hour: Int64(try p.int("CC_HISTORY_HOUR_DAYS", default: 730, range: 1...36_500)) * 86_400,
            .sixHours: Int64(try p.int("CC_HISTORY_6HOUR_DAYS", default: 730, range: 1...36_500)) * 86_400,
        ]
        eventsRetentionDays = try p.int("CC_EVENTS_RETENTION_DAYS", default: 90, range: 1...36_500)
        auditRetentionDays = try p.int("CC_AUDIT_RETENTION_DAYS", default: 365, range: 1...36_500)
        alertTargetAllow = try CIDR.list(p.string("CC_ALERT_TARGET_ALLOW") ?? "127.0.0.0/8,::1", setting: "CC_ALERT_TARGET_ALLOW")
        httpPort = try p.int("CC_HTTP_PORT", default: 8080, range: 1...65535)
        nginx = try NginxSettings(p)
        user = p.string("CC_USER") ?? "control-center"
        servicesUser = p.string("CC_SERVICES_USER") ?? "control-center-svc"
        masterStartedAt = p.string("CC_MASTER_STARTED")
        testMetricsFile = testRoutes ? p.string("CC_TEST_METRICS_FILE").map(Self.absolute) : nil
    }

    /// Variables the master passes to its children; not user settings.
    static let internalNames: Set<String> = ["CC_BINARY", "CC_MASTER_PID", "CC_MASTER_STARTED"]

    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        let cwd = FileManager.default.currentDirectoryPath
        var p = path
        while p.hasPrefix("./") { p.removeFirst(2) }
        return p == "." || p.isEmpty ? cwd : cwd + "/" + p
    }

    struct Parser {
        let values: [String: String]

        func string(_ k: String) -> String? {
            guard let v = values[k]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }

        func int(_ k: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
            guard let s = string(k) else { return d }
            guard let v = Int(s), range.contains(v) else {
                throw ConfigError("\(k) must be a whole number in \(range.lowerBound)...\(range.upperBound), got '\(s)'")
            }
            return v
        }

        func double(_ k: String, default d: Double, range: ClosedRange<Double>) throws -> Double {
            guard let s = string(k) else { return d }
            guard let v = Double(s), range.contains(v) else {
                throw ConfigError("\(k) must be a number in \(range.lowerBound)...\(range.upperBound), got '\(s)'")
            }
            return v
        }

        func bool(_ k: String, default d: Bool) throws -> Bool {
            guard let s = string(k)?.lowercased() else { return d }
            switch s {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw ConfigError("\(k) must be true or false, got '\(s)'")
            }
        }
    }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Where a pool listens: a unix socket path or a TCP host and port.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    case unix(String)
    case tcp(host: String, port: Int)

    public init(parsing s: String) throws {
        if s.hasPrefix("unix:") {
            let path = String(s.dropFirst(5))
            guard !path.isEmpty else { throw ConfigError("empty unix socket path") }
            guard path.utf8.count < 108 else { throw ConfigError("unix socket path longer than 107 bytes: \(path)") }
            self = .unix(Config.absolute(path))
        } else if let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) {
            var host = String(s[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self = .tcp(host: host.isEmpty ? "127.0.0.1" : host, port: port)
        } else {
            throw ConfigError("listen address must be unix:PATH or HOST:PORT, got '\(s)'")
        }
    }

    /// True for a unix socket and for a TCP host that only this machine can
    /// reach: an IPv4 literal in 127.0.0.0/8, `::1`, an IPv4-mapped loopback
    /// (`::ffff:127.x.y.z`), or the name `localhost` (RFC 6761 §6.3 reserves
    /// it for loopback). Any other name counts as remote: it may resolve anywhere.
    public var isLoopback: Bool {
        guard case .tcp(let host, _) = self else { return true }
        if host.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        let b = withUnsafeBytes(of: &v6) { Array($0) }
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true } // ::1
        return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF && b[12] == 127
    }

    public var description: String {
        switch self {
        case .unix(let p): return "unix:\(p)"
        case .tcp(let h, let p): return h.contains(":") ? "[\(h)]:\(p)" : "\(h):\(p)"
        }
    }
}
