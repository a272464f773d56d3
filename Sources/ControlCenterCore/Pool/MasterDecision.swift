import Glibc

/// What the children's status files said this tick (`run/workers/<pid>.status`,
/// see `WorkerStatusRecord`), reduced to what the master decides from.
public struct Heartbeats: Sendable {
    /// Wall-clock milliseconds, the clock the records are written in.
    public var nowMillis: Int64
    /// Children with a status file: they have started accepting.
    public var reporting: Set<pid_t>
    /// Busy children and when their current request began (wall ms).
    public var busySince: [pid_t: Int64]

    public init(nowMillis: Int64, reporting: Set<pid_t> = [], busySince: [pid_t: Int64] = [:]) {
        self.nowMillis = nowMillis
        self.reporting = reporting
        self.busySince = busySince
    }

    public init(records: [WorkerStatusRecord], nowMillis: Int64) {
        self.init(nowMillis: nowMillis, reporting: Set(records.map(\.pid)),
                  busySince: Dictionary(records.filter(\.busy).map { ($0.pid, $0.sinceMillis) }) { a, _ in a })
    }
}

extension MasterState {
    /// Seconds a reload waits for a new generation to report ready before it
    /// retires the old one anyway (a new child that never reaches accept()
    /// must not keep the old binary serving forever).
    static let reloadReadyWait = 3.0
    /// Interval for repeating QUIT to a child that has not exited yet.
    static let quitRepeat = 0.5

    /// The master's decisions for one tick (every 100 ms and after each
    /// signal): request timeouts, reload progress, respawns within the
    /// backoff, retirement above the target, and the stop escalation
    /// QUIT → TERM → KILL. A function of the state and the time alone: it
    /// returns the actions and records in the state that they were decided
    /// (a child told to stop, a child marked as killed), and performs none.
    public mutating func tick(now: Double, heartbeats: Heartbeats) -> [MasterAction] {
        var actions: [MasterAction] = []
        killTimedOut(heartbeats, into: &actions)
        switch phase {
        case .running:
            for g in groups.indices {
                advanceReload(group: g, now: now, heartbeats: heartbeats, into: &actions)
                fill(group: g, now: now, into: &actions)
            }
        case .stopping(let graceful):
            for pid in children.keys.sorted() {
                guard let child = children[pid], !child.killedForTimeout else { continue }
                let stage = child.stop?.stage
                if stage == nil || (!graceful && stage == .quit) {
                    beginStopping(pid, at: graceful ? .quit : .term, now: now, reason: .stop, into: &actions)
                }
            }
        }
        escalate(now: now, into: &actions)
        return actions
    }

    /// nginx answers 504 at the request timeout; the child is killed half a
    /// second later, so it never writes into a connection nginx gave up on.
    private mutating func killTimedOut(_ beats: Heartbeats, into actions: inout [MasterAction]) {
        for (pid, since) in beats.busySince.sorted(by: { $0.key < $1.key }) {
            guard let child = children[pid], !child.killedForTimeout,
                  let heartbeat = groups[child.group].spec.heartbeat else { continue }
            let elapsed = beats.nowMillis - since
            guard elapsed > Int64((heartbeat.requestTimeout + 0.5) * 1000) else { continue }
            children[pid]?.killedForTimeout = true
            groups[child.group].timeoutKills += 1
            changed = true
            actions.append(.signal(pid: pid, signal: SIGKILL, reason: .requestTimeout(elapsedMillis: elapsed)))
        }
    }

    /// Old children get QUIT once the new generation is accepting, so the
    /// socket always has someone in accept().
    private mutating func advanceReload(group g: Int, now: Double, heartbeats: Heartbeats,
                                        into actions: inout [MasterAction]) {
        guard let started = groups[g].reloadStartedAt else { return }
        let mine = children(of: g)
        let old = mine.filter { $0.generation < groups[g].generation && $0.stop == nil }
        if old.isEmpty {
            groups[g].reloadStartedAt = nil
            return
        }
        let checksReady = groups[g].spec.heartbeat != nil
        let ready = mine.filter { $0.generation == groups[g].generation && (!checksReady || heartbeats.reporting.contains($0.pid)) }
        guard ready.count >= groups[g].spec.target || now - started > Self.reloadReadyWait else { return }
        for child in old { beginStopping(child.pid, at: .quit, now: now, reason: .reload, into: &actions) }
        groups[g].reloadStartedAt = nil
    }

    /// Spawns up to the target unless backing off; retires the highest
    /// slots above it.
    private mutating func fill(group g: Int, now: Double, into actions: inout [MasterAction]) {
        let current = children(of: g).filter { $0.generation == groups[g].generation && $0.stop == nil }
        let target = groups[g].spec.target
        if current.count < target {
            guard now >= groups[g].backoffUntil else { return }
            if groups[g].backoffLevel > 0 && groups[g].deaths.isEmpty
                && now > groups[g].backoffUntil + groups[g].spec.restart.interval {
                groups[g].backoffLevel = 0
            }
            let used = Set(current.map(\.slot))
            var slot = 0
            for _ in 0..<(target - current.count) {
                while used.contains(slot) { slot += 1 }
                actions.append(.spawn(group: g, slot: slot))
                slot += 1
            }
        } else if current.count > target {
            for child in current.reversed().prefix(current.count - target) {
                beginStopping(child.pid, at: .quit, now: now, reason: .resize, into: &actions)
            }
        }
    }

    private mutating func beginStopping(_ pid: pid_t, at stage: StopProgress.Stage, now: Double,
                                        reason: MasterAction.SignalReason, into actions: inout [MasterAction]) {
        children[pid]?.stop = StopProgress(stage: stage, since: now, lastSent: now)
        changed = true
        actions.append(.signal(pid: pid, signal: stage.signal, reason: reason))
    }

    /// php-fpm's escalation, per child and by its group's `StopPolicy`.
    private mutating func escalate(now: Double, into actions: inout [MasterAction]) {
        for pid in children.keys.sorted() {
            guard let child = children[pid], let stop = child.stop, !child.killedForTimeout else { continue }
            let policy = groups[child.group].spec.stop
            switch stop.stage {
            case .quit where now - stop.since >= policy.quitTimeout:
                beginStopping(pid, at: .term, now: now, reason: .escalate, into: &actions)
            case .quit where now - stop.lastSent >= Self.quitRepeat:
                children[pid]?.stop?.lastSent = now
                actions.append(.signal(pid: pid, signal: SIGQUIT, reason: .repeatQuit))
            case .term where now - stop.since >= policy.termTimeout:
                beginStopping(pid, at: .kill, now: now, reason: .escalate, into: &actions)
            default:
                break
            }
        }
    }
}
