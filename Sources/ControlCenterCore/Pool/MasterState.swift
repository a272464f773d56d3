import Glibc

/// Everything the master decides from: its child groups, its children and
/// its phase. A value with no system calls in it, so every decision is
/// unit-tested without processes (as gunicorn tests its arbiter): `Master`
/// reports what happened (`started`, `reaped`, signals) and performs the
/// actions `tick` returns (MasterDecision.swift). Times are monotonic seconds.
public struct MasterState: Sendable {
    public struct GroupState: Sendable {
        public var spec: ChildGroup
        /// Raised by each reload of a group that is reloaded on HUP; a child
        /// of an older generation is retired once the new one is ready.
        public internal(set) var generation = 0
        public internal(set) var restarts = 0
        public internal(set) var servedByExited = 0
        public internal(set) var timeoutKills = 0
        public internal(set) var backoffUntil = 0.0
        var backoffLevel = 0
        var deaths: [Double] = []
        var reloadStartedAt: Double?

        init(spec: ChildGroup) { self.spec = spec }
    }

    public struct Child: Sendable, Equatable {
        public let pid: pid_t
        public let group: Int
        public let slot: Int
        public let generation: Int
        public let startedAt: Double
        /// Set once the child has been told to stop; it then never counts
        /// towards its group's target again.
        public internal(set) var stop: StopProgress?
        public internal(set) var killedForTimeout = false
    }

    public struct StopProgress: Sendable, Equatable {
        public enum Stage: Sendable, Equatable {
            case quit, term, kill
            var signal: Int32 { switch self { case .quit: SIGQUIT; case .term: SIGTERM; case .kill: SIGKILL } }
        }
        public internal(set) var stage: Stage
        /// When this stage began: its timeout counts from here.
        public internal(set) var since: Double
        var lastSent: Double
    }

    public enum Phase: Sendable, Equatable { case running, stopping(graceful: Bool) }

    /// How a reaped pid ended, for the log and the counters.
    public enum Reaped: Sendable, Equatable {
        /// Not a child of any group: a stray the master inherited or adopted.
        case unknown
        case child(Child, Exit)

        public enum Exit: Sendable, Equatable {
            /// Killed by the master after its request timeout.
            case timedOut
            /// A clean exit, or the end of a stop the master asked for.
            case expected
            /// Unexpected; counts towards the group's restart threshold. The
            /// delay is set when this death started a backoff.
            case died(backoffDelay: Double?)
        }
    }

    public internal(set) var groups: [GroupState]
    public internal(set) var children: [pid_t: Child] = [:]
    public internal(set) var phase = Phase.running
    public internal(set) var reloads = 0
    /// Set by every change `pool.state` shows; `Master` clears it after writing.
    public var changed = true

    public init(groups: [ChildGroup]) {
        self.groups = groups.map(GroupState.init)
    }

    /// The master is stopping and every child has been reaped.
    public var isFinished: Bool { phase != .running && children.isEmpty }

    /// The children of `groups[group]`, by slot.
    public func children(of group: Int) -> [Child] {
        children.values.filter { $0.group == group }.sorted { $0.slot < $1.slot }
    }

    // MARK: what happened

    /// A `.spawn` action succeeded: the child joins its group's current generation.
    public mutating func started(pid: pid_t, group: Int, slot: Int, now: Double) {
        children[pid] = Child(pid: pid, group: group, slot: slot, generation: groups[group].generation, startedAt: now)
        changed = true
    }

    /// A spawn that failed counts as a death: a missing binary must back off
    /// like a crashing one. Returns the backoff delay if one started.
    public mutating func spawnFailed(group: Int, now: Double) -> Double? {
        noteDeath(group: group, now: now)
    }

    /// Routes a reaped pid to its group. `served` is the request count from
    /// the child's last status record.
    public mutating func reaped(pid: pid_t, status: ExitStatus, served: Int, now: Double) -> Reaped {
        guard let child = children.removeValue(forKey: pid) else { return .unknown }
        changed = true
        groups[child.group].servedByExited += served
        if phase == .running && child.stop == nil { groups[child.group].restarts += 1 }
        if child.killedForTimeout { return .child(child, .timedOut) }
        if status.isClean || child.stop != nil || phase != .running { return .child(child, .expected) }
        return .child(child, .died(backoffDelay: noteDeath(group: child.group, now: now)))
    }

    /// php-fpm's emergency restart threshold, as a backoff: too many deaths
    /// in the interval pause respawning instead of spinning.
    private mutating func noteDeath(group index: Int, now: Double) -> Double? {
        var g = groups[index]
        defer { groups[index] = g }
        let policy = g.spec.restart
        g.deaths.append(now)
        g.deaths.removeAll { $0 < now - policy.interval }
        guard g.deaths.count >= policy.threshold else { return nil }
        let delay = min(policy.maxDelay, Double(1 << min(g.backoffLevel, 30)))
        g.backoffLevel += 1
        g.backoffUntil = now + delay
        g.deaths.removeAll()
        changed = true
        return delay
    }

    // MARK: what the operator asked for

    /// HUP: each group reloaded on HUP starts a new generation; the old one
    /// is retired by `tick` once the new one is ready.
    public mutating func beginReload(now: Double) {
        guard phase == .running else { return }
        reloads += 1
        for i in groups.indices where groups[i].spec.reloadOnHUP {
            groups[i].generation += 1
            groups[i].reloadStartedAt = now
        }
        changed = true
    }

    /// Applies a re-read configuration to the groups of the same name. A
    /// group's socket is bound once, and groups are neither added nor
    /// removed: returns the names whose address or existence would change,
    /// which take effect only on restart.
    public mutating func reconfigure(_ fresh: [ChildGroup]) -> [String] {
        var ignored: [String] = []
        for spec in fresh {
            guard let i = groups.firstIndex(where: { $0.spec.name == spec.name }) else {
                ignored.append(spec.name)
                continue
            }
            if spec.listen != groups[i].spec.listen { ignored.append(spec.name) }
            var kept = spec
            kept.listen = groups[i].spec.listen
            groups[i].spec = kept
        }
        ignored += groups.map(\.spec.name).filter { name in !fresh.contains { $0.name == name } }
        changed = true
        return ignored
    }

    /// TTIN/TTOU: one more or one fewer child, never fewer than one. Returns
    /// the old and new targets.
    public mutating func resize(group: Int, by delta: Int) -> (from: Int, to: Int) {
        let from = groups[group].spec.target
        groups[group].spec.target = max(1, from + delta)
        changed = true
        return (from, groups[group].spec.target)
    }

    /// QUIT (graceful) or TERM/INT (fast): no more respawns; `tick` tells
    /// every child to stop and escalates. A fast stop may overtake a
    /// graceful one, never the reverse.
    public mutating func beginStop(graceful: Bool) {
        if case .stopping(let wasGraceful) = phase, !wasGraceful || graceful { return }
        phase = .stopping(graceful: graceful)
        changed = true
    }
}
