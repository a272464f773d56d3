import Foundation
import Glibc

/// The pool manager. It binds the sockets, spawns workers, and then only
/// waits for signals: it never handles a request.
///
/// Signals are blocked before any child exists and taken synchronously with
/// `sigtimedwait`, so no handler code runs in Swift; the 100 ms timeout is
/// the master's tick for heartbeats, respawns and backoff.
public final class Master {
    struct Worker {
        let pid: pid_t
        let pool: Int
        let slot: Int
        let generation: Int
        let startedAt: Double
        var quitSentAt: Double?
        var killedForTimeout = false
    }

    final class PoolRuntime {
        let name: String
        let address: ListenAddress
        var target: Int
        var fd: Int32 = -1
        var restarts = 0
        var servedByExited = 0
        var deaths: [Double] = []
        var backoffUntil = 0.0
        var backoffLevel = 0
        var timeoutKills = 0

        init(name: String, address: ListenAddress, target: Int) {
            self.name = name
            self.address = address
            self.target = target
        }
    }

    enum Phase: Equatable { case running, graceful(deadline: Double), fast(deadline: Double) }

    private(set) var config: Config
    private let log: Log
    private let executable: String
    private var pools: [PoolRuntime] = []
    private var workers: [pid_t: Worker] = [:]
    private var generation = 0
    private var reloadStartedAt: Double?
    private var phase = Phase.running
    private var pidFile: PidFile?
    private let startedAt = Clock.wallSeconds()
    private var reloads = 0
    private var stateDirty = true

    public init(config: Config, log: Log) {
        self.config = config
        self.log = log
        self.executable = Spawner.currentExecutable()
    }

    // MARK: start

    public func run() throws -> Int32 {
        Self.appendToRegularFileOutputs()
        try prepareDirectories()
        pidFile = try PidFile(path: config.pidFile)
        var signals = Self.handledSignals()
        sigprocmask(SIG_BLOCK, &signals, nil)

        pools = [PoolRuntime(name: "main", address: config.listen, target: config.workers)]
        if config.storageWorkers > 0 {
            pools.append(PoolRuntime(name: "storage", address: config.storageListen, target: config.storageWorkers))
        }
        do {
            for p in pools {
                p.fd = try ListenSocket.bind(p.address, backlog: config.listenBacklog)
                ListenSocket.setAcceptTimeout(p.fd, seconds: config.acceptWakeup)
            }
        } catch {
            cleanup()
            throw error
        }
        for p in pools {
            log.info("pool listening", ["pool": p.name, "listen": p.address.description, "workers": String(p.target)])
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

    private func prepareDirectories() throws {
        var dirs: [(String, Int)] = [(config.stateDir, 0o755), (config.runDir, 0o755), (config.workerStatusDir, 0o755),
                                     (config.cacheDir, 0o700)]
        if config.writesViews { dirs.append((config.viewsDir, 0o755)) }
        for (dir, mode) in dirs {
            if mkdir(dir, mode_t(mode)) != 0 && errno != EEXIST {
                throw ConfigError("cannot create \(dir): \(String(cString: strerror(errno)))")
            }
        }
        chmod(config.cacheDir, 0o700)
        // Views of a previous master may be of another form (before snapshot
        // format 3 the processes view held command lines) or no longer wanted
        // (CC_NGINX_VIEWS or CC_PUBLIC_READ turned off): leave no public copy
        // behind; the first refresh writes them anew.
        Self.removeFiles(in: config.viewsDir, endingWith: ".json")
        // Status files of workers from a previous master are meaningless now.
        Self.removeFiles(in: config.workerStatusDir, endingWith: ".status")
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
            let now = Clock.monotonicSeconds()
            switch phase {
            case .running:
                enforceTimeouts(now: now)
                adjustPools(now: now)
                advanceReload(now: now)
            case .graceful(let deadline), .fast(let deadline):
                if workers.isEmpty { return }
                if now >= deadline {
                    log.warning("stop deadline passed; killing workers", ["remaining": String(workers.count)])
                    for pid in workers.keys { kill(pid, SIGKILL) }
                    phase = .fast(deadline: now + 5)
                } else if case .graceful = phase {
                    resendQuit(now: now)
                }
            }
            if stateDirty { writePoolState() }
        }
    }

    private func handle(signal sig: Int32) {
        switch sig {
        case SIGCHLD: break // reap() runs every tick
        case SIGTERM, SIGINT:
            log.info("fast stop", ["signal": ExitStatus.signalName(sig)])
            closeListeners()
            for pid in workers.keys { kill(pid, SIGTERM) }
            phase = .fast(deadline: Clock.monotonicSeconds() + 5)
        case SIGQUIT:
            guard phase == .running else { return }
            log.info("graceful stop: finishing in-flight requests", ["timeout_s": String(config.gracefulTimeout)])
            closeListeners()
            let now = Clock.monotonicSeconds()
            for pid in Array(workers.keys) { sendQuit(pid, now: now) }
            phase = .graceful(deadline: now + config.gracefulTimeout)
        case SIGHUP:
            guard phase == .running else { return }
            reload()
        case SIGTTIN, SIGTTOU:
            guard phase == .running, let main = pools.first else { return }
            let newTarget = sig == SIGTTIN ? main.target + 1 : max(1, main.target - 1)
            log.info("resizing pool", ["pool": main.name, "from": String(main.target), "to": String(newTarget)])
            main.target = newTarget
            stateDirty = true
        case SIGUSR1:
            log.reopen()
            log.info("reopened logs")
            for pid in workers.keys { kill(pid, SIGUSR1) }
        default: break
        }
    }

    // MARK: workers

    private func spawnWorker(pool index: Int, slot: Int) {
        let pool = pools[index]
        var env = ProcessInfo.processInfo.environment
        env["CC_MASTER_PID"] = String(getpid())
        env["CC_MASTER_STARTED"] = String(startedAt)
        if env["LIBFCGI_OS_CLOSE_POLL_TIMEOUT"] == nil {
            // Workers drain every request body, so libfcgi's 2 s lingering
            // close buys nothing and costs throughput (see README).
            env["LIBFCGI_OS_CLOSE_POLL_TIMEOUT"] = "0"
        }
        if let file = config.configFile { env["CC_CONFIG_FILE"] = file }
        do {
            let pid = try Spawner.spawn(executable: executable,
                                        arguments: ["worker", "--pool", pool.name, "--slot", String(slot)],
                                        environment: env, stdinFD: pool.fd, blockedSignals: [SIGQUIT, SIGUSR1])
            workers[pid] = Worker(pid: pid, pool: index, slot: slot, generation: generation,
                                  startedAt: Clock.monotonicSeconds())
            stateDirty = true
            log.debug("worker started", ["pool": pool.name, "slot": String(slot), "worker_pid": String(pid)])
        } catch {
            log.error("cannot start worker", ["pool": pool.name, "error": String(describing: error)])
            noteDeath(pool: pool, now: Clock.monotonicSeconds())
        }
    }

    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let w = workers.removeValue(forKey: pid) else { continue }
            let pool = pools[w.pool]
            let exit = ExitStatus(waitStatus: status)
            let statusPath = "\(config.workerStatusDir)/\(pid).status"
            let last = WorkerStatusDirectory.read(path: statusPath)
            unlink(statusPath)
            pool.servedByExited += last?.served ?? 0
            stateDirty = true
            var fields = ["pool": pool.name, "slot": String(w.slot), "worker_pid": String(pid),
                          "status": exit.description, "served": String(last?.served ?? 0)]
            if let last, last.busy { fields["in_flight"] = "\(last.method) \(last.path)" }
            let expected = exit.isClean || w.quitSentAt != nil || phase != .running
            if w.killedForTimeout {
                log.error("worker killed after request timeout", fields)
            } else if expected {
                log.info("worker exited", fields)
            } else {
                log.error("worker died", fields)
                noteDeath(pool: pool, now: Clock.monotonicSeconds())
            }
            if phase == .running && w.quitSentAt == nil { pool.restarts += 1 }
        }
    }

    /// php-fpm's emergency restart threshold, as a backoff: too many deaths
    /// in the interval pause respawning instead of spinning.
    private func noteDeath(pool: PoolRuntime, now: Double) {
        pool.deaths.append(now)
        pool.deaths.removeAll { $0 < now - config.emergencyRestartInterval }
        if pool.deaths.count >= config.emergencyRestartThreshold {
            let delay = min(30.0, pow(2.0, Double(pool.backoffLevel)))
            pool.backoffLevel += 1
            pool.backoffUntil = now + delay
            pool.deaths.removeAll()
            log.error("workers keep dying; backing off", ["pool": pool.name, "delay_s": String(delay),
                                                          "threshold": String(config.emergencyRestartThreshold)])
        }
    }

    private func adjustPools(now: Double) {
        for (index, pool) in pools.enumerated() {
            let current = workers.values.filter { $0.pool == index && $0.quitSentAt == nil && $0.generation == generation }
            if current.count < pool.target {
                guard now >= pool.backoffUntil else { continue }
                if pool.backoffLevel > 0 && pool.deaths.isEmpty && now > pool.backoffUntil + config.emergencyRestartInterval {
                    pool.backoffLevel = 0
                }
                let used = Set(current.map(\.slot))
                var slot = 0
                for _ in 0..<(pool.target - current.count) {
                    while used.contains(slot) { slot += 1 }
                    spawnWorker(pool: index, slot: slot)
                    slot += 1
                }
            } else if current.count > pool.target {
                // TTOU: retire the highest slots gracefully.
                for w in current.sorted(by: { $0.slot > $1.slot }).prefix(current.count - pool.target) {
                    sendQuit(w.pid, now: now)
                }
            }
        }
    }

    private func sendQuit(_ pid: pid_t, now: Double) {
        guard var w = workers[pid] else { return }
        if w.quitSentAt == nil { w.quitSentAt = now }
        workers[pid] = w
        kill(pid, SIGQUIT)
    }

    /// A worker blocked in accept() can miss one QUIT (libfcgi checks its flag
    /// just before accept); repeating it is harmless and closes that window.
    private func resendQuit(now: Double) {
        for w in workers.values where w.quitSentAt != nil && now - w.quitSentAt! > 0.5 {
            kill(w.pid, SIGQUIT)
        }
    }

    /// nginx answers 504 at the request timeout; the worker is killed just
    /// after, so it never writes into a connection nginx has given up on.
    private func enforceTimeouts(now: Double) {
        let limitMillis = Int64((config.requestTimeout + 0.5) * 1000)
        let nowMillis = Clock.wallMillis()
        for record in WorkerStatusDirectory.readAll(directory: config.workerStatusDir) {
            guard record.busy, nowMillis - record.sinceMillis > limitMillis, var w = workers[record.pid],
                  !w.killedForTimeout else { continue }
            w.killedForTimeout = true
            workers[record.pid] = w
            pools[w.pool].timeoutKills += 1
            log.error("request timeout; killing worker", ["worker_pid": String(record.pid), "pool": record.pool,
                                                          "request": "\(record.method) \(record.path)",
                                                          "elapsed_ms": String(nowMillis - record.sinceMillis)])
            kill(record.pid, SIGKILL)
        }
    }

    // MARK: reload

    private func reload() {
        do {
            let fresh = try Config.load()
            if fresh.listen != config.listen || fresh.storageListen != config.storageListen {
                log.warning("listen addresses change only on restart; keeping the old ones")
            }
            config = fresh
            for p in pools where p.fd >= 0 { ListenSocket.setAcceptTimeout(p.fd, seconds: fresh.acceptWakeup) }
            pools[0].target = fresh.workers
            if pools.count > 1 { pools[1].target = max(fresh.storageWorkers, 1) }
        } catch {
            log.error("reload: config invalid, keeping the running one", ["error": String(describing: error)])
        }
        log.reopen()
        generation += 1
        reloads += 1
        reloadStartedAt = Clock.monotonicSeconds()
        log.info("reload: replacing every worker", ["generation": String(generation)])
        stateDirty = true
    }

    /// Old workers get QUIT once the new generation is accepting (its status
    /// files exist), so the socket always has someone in accept().
    private func advanceReload(now: Double) {
        guard let started = reloadStartedAt else { return }
        let old = workers.values.filter { $0.generation < generation && $0.quitSentAt == nil }
        if old.isEmpty { reloadStartedAt = nil; return }
        let fresh = workers.values.filter { $0.generation == generation }
        let ready = fresh.filter { access("\(config.workerStatusDir)/\($0.pid).status", F_OK) == 0 }
        let needed = pools.reduce(0) { $0 + $1.target }
        if ready.count >= needed || now - started > 3 {
            for w in old { sendQuit(w.pid, now: now) }
            reloadStartedAt = nil
            log.info("reload: old workers told to finish", ["count": String(old.count)])
        }
    }

    // MARK: state

    private func closeListeners() {
        for p in pools where p.fd >= 0 {
            close(p.fd)
            p.fd = -1
            if case .unix(let path) = p.address { unlink(path) }
        }
    }

    private func cleanup() {
        closeListeners()
        unlink(config.runDir + "/pool.state")
        pidFile?.remove()
        pidFile = nil
    }

    /// Pool-wide figures for the status page, written atomically on change.
    private func writePoolState() {
        stateDirty = false
        var w = JSONWriter()
        w.beginObject()
        w.field("master_pid", Int(getpid()))
        w.field("started_at", startedAt, places: 3)
        w.field("generation", generation)
        w.field("reloads", reloads)
        w.field("phase", phase == .running ? "running" : "stopping")
        w.beginArray("pools")
        for (i, p) in pools.enumerated() {
            w.beginObject()
            w.field("name", p.name)
            w.field("listen", p.address.description)
            w.field("target", p.target)
            w.field("live", workers.values.filter { $0.pool == i }.count)
            w.field("restarts", p.restarts)
            w.field("timeout_kills", p.timeoutKills)
            w.field("served_by_exited", p.servedByExited)
            w.field("backoff", p.backoffUntil > Clock.monotonicSeconds())
            w.endObject()
        }
        w.endArray()
        w.endObject()
        AtomicFile.write(w.bytes, to: config.runDir + "/pool.state", mode: 0o644)
    }
}
