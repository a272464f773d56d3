import Foundation
import Glibc

/// The master: binds the sockets, spawns the children of every group, and
/// then only waits for signals; it never handles a request.
///
/// This is the syscall layer around `MasterState`, which makes every
/// decision: signals and reaped children go in, and the actions its `tick`
/// returns (spawn, signal) are carried out here. Signals are blocked before
/// any child exists and taken synchronously with `sigtimedwait`, so no
/// handler code runs in Swift; the 100 ms timeout is the master's tick.
public final class Master {
    private(set) var config: Config
    private let log: Log
    private let executable: String
    private var state: MasterState
    /// Listening socket per group (same index), -1 for a group without one.
    private var listeners: [Int32] = []
    private var pidFile: PidFile?
    private let startedAt = Clock.wallSeconds()
    private let systemd = SystemdNotify(environment: ProcessInfo.processInfo.environment)
    /// READY=1 was sent for the current generation; cleared by a HUP.
    private var reportedReady = false
    /// The new binary's `migrate --check`, run on HUP before the reload.
    private var schemaCheck: (pid: pid_t, startedAt: Double)?
    /// CC_USER when the master is root: request workers drop to it, and the
    /// files they share with root's children get its group.
    private let workerUser: WorkerUser?

    /// - Parameter workerUser: `WorkerUser.resolve(config)`, done by the
    ///   caller before it touches the state directory.
    public init(config: Config, log: Log, workerUser: WorkerUser?) {
        self.workerUser = workerUser
        self.config = config
        self.log = log
        self.executable = Spawner.currentExecutable()
        self.state = MasterState(groups: ChildGroup.configured(config))
    }

    // MARK: start

    public func run() throws -> Int32 {
        Self.appendToRegularFileOutputs()
        try prepareDirectories()
        pidFile = try PidFile(path: config.pidFile)
        var signals = Self.handledSignals()
        sigprocmask(SIG_BLOCK, &signals, nil)

        do {
            let group = try Self.socketGroup(nginxUser: config.nginx.user)
            for g in state.groups {
                guard let address = g.spec.listen else { listeners.append(-1); continue }
                let fd = try ListenSocket.bind(address, backlog: config.listenBacklog, group: group)
                listeners.append(fd)
                ListenSocket.setAcceptTimeout(fd, seconds: config.acceptWakeup)
                log.info("pool listening", ["pool": g.spec.name, "listen": address.description,
                                            "workers": String(g.spec.target)])
            }
        } catch {
            cleanup()
            throw error
        }
        log.info("master started", ["version": Version.string, "executable": executable])
        loop(signals: &signals)
        cleanup()
        log.info("master stopped")
        return 0
    }

    /// `Scripts/run > file`: the workers inherit stdout (the default access
    /// log) and stderr as one shared offset, while nginx opens /dev/stdout
    /// for its own lines with O_APPEND; without O_APPEND here too, the
    /// workers' writes land on top of nginx's. Pipes and terminals need nothing.
    static func appendToRegularFileOutputs() {
        for fd: Int32 in [1, 2] {
            var st = stat()
            guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            let flags = fcntl(fd, F_GETFL)
            if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_APPEND) }
        }
    }

    /// The group of nginx's workers (CC_NGINX_USER), which the sockets are
    /// shared with; nil when nginx runs as the master's own user.
    static func socketGroup(nginxUser: String?) throws -> gid_t? {
        guard let user = nginxUser else { return nil }
        guard let pw = getpwnam(user) else { throw ConfigError("CC_NGINX_USER \(user) is not a user on this host") }
        return pw.pointee.pw_gid
    }

    private func prepareDirectories() throws {
        var dirs: [(String, Int)] = [(config.stateDir, 0o755), (config.runDir, 0o755), (config.workerStatusDir, 0o755),
                                     (config.cacheDir, 0o700), (config.publishDir, 0o700),
                                     (MetricsStore(runDir: config.runDir).directory, 0o700), (config.actionWaitDir, 0o700)]
        if config.writesViews { dirs.append((config.viewsDir, 0o755)) }
        for (dir, mode) in dirs {
            if mkdir(dir, mode_t(mode)) != 0 && errno != EEXIST {
                throw ConfigError("cannot create \(dir): \(String(cString: strerror(errno)))")
            }
        }
        chmod(config.cacheDir, 0o700)
        chmod(config.publishDir, 0o700)
        if let user = workerUser { try share(with: user) }
        // nginx's workers run as another user (CC_NGINX_USER) and reach the
        // sockets and the views through these: search permission, no listing.
        if let user = config.nginx.user {
            for dir in [config.stateDir, config.runDir] where Self.addSearchPermission(dir) {
                log.info("made the directory traversable for nginx's workers", ["dir": dir])
            }
            if let blocked = DirectoryReach.firstUnsearchable(path: config.runDir, user: user) {
                throw ConfigError("nginx's workers run as \(user) (CC_NGINX_USER) and cannot reach the sockets in "
                    + "\(config.runDir): \(blocked) is not searchable by \(user). Put CC_STATE_DIR under a path "
                    + "\(user) can traverse, or grant it search only: setfacl -m u:\(user):x \(blocked)")
            }
        }
        if let user = workerUser { try checkReach(user) }
        // Views of a previous master may be of another form (before snapshot
        // format 3 the processes view held command lines) or no longer wanted
        // (CC_NGINX_VIEWS or CC_PUBLIC_READ turned off): leave no public copy
        // behind; the first refresh writes them anew.
        Self.removeFiles(in: config.viewsDir, endingWith: ".json")
        // Status files of workers from a previous master are meaningless now.
        Self.removeFiles(in: config.workerStatusDir, endingWith: ".status")
    }

    /// Root's children and the request workers (`user`) share the state
    /// directory through its group (StatePermissions).
    private func share(with user: WorkerUser) throws {
        createLogFiles()
        let failed = StatePermissions.apply(StatePermissions.plan(config), group: user.gid)
        guard failed.isEmpty else {
            throw ConfigError("cannot give the files request workers share (CC_USER \(user.name)) their group and mode: "
                + failed.joined(separator: "; "))
        }
        log.info("request workers run as an unprivileged user", ["user": user.name, "uid": String(user.uid),
                                                                  "gid": String(user.gid)])
    }

    /// Refuses to start when `user` cannot reach the state directory (a
    /// 0700 directory above it); checked after nginx's reach, so that a
    /// directory closed to both is named for nginx first.
    private func checkReach(_ user: WorkerUser) throws {
        if let blocked = DirectoryReach.firstUnsearchable(path: config.stateDir, user: user.name) {
            throw ConfigError("request workers run as \(user.name) (CC_USER) and cannot reach \(config.stateDir): "
                + "\(blocked) is not searchable by \(user.name). Put CC_STATE_DIR under a path \(user.name) can "
                + "traverse, or grant it search only: setfacl -m u:\(user.name):x \(blocked)")
        }
    }

    /// Workers open the log files before they drop root but reopen them on
    /// USR1 as CC_USER, so the master makes each one (as nginx's master
    /// does) and gives it the workers' group, at start and at every USR1.
    private func createLogFiles() {
        for path in StatePermissions.logFiles(config) {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o660)
            if fd >= 0 { close(fd) }
        }
    }

    /// Adds group and other search (x) to `dir`; true if it lacked them.
    static func addSearchPermission(_ dir: String) -> Bool {
        var st = stat()
        guard stat(dir, &st) == 0, st.st_mode & 0o011 != 0o011 else { return false }
        return chmod(dir, (st.st_mode & 0o7777) | 0o011) == 0
    }

    private static func removeFiles(in dir: String, endingWith suffix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for n in names where n.hasSuffix(suffix) { unlink("\(dir)/\(n)") }
    }

    static func handledSignals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGPIPE] {
            sigaddset(&set, s)
        }
        return set
    }

    // MARK: the loop

    private func loop(signals: inout sigset_t) {
        var timeout = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        while true {
            let sig = sigtimedwait(&signals, nil, &timeout)
            if sig > 0 { handle(signal: sig) }
            reap()
            if state.isFinished { return }
            let records = WorkerStatusDirectory.readAll(directory: config.workerStatusDir)
            let heartbeats = Heartbeats(records: records, nowMillis: Clock.wallMillis())
            let now = Clock.monotonicSeconds()
            perform(state.tick(now: now, heartbeats: heartbeats), records: records)
            if state.changed { writePoolState() }
            // Unconditional: a HUP that turned the views off leaves the old ones to age out.
            expireViews()
            expireSchemaCheck(now: now)
            if !reportedReady, schemaCheck == nil, state.isReady(heartbeats: heartbeats) { reportReady() }
        }
    }

    private func handle(signal sig: Int32) {
        switch sig {
        case SIGCHLD: break // reap() runs every tick
        case SIGTERM, SIGINT:
            log.info("fast stop", ["signal": ExitStatus.signalName(sig)])
            systemd.stopping(status: "fast stop")
            abandonSchemaCheck()
            closeListeners()
            state.beginStop(graceful: false)
        case SIGQUIT:
            guard state.phase == .running else { return }
            log.info("graceful stop: finishing in-flight requests", ["timeout_s": String(config.gracefulTimeout)])
            systemd.stopping(status: "graceful stop: finishing in-flight requests")
            abandonSchemaCheck()
            closeListeners()
            state.beginStop(graceful: true)
        case SIGHUP:
            guard state.phase == .running else { return }
            beginSchemaCheck()
        case SIGTTIN, SIGTTOU:
            // The main pool is group 0 (`ChildGroup.configured`).
            guard state.phase == .running, !state.groups.isEmpty else { return }
            let (from, to) = state.resize(group: 0, by: sig == SIGTTIN ? 1 : -1)
            log.info("resizing pool", ["pool": state.groups[0].spec.name, "from": String(from), "to": String(to)])
        case SIGUSR1:
            log.reopen()
            if let user = workerUser {
                createLogFiles()
                StatePermissions.apply(StatePermissions.logFiles(config).map { StatePermissions.Grant($0, 0o660) },
                                       group: user.gid)
            }
            log.info("reopened logs")
            for pid in state.children.keys { kill(pid, SIGUSR1) }
        default: break
        }
    }

    // MARK: actions

    private func perform(_ actions: [MasterAction], records: [WorkerStatusRecord]) {
        var retiredByReload = 0
        for action in actions {
            switch action {
            case .spawn(let group, let slot):
                spawn(group: group, slot: slot)
            case .signal(let pid, let sig, let reason):
                kill(pid, sig)
                let group = state.children[pid].map { state.groups[$0.group].spec.name } ?? "?"
                switch reason {
                case .requestTimeout(let elapsed):
                    let record = records.first { $0.pid == pid }
                    log.error("request timeout; killing worker", [
                        "worker_pid": String(pid), "pool": group, "elapsed_ms": String(elapsed),
                        "request": record.map { "\($0.method) \($0.path)" } ?? "?"])
                case .escalate:
                    log.warning("stop timeout passed; escalating", ["worker_pid": String(pid), "pool": group,
                                                                   "signal": ExitStatus.signalName(sig)])
                case .reload:
                    retiredByReload += 1
                case .resize, .stop, .repeatQuit:
                    break
                }
            }
        }
        if retiredByReload > 0 { log.info("reload: old workers told to finish", ["count": String(retiredByReload)]) }
    }

    /// The environment every child gets: the master's, less systemd's
    /// notification socket (only the master speaks for the unit).
    private func childEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        env["CC_MASTER_PID"] = String(getpid())
        env["CC_MASTER_STARTED"] = String(startedAt)
        if env["LIBFCGI_OS_CLOSE_POLL_TIMEOUT"] == nil {
            // Workers drain every request body, so libfcgi's 2 s lingering
            // close buys nothing and costs throughput (see README).
            env["LIBFCGI_OS_CLOSE_POLL_TIMEOUT"] = "0"
        }
        if let file = config.configFile { env["CC_CONFIG_FILE"] = file }
        // The user the shared files were given at start: a HUP that changes
        // CC_USER in the file must not move workers to another (restart).
        if let user = workerUser { env["CC_USER"] = user.name }
        return env
    }

    private func spawn(group: Int, slot: Int) {
        let spec = state.groups[group].spec
        let env = childEnvironment()
        let fd = listeners[group]
        do {
            // QUIT and USR1 stay blocked until the child installs its
            // handlers, instead of reaching the Swift runtime's crash handler.
            let pid = try Spawner.spawn(executable: executable, arguments: spec.arguments + ["--slot", String(slot)],
                                        environment: env, stdinFD: fd >= 0 ? fd : nil,
                                        blockedSignals: [SIGQUIT, SIGUSR1])
            state.started(pid: pid, group: group, slot: slot, now: Clock.monotonicSeconds())
            log.debug("worker started", ["pool": spec.name, "slot": String(slot), "worker_pid": String(pid)])
        } catch {
            log.error("cannot start worker", ["pool": spec.name, "error": String(describing: error)])
            if let delay = state.spawnFailed(group: group, now: Clock.monotonicSeconds()) {
                logBackoff(group: spec, delay: delay)
            }
        }
    }

    /// Reaps every exited child and routes it to its group; a pid no group
    /// knows is logged, never ignored silently.
    private func reap() {
        var reapedAny = false
        // An exited worker's metrics file is final: fold it into the pool's
        // total now rather than at the next scrape (MetricsStore).
        defer { if reapedAny { MetricsStore(runDir: config.runDir).foldIfFree() } }
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            reapedAny = true
            let exit = ExitStatus(waitStatus: status)
            if let check = schemaCheck, check.pid == pid {
                finishSchemaCheck(exit)
                continue
            }
            let statusPath = "\(config.workerStatusDir)/\(pid).status"
            let last = WorkerStatusDirectory.read(path: statusPath)
            let reaped = state.reaped(pid: pid, status: exit, served: last?.served ?? 0, now: Clock.monotonicSeconds())
            var group: ChildGroup?
            if case .child(let child, _) = reaped { group = state.groups[child.group].spec }
            let entry = ReapLog.entry(pid: pid, status: exit, reaped: reaped, group: group?.name, last: last)
            log.log(entry.level, entry.message, entry.fields)
            guard case .child(let child, let how) = reaped else { continue }
            unlink(statusPath)
            if group?.publishesViews == true { removeViews(reason: "their publisher exited", pid: pid) }
            if case .died(let delay?) = how { logBackoff(group: state.groups[child.group].spec, delay: delay) }
        }
    }

    private func logBackoff(group: ChildGroup, delay: Double) {
        log.error("workers keep dying; backing off", ["pool": group.name, "delay_s": String(delay),
                                                      "threshold": String(group.restart.threshold)])
    }

    // MARK: views

    /// A view older than CC_CACHE_MAX_STALE means a collector that is hung
    /// (it would have rewritten it every TTL/2): nginx must stop sending it.
    private func expireViews() {
        let old = ViewFiles.removeExpired(directory: config.viewsDir, maxStale: config.cacheMaxStale)
        guard !old.isEmpty else { return }
        log.warning("removed nginx-sent views older than CC_CACHE_MAX_STALE; workers answer them until the collector writes them again",
                    ["kinds": old.map(\.rawValue).joined(separator: ","), "max_stale_s": String(config.cacheMaxStale)])
    }

    private func removeViews(reason: String, pid: pid_t) {
        let n = ViewFiles.removeAll(directory: config.viewsDir)
        if n > 0 { log.info("removed the nginx-sent views: \(reason)", ["pid": String(pid), "views": String(n)]) }
    }

    // MARK: reload

    /// Seconds the new binary's schema check may take (it opens one
    /// database connection and reads one row) before the reload is refused.
    static let schemaCheckTimeout = 30.0

    /// HUP: workers start from the binary on disk, which may be a new one,
    /// and they never migrate; so the binary first checks its schema
    /// against the database (`migrate --check`), in a child, while the
    /// running generation keeps serving. The reload goes ahead only if the
    /// schemas match.
    private func beginSchemaCheck() {
        guard schemaCheck == nil else {
            log.info("reload: already checking the new binary; this HUP is folded into it")
            return
        }
        systemd.reloading(monotonicMicros: Clock.monotonicNanos() / 1000)
        reportedReady = false
        do {
            let pid = try Spawner.spawn(executable: executable, arguments: ["migrate", "--check"],
                                        environment: childEnvironment(), stdinFD: nil, discardOutput: true)
            schemaCheck = (pid, Clock.monotonicSeconds())
        } catch {
            log.error("reload refused: cannot run the new binary's schema check; keeping the running generation",
                      ["executable": executable, "error": String(describing: error)])
        }
    }

    private func finishSchemaCheck(_ exit: ExitStatus) {
        schemaCheck = nil
        guard state.phase == .running else { return }
        if exit == .exited(0) {
            reload()
            return
        }
        let reason: String
        if case .exited(let code) = exit { reason = SchemaCheck.explain(exitCode: code) } else { reason = "the check was killed (\(exit))" }
        log.error("reload refused: keeping the running generation", [
            "executable": executable, "check": "migrate --check", "status": exit.description, "reason": reason])
    }

    private func expireSchemaCheck(now: Double) {
        guard let check = schemaCheck, now - check.startedAt > Self.schemaCheckTimeout else { return }
        kill(check.pid, SIGKILL)   // reaped next tick, and refused as killed
        schemaCheck = (check.pid, .infinity)
    }

    private func abandonSchemaCheck() {
        guard let check = schemaCheck else { return }
        kill(check.pid, SIGKILL)
        _ = waitpid(check.pid, nil, 0)
        schemaCheck = nil
    }

    private func reportReady() {
        reportedReady = true
        let pools = state.groups.filter { $0.spec.listen != nil }, others = state.groups.filter { $0.spec.listen == nil }
        var status = "serving: " + pools.map { "\($0.spec.name) \($0.spec.target)" }.joined(separator: ", ") + " workers"
        if !others.isEmpty { status += "; " + others.map { "\($0.spec.name) \($0.spec.target)" }.joined(separator: ", ") }
        systemd.ready(status: status)
        log.info("ready: every group is up", ["reloads": String(state.reloads)])
    }

    private func reload() {
        do {
            let fresh = try Config.load()
            let ignored = state.reconfigure(ChildGroup.configured(fresh))
            if !ignored.isEmpty {
                log.warning("pools and their listen addresses change only on restart; keeping the old ones",
                            ["pools": ignored.joined(separator: ",")])
            }
            if let user = workerUser, fresh.user != user.name {
                log.warning("CC_USER changes only on restart; workers keep running as the old user",
                            ["user": user.name, "configured": fresh.user])
            }
            config = fresh
            for fd in listeners where fd >= 0 { ListenSocket.setAcceptTimeout(fd, seconds: fresh.acceptWakeup) }
        } catch {
            log.error("reload: config invalid, keeping the running one", ["error": String(describing: error)])
        }
        log.reopen()
        state.beginReload(now: Clock.monotonicSeconds())
        log.info("reload: replacing every worker", ["generation": String(state.reloads)])
    }

    // MARK: state

    private func closeListeners() {
        for (i, fd) in listeners.enumerated() where fd >= 0 {
            close(fd)
            listeners[i] = -1
            if case .unix(let path)? = state.groups[i].spec.listen { unlink(path) }
        }
    }

    private func cleanup() {
        closeListeners()
        // nginx may outlive the master: no view may stay behind unrefreshed.
        ViewFiles.removeAll(directory: config.viewsDir)
        unlink(PoolState.path(runDir: config.runDir))
        pidFile?.remove()
        pidFile = nil
    }

    private func writePoolState() {
        state.changed = false
        PoolState(state, masterPid: Int(getpid()), startedAt: startedAt, now: Clock.monotonicSeconds())
            .write(runDir: config.runDir)
    }
}
