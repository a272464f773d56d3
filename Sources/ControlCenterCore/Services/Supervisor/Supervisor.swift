import CSupport
import Foundation
import Glibc

/// `control-center supervisor`: the master's `supervisor` child group (one
/// process, no socket). It is the parent of every service process, and a
/// child subreaper, so that a service's orphans come back to it.
///
/// Workers never touch a service: they queue an action in `service_actions`
/// and write a byte to the wake-up FIFO (`Config.supervisorWakePath`). The
/// loop waits on that FIFO for at most `pollInterval`, then reaps exits,
/// takes pending actions (at once when woken, else every `reloadInterval`,
/// which also picks up registry changes), and applies `ServicePolicy`.
/// Every status it reaches is written to `service_state`, and the stable ones
/// (running, stopped, backoff, failed) also as events: a crash loop writes
/// one event per backoff step.
///
/// On QUIT or TERM it stops every service (dependents first) and exits.
/// On start it kills any service a previous supervisor (one that died) left
/// running, found by pid and start time, and starts again what was meant to
/// run: never two copies, but a restart rather than a re-adoption.
public final class Supervisor {
    let config: Config
    let log: Log
    let db: Database
    var definitions: [String: ServiceDefinition] = [:]
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
    /// Open output pipes by read fd (a tree's pipe stays open while any of
    /// its processes holds the write end, even after a restart).
    var outputs: [Int32: ServiceOutputPipe] = [:]
    var writers: [String: ServiceLogWriter] = [:]
    var stopping = false
    var stopStarted: Double?
    var lastLoad = 0.0
    /// `ServiceRepository.fingerprint` of the definitions held.
    var loadedFingerprint: String?

    static let pollInterval: Int32 = 200   // ms
    static let reloadInterval = 2.0        // s
    static let killRepeat = 1.0            // s between SIGKILL rounds

    public init(config: Config, log: Log) throws {
        self.config = config
        self.log = log
        db = try StorageService.open(config)
    }

    public func run() -> Int32 {
        cc_supervisor_install_signals()
        // A master that dies without stopping us (SIGKILL) leaves no one to
        // restart or stop us: stop the services and exit as on TERM.
        cc_set_parent_death_signal(SIGTERM)
        if cc_set_child_subreaper() != 0 {
            log.warning("PR_SET_CHILD_SUBREAPER failed; orphans of services reparent to init", ["errno": String(errno)])
        }
        mkdir(config.serviceLogDir, 0o750)
        unlink(config.supervisorWakePath)
        // 0660: request workers write to it, as CC_USER when the master is
        // root (run/ is set-group-id with that user's group: StatePermissions).
        guard mkfifo(config.supervisorWakePath, 0o600) == 0, chmod(config.supervisorWakePath, 0o660) == 0 else {
            log.error("cannot create the wake-up FIFO", ["path": config.supervisorWakePath, "errno": String(errno)])
            return 1
        }
        // O_RDWR: the FIFO always has a writer (us), so poll never sees a hang-up.
        wakeFD = open(config.supervisorWakePath, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard wakeFD >= 0 else { return 1 }
        do {
            try loadDefinitions(now: Clock.wallSeconds())
            try recoverLeftovers()
            for (name, def) in definitions where def.autostart { runtime[name, default: .init()].wanted = true }
        } catch {
            log.error("supervisor cannot read the registry", ["error": String(describing: error)])
            return 1
        }
        log.info("supervisor started", ["services": String(definitions.count)])
        while true {
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
                + outputs.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), Self.pollInterval)
            let woke = ready > 0 && fds[0].revents != 0
            if woke { drainWake() }
            if ready > 0 { pumpOutputs(fds.dropFirst().filter { $0.revents != 0 }.map(\.fd)) }
            let now = Clock.wallSeconds()
            if cc_supervisor_stop_requested() != 0 && !stopping {
                stopping = true
                stopStarted = now
                log.info("supervisor stopping its services")
            }
            do {
                reap(now: now)
                if woke || now - lastLoad >= Self.reloadInterval {
                    try loadDefinitions(now: now)
                    if !stopping { try takeActions(now: now) }
                }
                if stopping { for n in runtime.keys { runtime[n]?.wanted = false } }
                try tick(now: now)
            } catch {
                // The database may be down for a while; services keep running and the next round retries.
                log.warning("supervisor round failed", ["error": String(describing: error)])
            }
            if stopping && runtime.values.allSatisfy({ $0.pid == nil && $0.status != .stopping }) {
                log.info("supervisor stopped")
                unlink(config.supervisorWakePath)
                return 0
            }
            if stopping, let since = stopStarted, now - since > ChildGroup.supervisorQuitTimeout {
                log.error("services still running after the stop timeout; exiting",
                          ["services": runtime.filter { $0.value.pid != nil }.keys.sorted().joined(separator: ",")])
                return 1
            }
        }
    }

    func pumpOutputs(_ ready: [Int32]) {
        for fd in ready {
            guard let pipe = outputs[fd], !pipe.pump() else { continue }
            close(fd)
            outputs.removeValue(forKey: fd)
        }
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
        // A service removed from the registry is stopped, then forgotten.
        for name in runtime.keys where definitions[name] == nil { runtime[name]?.wanted = false }
    }

    /// Kills what a previous supervisor left (its pid still alive with the
    /// recorded start time, and its tree), marks what was meant to run as
    /// wanted again, and fails the actions it had taken.
    func recoverLeftovers() throws {
        for (name, row) in try ServiceStateRepository(db).all() {
            if let pid = row.pid, let ticks = row.startTicks, ServiceProcessTree.startTicks(pid) == ticks {
                let members = ServiceProcessTree.members(name: name, sessionID: pid)
                log.warning("stopping a service left by a previous supervisor", ["service": name, "pid": String(pid),
                                                                                 "processes": String(members.count)])
                ServiceProcessTree.signal(members, SIGKILL)
            }
            var rt = ServicePolicy.Runtime()
            // What was meant to run runs again (one copy: the old one is gone).
            rt.wanted = [.starting, .running, .backoff].contains(row.status) || (row.status == .failed && row.nextRetryAt != nil)
            rt.restarts = row.restarts
            if let code = row.lastExitCode { rt.lastExit = .init(code: code) }
            if let sig = row.lastExitSignal { rt.lastExit = .init(signal: sig) }
            rt.lastExitAt = row.lastExitAt.map { Double($0) / 1000 }
            runtime[name] = rt
            recorded[name] = rt
            try ServiceStateRepository(db).save(name, rt, message: nil)
        }
        for a in try ServiceActionRepository(db).running() {
            try ServiceActionRepository(db).mark(a.id, .failed, message: "the supervisor restarted before it finished")
        }
    }

    /// Pending actions in id order; a newer action on a service supersedes
    /// the one in flight, so the last accepted action decides the end state.
    func takeActions(now: Double) throws {
        let actions = ServiceActionRepository(db)
        for a in try actions.pending() {
            guard definitions[a.service] != nil else {
                try actions.mark(a.id, .failed, message: "no service \(a.service)")
                continue
            }
            if let old = inFlight[a.service] {
                try actions.mark(old.id, .superseded, message: "superseded by action \(a.id)")
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

    /// waitpid until no child is left to reap; orphans that reparented to us are reaped too.
    func reap(now: Double) {
        while true {
            var st: Int32 = 0
            let pid = waitpid(-1, &st, WNOHANG)
            guard pid > 0 else { return }
            guard let name = runtime.first(where: { $0.value.pid == pid })?.key, let def = definitions[name] else { continue }
            let exit = cc_wifexited(st) != 0 ? ServicePolicy.Exit(code: cc_wexitstatus(st))
                                             : ServicePolicy.Exit(signal: cc_wtermsig(st))
            var rt = runtime[name]!
            if rt.status == .stopping {
                // Still `stopping` until the whole tree is gone (tick).
                rt.pid = nil
                rt.lastExit = exit
                rt.lastExitAt = now
                runtime[name] = rt
                continue
            }
            // An unexpected exit: what it left behind goes before any restart.
            if let session = sessions.removeValue(forKey: name) {
                ServiceProcessTree.signal(ServiceProcessTree.members(name: name, sessionID: session), SIGKILL)
            }
            rt = ServicePolicy.afterExit(def, rt, exit, now: now, jitter: Double.random(in: 0.9...1.1))
            messages[name] = "exited with " + (exit.signal.map { "signal \($0)" } ?? "code \(exit.code ?? 0)")
            runtime[name] = rt
        }
    }

    func tick(now: Double) throws {
        let order = ServicePolicy.startOrder(definitions.mapValues(\.dependsOn))
        let known = order + runtime.keys.filter { definitions[$0] == nil }.sorted()
        for name in known {
            let before = recorded[name] ?? .init()
            var rt = runtime[name] ?? .init()
            let def = definitions[name]
            if rt.pid != nil || rt.status == .stopping {
                if rt.status == .starting, let def, ServicePolicy.isStarted(def, rt, now: now) { rt.status = .running }
                let dependentsUp = definitions.contains { $0.value.dependsOn.contains(name) && runtime[$0.key]?.pid != nil }
                if (!rt.wanted || restartPending.contains(name)) && rt.status != .stopping && !dependentsUp {
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
            if def == nil && rt.pid == nil && rt.status != .stopping {
                runtime.removeValue(forKey: name)
                recorded.removeValue(forKey: name)
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
    }

    func beginStop(_ name: String, _ def: ServiceDefinition?, _ rt: inout ServicePolicy.Runtime, now: Double) {
        let signal = def.map { Self.signalNumber($0.stopSignal) } ?? SIGTERM
        let members = ServiceProcessTree.members(name: name, sessionID: sessions[name])
        ServiceProcessTree.signal(members, signal)
        rt.status = .stopping
        rt.killAt = now + (def?.stopTimeoutSeconds ?? ServiceDefinition.Defaults.stopTimeoutSeconds)
        messages[name] = "sent SIG\(def?.stopSignal.rawValue ?? "TERM") to \(members.count) process(es)"
    }

    /// `stopping` ends when no process of the tree is left; past the stop
    /// timeout every one left gets SIGKILL (again each second).
    func finishStop(_ name: String, _ rt: inout ServicePolicy.Runtime, now: Double) {
        let members = ServiceProcessTree.members(name: name, sessionID: sessions[name])
        if members.isEmpty && rt.pid == nil {
            // An empty session's id may be given to a new process: never look it up again.
            sessions.removeValue(forKey: name)
            rt.status = .stopped
            rt.killAt = nil
            rt.startedAt = nil
            rt.startTicks = nil
            restartPending.remove(name)
            if rt.wanted { rt.nextRetryAt = nil }
            return
        }
        if let killAt = rt.killAt, now >= killAt {
            ServiceProcessTree.signal(members, SIGKILL)
            rt.killAt = now + Self.killRepeat
            messages[name] = "stop timeout: sent SIGKILL to \(members.count) process(es)"
        }
    }

    func start(_ name: String, _ def: ServiceDefinition, _ rt: inout ServicePolicy.Runtime, now: Double) {
        let retry = rt.status == .backoff || rt.status == .failed
        if rt.status == .failed { rt.failures = 0 }
        do {
            var ends: [Int32] = [-1, -1]
            guard cc_pipe_cloexec(&ends) == 0 else { throw ServiceLauncher.Failure(description: "pipe: \(String(cString: strerror(errno)))") }
            defer { close(ends[1]) }
            let pid: Int32
            do {
                pid = try ServiceLauncher.spawn(def, output: ends[1])
            } catch {
                close(ends[0])
                throw error
            }
            _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
            let writer = writers[name] ?? ServiceLogWriter(root: config.serviceLogDir, name: name,
                                                           maxBytes: config.serviceLogMaxBytes, maxFiles: config.serviceLogFiles)
            writers[name] = writer
            outputs[ends[0]] = ServiceOutputPipe(fd: ends[0], writer: writer)
            rt.pid = pid
            rt.startTicks = ServiceProcessTree.startTicks(pid)
            rt.startedAt = now
            rt.status = .starting
            rt.nextRetryAt = nil
            if retry { rt.restarts += 1 }
            sessions[name] = pid
            messages[name] = "started pid \(pid)"
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

    /// Ends the action in flight once the service is where it asked for.
    func finishAction(_ name: String, _ rt: ServicePolicy.Runtime) throws {
        guard let a = inFlight[name] else { return }
        let actions = ServiceActionRepository(db)
        switch a.kind {
        case .stop:
            guard rt.status == .stopped || rt.status == .failed, rt.pid == nil else { return }
            try actions.mark(a.id, .done, message: "stopped")
        case .start, .restart:
            if rt.status == .running && !restartPending.contains(name) {
                try actions.mark(a.id, .done, message: "running", pid: rt.pid)
            } else if rt.status == .failed || (!rt.wanted && rt.pid == nil) {
                try actions.mark(a.id, .failed, message: messages[name] ?? "failed")
            } else {
                return
            }
        }
        inFlight.removeValue(forKey: name)
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
