import CCurl
import CSupport
import Foundation
import Glibc

/// `control-center supervisor`: the master's `supervisor` child group (one
/// process, no socket). It is the parent of every service process, and a
/// child subreaper, so that a service's orphans come back to it; where a
/// cgroup v2 is writable each service also has a cgroup of its own
/// (`ServiceCgroup`), the mode decided once at start.
///
/// Workers never touch a service: they queue an action in `service_actions`
/// and write a byte to the wake-up FIFO (`Config.supervisorWakePath`). The
/// loop sleeps in one poll until an event (that FIFO, a child's exit through
/// a signalfd, a re-adopted process's pidfd, a probe's socket, a service's
/// output) or the next deadline it knows (`SupervisorSchedule`: a start or
/// stop timeout's end, a backoff's end, a probe's due time, a safety round
/// each second), then reaps exits, takes pending actions (at once when
/// woken, else every `SupervisorSchedule.reloadInterval`, which also picks
/// up registry changes), and applies `ServicePolicy`.
/// Every status it reaches is written to `service_state`, and the stable ones
/// (running, stopped, backoff, failed) also as events: a crash loop writes
/// one event per backoff step.
///
/// Health probes (`HealthProber`) run while a service is `running`, one
/// at a time per service; `ServiceHealth` judges their results, and each
/// change to healthy or unhealthy is written to `service_state` and as an
/// event (not each probe). A service that is not running is `unknown`.
///
/// On QUIT or TERM it stops every service (dependents first) and exits when
/// `CC_SERVICES_STOP_ON_EXIT` is true; otherwise it exits at once and leaves
/// them running. On start it re-adopts what a previous supervisor left
/// running (pid and start time from `service_state`, checked against pid
/// reuse): never a second copy. A re-adopted process is not its child, so
/// its exit is seen through a pidfd, with an unknown status. Each service
/// writes to a FIFO of its own under the state directory (`openOutput`), so
/// its output outlives any one supervisor.
public final class Supervisor {
    let config: Config
    let log: Log
    let db: Database
    var definitions: [String: ServiceDefinition] = [:]
    /// `definitions`' names in `ServicePolicy.startOrder`, computed when they change.
    var startOrder: [String] = []
    var runtime: [String: ServicePolicy.Runtime] = [:]
    /// The session (= first pid) of each service's current tree, kept after
    /// the main process exits so that its leftovers can be found, and
    /// dropped once they are gone or killed: the kernel does not reuse a pid
    /// while it names a session with members, but may once it is empty.
    var sessions: [String: Int32] = [:]
    /// The action being carried out per service.
    var inFlight: [String: ServiceAction] = [:]
    /// What was last written to `service_state`, so every change (a reaped
    /// exit included) is written once.
    var recorded: [String: ServicePolicy.Runtime] = [:]
    var restartPending: Set<String> = []
    var messages: [String: String] = [:]
    var wakeFD: Int32 = -1
    /// SIGCHLD, QUIT and TERM (`cc_supervisor_signalfd`).
    var signalFD: Int32 = -1
    var stopRequested = false
    /// `ServiceActionNotice`'s file, -1 when it cannot be opened.
    var noticeFD: Int32 = -1
    /// Output FIFOs being read, by fd, and each service's fd.
    var outputs: [Int32: ServiceOutputPipe] = [:]
    var fifos: [String: Int32] = [:]
    /// pidfds of re-adopted services (not our children: no waitpid).
    var adopted: [String: Int32] = [:]
    var writers: [String: ServiceLogWriter] = [:]
    var stopping = false
    var stopStarted: Double?
    var lastLoad = 0.0
    /// Monotonic time of the last full round (registry, actions, policy, probe scheduling).
    var lastRound = 0.0
    /// `ServiceRepository.fingerprint` of the definitions held.
    var loadedFingerprint: String?
    let prober: HealthProber
    /// Probe state of each service being probed (running, with a health check).
    var health: [String: ServiceHealth.State] = [:]
    /// Signal requests answered (the signal sent or refused) but not yet
    /// recorded: recorded at the next round, never decided or sent twice.
    var unrecordedSignals: [Int64: (ProcessSignal.Outcome, String)] = [:]
    /// The services' cgroups v2, nil in the subreaper mode (decided once, at start).
    var cgroup: ServiceCgroup?

    static let killRepeat = 1.0            // s between SIGKILL rounds

    public init(config: Config, log: Log) throws {
        self.config = config
        self.log = log
        db = try StorageService.open(config)
        guard let p = HealthProber() else { throw ServiceLauncher.Failure(description: "libcurl cannot start") }
        prober = p
    }

    public func run() -> Int32 {
        signalFD = cc_supervisor_signalfd()
        guard signalFD >= 0 else {
            log.error("cannot open the supervisor's signalfd", ["errno": String(errno)])
            return 1
        }
        // A master that dies without stopping us (SIGKILL) leaves no one to
        // restart or stop us: exit as on TERM (stopping the services only
        // with CC_SERVICES_STOP_ON_EXIT).
        cc_set_parent_death_signal(SIGTERM)
        if cc_set_child_subreaper() != 0 {
            log.warning("PR_SET_CHILD_SUBREAPER failed; orphans of services reparent to init", ["errno": String(errno)])
        }
        let (cg, detail) = ServiceCgroup.open(setting: config.servicesTracking, stateDir: config.stateDir)
        cgroup = cg
        log.info("services tracked", ["tracking": (cg == nil ? ServiceTracking.subreaper : .cgroup).rawValue,
                                      cg == nil ? "reason" : "cgroup": detail])
        mkdir(config.serviceLogDir, 0o750)
        unlink(config.supervisorWakePath)
        // 0660: request workers write to it, as CC_USER when the master is
        // root (run/ is set-group-id with that user's group: StatePermissions).
        guard mkfifo(config.supervisorWakePath, 0o600) == 0, chmod(config.supervisorWakePath, 0o660) == 0 else {
            log.error("cannot create the wake-up FIFO", ["path": config.supervisorWakePath, "errno": String(errno)])
            return 1
        }
        noticeFD = ServiceActionNotice.open(config)
        if noticeFD < 0 {
            log.warning("cannot open the action notice file; waiting requests poll", ["path": config.serviceActionNoticePath, "errno": String(errno)])
        }
        // O_RDWR: the FIFO always has a writer (us), so poll never sees a hang-up.
        wakeFD = open(config.supervisorWakePath, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard wakeFD >= 0 else { return 1 }
        do {
            try loadDefinitions(now: Clock.wallSeconds())
            try recoverLeftovers(now: Clock.wallSeconds())
            try ServiceStateRepository(db).forgetHealth()
            for (name, def) in definitions where def.autostart { runtime[name, default: .init()].wanted = true }
        } catch {
            log.error("supervisor cannot read the registry", ["error": String(describing: error)])
            return 1
        }
        log.info("supervisor started", ["services": String(definitions.count)])
        var dueAt = Clock.monotonicSeconds()
        while true {
            // One wait for the wake-up FIFO, the signals, the output pipes,
            // the re-adopted pidfds and the probes' sockets, until the next deadline.
            let outputFDs = Array(outputs.keys), pidfds = Array(adopted)
            var fds = ([wakeFD, signalFD] + outputFDs + pidfds.map(\.value)).map { curl_waitfd(fd: $0, events: Int16(CURL_WAIT_POLLIN), revents: 0) }
            prober.wait(&fds, millis: SupervisorSchedule.pollMillis(dueAt - Clock.monotonicSeconds()))
            let ready = Set(fds.filter { $0.revents != 0 }.map(\.fd))
            let woke = ready.contains(wakeFD)
            if woke { drainWake() }
            if ready.contains(signalFD), cc_supervisor_read_signals(signalFD) & CC_SUPERVISOR_STOP != 0 { stopRequested = true }
            pumpOutputs(outputFDs.filter(ready.contains))
            let now = Clock.wallSeconds()
            if stopRequested && !stopping {
                guard config.servicesStopOnExit else { return leave() }
                stopping = true
                stopStarted = now
                log.info("supervisor stopping its services")
            }
            do {
                let mono = Clock.monotonicSeconds()
                // Every iteration, not only on SIGCHLD: exits coalesce, and one missed costs nothing here.
                var exited = reap(now: now)
                for (name, fd) in pidfds where ready.contains(fd) {
                    close(fd)
                    adopted.removeValue(forKey: name)
                    ended(name, .init(), now: now)
                    exited = true
                }
                takeProbeResults(now: mono)
                // Output and probe sockets alone need no round: their wake-ups only move data and take results.
                if woke || exited || stopping || mono >= dueAt {
                    lastRound = mono
                    if woke || now - lastLoad >= SupervisorSchedule.reloadInterval {
                        try loadDefinitions(now: now)
                        if !stopping { try takeActions(now: now) }
                        try answerSignals()
                    }
                    if stopping { for n in runtime.keys { runtime[n]?.wanted = false } }
                    // A round repeats while it changes something, so that a change that
                    // frees another (a dependent stopped, its dependency may stop) is
                    // acted on now, not at the next round.
                    var passes = 0
                    while try tick(now: now), passes <= runtime.count { passes += 1 }
                    scheduleProbes(now: mono)
                }
            } catch {
                // The database may be down for a while; services keep running and the next round retries.
                log.warning("supervisor round failed", ["error": String(describing: error)])
            }
            if stopping && runtime.values.allSatisfy({ $0.pid == nil && $0.status != .stopping }) {
                log.info("supervisor stopped")
                cgroup?.removeEmpty()
                unlink(config.supervisorWakePath)
                return 0
            }
            if stopping, let since = stopStarted, now - since > ChildGroup.supervisorQuitTimeout {
                log.error("services still running after the stop timeout; exiting",
                          ["services": runtime.filter { $0.value.pid != nil }.keys.sorted().joined(separator: ",")])
                return 1
            }
            dueAt = Clock.monotonicSeconds() + nextDue()
        }
    }

    /// Seconds until the next round with no event (`SupervisorSchedule`).
    func nextDue() -> Double {
        let probing = prober.inFlight
        let services = runtime.map { (runtime: $0.value, startTimeout: definitions[$0.key]?.startTimeoutSeconds ?? 0) }
        let probesDue = health.filter { !probing.contains($0.key) }.map(\.value.nextProbeAt) + prober.execDeadlines
        return SupervisorSchedule.secondsUntilDue(services: services, probesDue: probesDue, wallNow: Clock.wallSeconds(),
                                                  monoNow: Clock.monotonicSeconds(), lastRound: lastRound, lastLoad: lastLoad)
    }

    func pumpOutputs(_ ready: [Int32]) {
        for fd in ready {
            guard let pipe = outputs[fd], !pipe.pump() else { continue }
            close(fd)
            outputs.removeValue(forKey: fd)
            fifos = fifos.filter { $0.value != fd }
        }
    }

    /// QUIT or TERM without `CC_SERVICES_STOP_ON_EXIT`: the services keep
    /// running (their rows keep pid and start time for the next supervisor);
    /// only the probes in flight go.
    func leave() -> Int32 {
        for name in definitions.keys { prober.cancel(name) }
        pumpOutputs(Array(outputs.keys))
        for pipe in outputs.values { pipe.flushPartialLine() }
        log.info("supervisor exiting; services keep running", ["running": String(runtime.values.filter { $0.pid != nil }.count)])
        cgroup?.removeEmpty()
        unlink(config.supervisorWakePath)
        return 0
    }

    static func outputPath(_ config: Config, _ name: String) -> String {
        ServiceLogFiles.directory(config.serviceLogDir, name) + "/output.fifo"
    }

    /// F_SETPIPE_SZ (fcntl(2); not imported into Swift).
    static let setPipeSize: Int32 = 1031
    /// What a service may write while no supervisor reads before its writes
    /// block (the default unprivileged /proc/sys/fs/pipe-max-size).
    static let outputBufferBytes: Int32 = 1 << 20

    /// The supervisor's end of `services/<name>/output.fifo`, created on
    /// first use and kept across supervisors: a service's stdout and stderr
    /// are this FIFO, opened read-write (`start`), so it always has a reader
    /// and a service never gets SIGPIPE because no supervisor runs; its
    /// output waits in the FIFO (up to `outputBufferBytes`) for the next one.
    @discardableResult
    func openOutput(_ name: String) throws -> Int32 {
        if let fd = fifos[name] { return fd }
        let path = Self.outputPath(config, name)
        mkdir(ServiceLogFiles.directory(config.serviceLogDir, name), 0o750)
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFIFO { unlink(path) }
        guard mkfifo(path, 0o600) == 0 || errno == EEXIST else {
            throw ServiceLauncher.Failure(description: "mkfifo \(path): \(String(cString: strerror(errno)))")
        }
        // O_RDWR: no hang-up and no EOF while no service writes.
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw ServiceLauncher.Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, Self.setPipeSize, Self.outputBufferBytes)
        let writer = writers[name] ?? ServiceLogWriter(root: config.serviceLogDir, name: name,
                                                       maxBytes: config.serviceLogMaxBytes, maxFiles: config.serviceLogFiles)
        writers[name] = writer
        outputs[fd] = ServiceOutputPipe(fd: fd, writer: writer)
        fifos[name] = fd
        return fd
    }

    /// A service gone from the registry and from the host: its FIFO goes too.
    func removeOutput(_ name: String) {
        if let fd = fifos.removeValue(forKey: name) {
            _ = outputs[fd]?.pump()
            outputs.removeValue(forKey: fd)
            close(fd)
        }
        writers.removeValue(forKey: name)
        unlink(Self.outputPath(config, name))
    }

    func drainWake() {
        var buf = [UInt8](repeating: 0, count: 256)
        while read(wakeFD, &buf, buf.count) > 0 {}
    }

    /// Re-reads the registry when it changed (one cheap aggregate query
    /// otherwise), so the idle loop parses no JSON.
    func loadDefinitions(now: Double) throws {
        lastLoad = now
        let repo = ServiceRepository(db)
        let fingerprint = try repo.fingerprint()
        guard fingerprint != loadedFingerprint else { return }
        loadedFingerprint = fingerprint
        let stored = try repo.list(limit: Int(Int32.max), offset: 0)
        definitions = Dictionary(uniqueKeysWithValues: stored.map { ($0.definition.name, $0.definition) })
        startOrder = ServicePolicy.startOrder(definitions.mapValues(\.dependsOn))
        // A service removed from the registry is stopped, then forgotten.
        for name in runtime.keys where definitions[name] == nil { runtime[name]?.wanted = false }
    }

    /// Re-adopts what a previous supervisor left running (its pid still
    /// alive with the recorded start time), kills the trees of services no
    /// longer registered, marks what was meant to run as wanted again, and
    /// fails the actions it had taken.
    func recoverLeftovers(now: Double) throws {
        for (name, row) in try ServiceStateRepository(db).all() {
            var rt = ServicePolicy.Runtime()
            rt.restarts = row.restarts
            if let code = row.lastExitCode { rt.lastExit = .init(code: code) }
            if let sig = row.lastExitSignal { rt.lastExit = .init(signal: sig) }
            rt.lastExitAt = row.lastExitAt.map { Double($0) / 1000 }
            // What was meant to run runs again (one copy: the old one is gone).
            rt.wanted = [.starting, .running, .backoff].contains(row.status) || (row.status == .failed && row.nextRetryAt != nil)
            if let pid = row.pid, let ticks = row.startTicks, ServiceProcessTree.startTicks(pid) == ticks {
                if let def = definitions[name], adopt(name, def, pid: pid, ticks: ticks, row, &rt, now: now) {
                    runtime[name] = rt
                    recorded[name] = rt
                    try ServiceStateRepository(db).save(name, rt, message: messages[name])
                    continue
                }
                let members = self.members(name, sessionID: pid)
                log.warning("stopping a service left by a previous supervisor", ["service": name, "pid": String(pid),
                                                                                 "processes": String(members.count)])
                killTree(name, members)
            } else if let cgroup, !cgroup.procs(name).isEmpty {
                // Its main process ended while no supervisor ran: what it left
                // in its cgroup goes before any restart (the subreaper mode cannot tell).
                log.warning("stopping what a service's exited main process left in its cgroup", ["service": name])
                killTree(name, members(name, sessionID: nil))
            }
            runtime[name] = rt
            recorded[name] = rt
            try ServiceStateRepository(db).save(name, rt, message: nil)
        }
        for a in try ServiceActionRepository(db).running() {
            try endAction(a.id, .failed, message: "the supervisor restarted before it finished")
        }
    }

    /// Takes over a running service: watched through a pidfd (taken before
    /// anything else, so the process it names is the one checked by start
    /// time), its output FIFO read again. False when the pidfd cannot be had.
    func adopt(_ name: String, _ def: ServiceDefinition, pid: Int32, ticks: UInt64, _ row: ServiceStateRow,
               _ rt: inout ServicePolicy.Runtime, now: Double) -> Bool {
        let pidfd = cc_pidfd_open(pid)
        guard pidfd >= 0 else { return false }
        guard ServiceProcessTree.startTicks(pid) == ticks else {
            close(pidfd)
            return false
        }
        do {
            try openOutput(name)
        } catch {
            log.warning("cannot read a re-adopted service's output", ["service": name, "error": String(describing: error)])
        }
        adopted[name] = pidfd
        sessions[name] = pid
        rt.pid = pid
        rt.startTicks = ticks
        rt.startedAt = row.startedAt.map { Double($0) / 1000 } ?? now
        switch row.status {
        case .stopping:
            rt.status = .stopping
            rt.wanted = false
            rt.killAt = now + def.stopTimeoutSeconds
        case .starting:
            rt.status = .starting
            rt.wanted = true
        default:
            rt.status = .running
            rt.wanted = true
        }
        messages[name] = "re-adopted pid \(pid)"
        log.info("re-adopted a running service", ["service": name, "pid": String(pid)])
        return true
    }

    /// Answers the workers' `process_signals` requests (`ProcessSignaller`),
    /// each with an event naming who asked. A request older than
    /// `ProcessSignalRoutes.answerSeconds` is refused unsent: its worker has
    /// stopped waiting and told its client that nothing was sent.
    func answerSignals() throws {
        let repo = ProcessSignalRepository(db)
        for r in try repo.pending() {
            let answer: (ProcessSignal.Outcome, String)
            if let done = unrecordedSignals[r.id] {
                answer = done
            } else if Clock.wallMillis() - r.createdAt > Int64(ProcessSignalRoutes.answerSeconds * 1000) {
                answer = (.failed, "expired before the supervisor took it; nothing was sent")
            } else {
                answer = ProcessSignaller.answer(r, master: getppid())
            }
            unrecordedSignals[r.id] = answer
            try repo.answer(r.id, answer.0, message: answer.1)
            unrecordedSignals.removeValue(forKey: r.id)
            // The answer is recorded; its event is a courtesy that a failing insert must not undo.
            _ = try? EventRepository(db).insert(Event(level: answer.0 == .sent ? .info : .warning, source: "supervisor", actor: r.actor,
                                                      action: "process.signal", target: "pid \(r.pid)",
                                                      message: "SIG\(r.signal.rawValue) asked by \(r.actor): \(answer.1)", data: nil))
        }
    }

    /// Pending actions in id order; a newer action on a service supersedes
    /// the one in flight, so the last accepted action decides the end state.
    func takeActions(now: Double) throws {
        let actions = ServiceActionRepository(db)
        for a in try actions.pending() {
            guard definitions[a.service] != nil else {
                try endAction(a.id, .failed, message: "no service \(a.service)")
                continue
            }
            if let old = inFlight[a.service] {
                try endAction(old.id, .superseded, message: "superseded by action \(a.id)")
            }
            var rt = runtime[a.service] ?? .init()
            switch a.kind {
            case .start:
                rt.wanted = true
                restartPending.remove(a.service)
            case .stop:
                rt.wanted = false
                restartPending.remove(a.service)
                // Dependents go first (reverse dependency order).
                for (n, d) in definitions where d.dependsOn.contains(a.service) { runtime[n]?.wanted = false }
            case .restart:
                rt.wanted = true
                if rt.pid != nil { restartPending.insert(a.service) }
            }
            if a.kind != .stop, rt.status == .failed || rt.status == .backoff {
                // An operator's start overrides the backoff and the cool-down.
                rt.failures = 0
                rt.nextRetryAt = nil
            }
            runtime[a.service] = rt
            try actions.mark(a.id, .running)
            var taken = a
            taken.status = .running
            inFlight[a.service] = taken
        }
    }

    /// waitpid until no child is left to reap; orphans that reparented to us
    /// are reaped too. True when a service's process ended (its main process
    /// or a member of its tree, which may be the last of a stopping tree),
    /// not for a probe.
    func reap(now: Double) -> Bool {
        var any = false
        while true {
            var st: Int32 = 0
            let pid = waitpid(-1, &st, WNOHANG)
            guard pid > 0 else { return any }
            if prober.reaped(pid, status: st) { continue }
            any = true
            guard let name = runtime.first(where: { $0.value.pid == pid })?.key else { continue }
            ended(name, cc_wifexited(st) != 0 ? .init(code: cc_wexitstatus(st)) : .init(signal: cc_wtermsig(st)), now: now)
        }
    }

    /// The main process of `name` ended (`exit` has neither code nor signal
    /// when the kernel did not tell: a re-adopted process, seen through its pidfd).
    func ended(_ name: String, _ exit: ServicePolicy.Exit, now: Double) {
        guard var rt = runtime[name] else { return }
        if rt.status == .stopping || definitions[name] == nil {
            // Still `stopping` until the whole tree is gone (tick).
            rt.pid = nil
            rt.lastExit = exit
            rt.lastExitAt = now
            runtime[name] = rt
            return
        }
        // An unexpected exit: what it left behind goes before any restart.
        let session = sessions.removeValue(forKey: name)
        if session != nil || cgroup != nil { killTree(name, members(name, sessionID: session)) }
        rt = ServicePolicy.afterExit(definitions[name]!, rt, exit, now: now, jitter: Double.random(in: 0.9...1.1))
        if let sig = exit.signal {
            messages[name] = "exited with signal \(sig)"
        } else if let code = exit.code {
            messages[name] = "exited with code \(code)"
        } else {
            messages[name] = "exited (status unknown: a re-adopted process is not the supervisor's child)"
        }
        runtime[name] = rt
    }

    /// One pass of the policy over every service, in start order. True when
    /// it changed a service's runtime (so another pass may act on it).
    @discardableResult
    func tick(now: Double) throws -> Bool {
        let known = startOrder + runtime.keys.filter { definitions[$0] == nil }.sorted()
        var changed = false
        for name in known {
            let before = recorded[name] ?? .init()
            let entering = runtime[name] ?? .init()
            var rt = entering
            let def = definitions[name]
            if rt.pid != nil || rt.status == .stopping {
                if rt.status == .starting, let def, ServicePolicy.isStarted(def, rt, now: now) { rt.status = .running }
                if (!rt.wanted || restartPending.contains(name)) && rt.status != .stopping
                    && !definitions.contains(where: { $0.value.dependsOn.contains(name) && runtime[$0.key]?.pid != nil }) {
                    beginStop(name, def, &rt, now: now)
                }
                if rt.status == .stopping { finishStop(name, &rt, now: now) }
            } else if !rt.wanted {
                if rt.status == .backoff || rt.status == .failed && rt.nextRetryAt != nil {
                    rt.status = .stopped
                    rt.nextRetryAt = nil
                }
            } else if let def, ServicePolicy.mayStart(rt, now: now) {
                let waiting = def.dependsOn.filter { runtime[$0]?.status != .running }
                if waiting.isEmpty {
                    start(name, def, &rt, now: now)
                } else {
                    for d in waiting { runtime[d, default: .init()].wanted = true }
                    messages[name] = "waiting for \(waiting.joined(separator: ", "))"
                }
            }
            runtime[name] = rt
            if rt != entering { changed = true }
            if def == nil && rt.pid == nil && rt.status != .stopping {
                runtime.removeValue(forKey: name)
                recorded.removeValue(forKey: name)
                removeOutput(name)
                try? ServiceStateRepository(db).delete(name)
                continue
            }
            // A database error must not stall a stop: the state is written at the next round.
            do {
                if rt != before { try record(name, before, rt, now: now) }
                try finishAction(name, rt)
            } catch {
                log.warning("cannot record a service's state", ["service": name, "error": String(describing: error)])
            }
        }
        return changed
    }

    /// Judges the probes that ended (`now` is monotonic).
    func takeProbeResults(now: Double) {
        for r in prober.collect(now: now) {
            guard let check = definitions[r.service]?.healthCheck, let old = health[r.service] else { continue }
            let new = ServiceHealth.after(check, old, error: r.error, now: now)
            health[r.service] = new
            if new.health != old.health { recordHealth(r.service, new) }
        }
    }

    /// Starts the probes that are due and forgets the health of services no
    /// longer running (`now` is monotonic).
    func scheduleProbes(now: Double) {
        for name in Set(health.keys).union(definitions.keys) {
            let rt = runtime[name]
            guard !stopping, let def = definitions[name], let check = def.healthCheck, let rt, rt.pid != nil,
                  ServiceHealth.isProbed(rt.status) else {
                prober.cancel(name)
                if let old = health.removeValue(forKey: name), old.health != .unknown {
                    // No event: the status change that ended the probing has its own.
                    try? ServiceStateRepository(db).saveHealth(name, .unknown, message: nil)
                }
                continue
            }
            let state = health[name] ?? ServiceHealth.State(check: check, since: now)
            health[name] = state
            if now >= state.nextProbeAt && !prober.isProbing(name) { prober.start(def, check, defaultUser: config.servicesUser, now: now) }
        }
    }

    func recordHealth(_ name: String, _ state: ServiceHealth.State) {
        var text = "service \(name) is \(state.health.rawValue)"
        if let e = state.lastError { text += ": \(e) (\(state.failures) failed probe(s) in a row)" }
        do {
            try ServiceStateRepository(db).saveHealth(name, state.health, message: state.lastError)
            try EventRepository(db).insert(Event(level: state.health == .healthy ? .info : .warning, source: "supervisor", actor: nil,
                                                 action: "service.\(state.health.rawValue)", target: name, message: text, data: nil))
        } catch {
            log.warning("cannot record a service's health", ["service": name, "error": String(describing: error)])
        }
    }

    func beginStop(_ name: String, _ def: ServiceDefinition?, _ rt: inout ServicePolicy.Runtime, now: Double) {
        let signal = def.map { Self.signalNumber($0.stopSignal) } ?? SIGTERM
        let members = self.members(name, sessionID: sessions[name])
        ServiceProcessTree.signal(members, signal)
        rt.status = .stopping
        rt.killAt = now + (def?.stopTimeoutSeconds ?? ServiceDefinition.Defaults.stopTimeoutSeconds)
        messages[name] = "sent SIG\(def?.stopSignal.rawValue ?? "TERM") to \(members.count) process(es)"
    }

    /// `stopping` ends when no process of the tree is left; past the stop
    /// timeout every one left gets SIGKILL (again each second).
    func finishStop(_ name: String, _ rt: inout ServicePolicy.Runtime, now: Double) {
        let members = self.members(name, sessionID: sessions[name])
        if members.isEmpty && rt.pid == nil {
            // An empty session's id may be given to a new process: never look it up again.
            sessions.removeValue(forKey: name)
            cgroup?.remove(name)
            rt.status = .stopped
            rt.killAt = nil
            rt.startedAt = nil
            rt.startTicks = nil
            restartPending.remove(name)
            if rt.wanted { rt.nextRetryAt = nil }
            return
        }
        if let killAt = rt.killAt, now >= killAt {
            killTree(name, members)
            rt.killAt = now + Self.killRepeat
            messages[name] = "stop timeout: sent SIGKILL to \(members.count) process(es)"
        }
    }

    func start(_ name: String, _ def: ServiceDefinition, _ rt: inout ServicePolicy.Runtime, now: Double) {
        let retry = rt.status == .backoff || rt.status == .failed
        if rt.status == .failed { rt.failures = 0 }
        do {
            let account = try ServiceAccount.resolve(def, defaultUser: config.servicesUser)
            try openOutput(name)
            // The service's own open of the FIFO: blocking (its writes wait
            // rather than fail), and read-write (it is never without a reader).
            let output = open(Self.outputPath(config, name), O_RDWR | O_CLOEXEC)
            guard output >= 0 else { throw ServiceLauncher.Failure(description: "output FIFO: \(String(cString: strerror(errno)))") }
            defer { close(output) }
            // Owned by the service's user (mode 0600), so that a service that
            // reopens its output (/dev/stdout, /proc/self/fd/1: an open of the
            // FIFO itself, permission-checked) may write it, and no one else.
            if account.setIDs { _ = fchown(output, account.uid, account.gid) }
            let procs = try cgroup?.prepare(name) ?? -1
            defer { if procs >= 0 { close(procs) } }
            var note = ""
            if let bytes = def.limitMemoryBytes {
                if cgroup?.limitMemory(name, bytes: bytes) != true {
                    note = "; limits.memory_bytes ignored: " + (cgroup == nil ? "no cgroup v2 (subreaper mode)"
                                                                          : "no memory controller in the service's cgroup v2")
                    log.warning("limits.memory_bytes ignored", ["service": name, "tracking": cgroup == nil ? "subreaper" : "cgroup"])
                }
            }
            let pid = try ServiceLauncher.spawn(def, as: account, output: output, cgroupProcs: procs)
            rt.pid = pid
            rt.startTicks = ServiceProcessTree.startTicks(pid)
            rt.startedAt = now
            rt.status = .starting
            rt.nextRetryAt = nil
            if retry { rt.restarts += 1 }
            sessions[name] = pid
            messages[name] = "started pid \(pid)" + note
            if def.startTimeoutSeconds == 0 { rt.status = .running }
        } catch {
            // Like an exit at once: the policy decides whether to retry.
            rt.startedAt = now
            rt = ServicePolicy.afterExit(def, rt, .init(code: 127), now: now, jitter: Double.random(in: 0.9...1.1))
            messages[name] = "cannot start: \(error)"
        }
    }

    func record(_ name: String, _ before: ServicePolicy.Runtime, _ rt: ServicePolicy.Runtime, now: Double) throws {
        let message = messages[name]
        try ServiceStateRepository(db).save(name, rt, message: message)
        recorded[name] = rt
        guard rt.status != before.status || (rt.status == .backoff && rt.lastExitAt != before.lastExitAt) else { return }
        let level: EventLevel
        switch rt.status {
        case .running, .stopped: level = .info
        case .backoff: level = .warning
        case .failed: level = .error
        case .starting, .stopping: return
        }
        var text = "service \(name) is \(rt.status.rawValue)"
        if let message { text += ": \(message)" }
        if rt.status == .backoff, let at = rt.nextRetryAt { text += String(format: "; retry in %.1f s", at - now) }
        try EventRepository(db).insert(Event(level: level, source: "supervisor", actor: nil, action: "service.\(rt.status.rawValue)",
                                             target: name, message: text, data: nil))
    }

    /// Records an action's end, then tells the workers waiting on one (`ServiceActionNotice`).
    func endAction(_ id: Int64, _ status: ServiceAction.Status, message: String, pid: Int32? = nil) throws {
        try ServiceActionRepository(db).mark(id, status, message: message, pid: pid)
        ServiceActionNotice.post(noticeFD)
    }

    /// Ends the action in flight once the service is where it asked for.
    func finishAction(_ name: String, _ rt: ServicePolicy.Runtime) throws {
        guard let a = inFlight[name] else { return }
        switch a.kind {
        case .stop:
            guard rt.status == .stopped || rt.status == .failed, rt.pid == nil else { return }
            try endAction(a.id, .done, message: "stopped")
        case .start, .restart:
            if rt.status == .running && !restartPending.contains(name) {
                try endAction(a.id, .done, message: "running", pid: rt.pid)
            } else if rt.status == .failed || (!rt.wanted && rt.pid == nil) {
                try endAction(a.id, .failed, message: messages[name] ?? "failed")
            } else {
                return
            }
        }
        inFlight.removeValue(forKey: name)
    }

    /// Every live process of `name`: its session's tree and marked orphans
    /// (`ServiceProcessTree.members`), and in the cgroup mode every pid in
    /// its cgroup too (with start ticks, against pid reuse).
    func members(_ name: String, sessionID: Int32?) -> [Int32: UInt64] {
        var found = ServiceProcessTree.members(name: name, sessionID: sessionID)
        for pid in cgroup?.procs(name) ?? [] where found[pid] == nil {
            if let s = ServiceProcessTree.stat(pid), !s.zombie { found[pid] = s.startTicks }
        }
        return found
    }

    /// SIGKILL to the whole tree: `cgroup.kill` in the cgroup mode, and each member by pid.
    func killTree(_ name: String, _ members: [Int32: UInt64]) {
        cgroup?.kill(name)
        ServiceProcessTree.signal(members, SIGKILL)
    }

    static func signalNumber(_ s: ServiceDefinition.StopSignal) -> Int32 {
        switch s {
        case .TERM: return SIGTERM
        case .INT: return SIGINT
        case .HUP: return SIGHUP
        case .QUIT: return SIGQUIT
        case .KILL: return SIGKILL
        case .USR1: return SIGUSR1
        case .USR2: return SIGUSR2
        }
    }

    /// Called by a worker after queueing an action: one byte to the FIFO,
    /// never blocking (no supervisor, or a full FIFO, is fine: it polls).
    public static func wake(_ config: Config) {
        let fd = open(config.supervisorWakePath, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        var b: UInt8 = 1
        _ = write(fd, &b, 1)
        close(fd)
    }
}
