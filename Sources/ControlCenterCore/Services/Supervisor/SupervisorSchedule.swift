/// When the supervisor's loop must next run a round with no event to wake
/// it, without system calls. Events wake the loop by themselves: the wake-up
/// FIFO (an action, a registry change, a signal request), a child's exit
/// (SIGCHLD through a signalfd), a re-adopted process's pidfd, a probe's
/// socket, a service's output. What no event reports is a time: a start
/// timeout's end, a stop timeout's end (SIGKILL), a backoff's or cool-down's
/// end, a probe's due time, an exec probe's timeout; this computes the
/// earliest, so that each is acted on when it comes rather than at a round.
public enum SupervisorSchedule {
    /// A full round (reap, policy, probes) at least this often whatever the
    /// deadlines say: a safety net for a change no event or deadline reports
    /// (a lost SIGCHLD, a clock step). Every known deadline wakes the loop by
    /// itself, so it need not be short; 1 s keeps the idle loop cheap.
    public static let roundInterval = 1.0
    /// Pending actions and the registry are re-read this often without a
    /// wake-up (seconds), for a wake-up that was lost: a full FIFO, or a
    /// worker that wrote while no supervisor ran.
    public static let reloadInterval = 2.0
    /// A stopping tree is looked at again this often (seconds): its members'
    /// exits normally wake the loop (they are the supervisor's children or
    /// reparent to it, a subreaper), but a member that is neither (a process
    /// moved into the service's cgroup from outside) reports nothing.
    public static let stopRecheck = 0.2

    /// The wall-clock time at which `rt` next needs the policy with no event,
    /// nil when only an event can change it: a `starting` service's start
    /// timeout end (it becomes `running`), a `stopping` one's SIGKILL time or
    /// next look, a wanted `backoff` or `failed` one's retry time.
    public static func deadline(_ rt: ServicePolicy.Runtime, startTimeout: Double, now: Double) -> Double? {
        switch rt.status {
        case .starting: return rt.startedAt.map { $0 + startTimeout }
        case .stopping: return min(rt.killAt ?? .infinity, now + stopRecheck)
        case .backoff, .failed: return rt.wanted && rt.pid == nil ? rt.nextRetryAt : nil
        case .running, .stopped: return nil
        }
    }

    /// Seconds from now until the loop must run a round unwoken, 0 when one
    /// is due: the earliest of each service's `deadline` (wall clock, with its
    /// start timeout in seconds), `probesDue` (monotonic: probes due to start
    /// and exec probes' timeouts), the next re-read (`lastLoad`, wall clock)
    /// and the next safety round (`lastRound`, monotonic).
    public static func secondsUntilDue(services: [(runtime: ServicePolicy.Runtime, startTimeout: Double)], probesDue: [Double],
                                       wallNow: Double, monoNow: Double, lastRound: Double, lastLoad: Double) -> Double {
        var due = min(lastRound + roundInterval - monoNow, lastLoad + reloadInterval - wallNow)
        for s in services {
            if let d = deadline(s.runtime, startTimeout: s.startTimeout, now: wallNow) { due = min(due, d - wallNow) }
        }
        for p in probesDue { due = min(due, p - monoNow) }
        return max(0, due)
    }

    /// poll(2)'s timeout in milliseconds for `seconds`, rounded up: a wait
    /// that ended just before its deadline would find nothing due and spin.
    public static func pollMillis(_ seconds: Double) -> Int32 {
        Int32(min(Double(Int32.max), max(0, (seconds * 1000).rounded(.up))))
    }
}
