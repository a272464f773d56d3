import Glibc

/// One thing the master's decision (`MasterState.tick`) asks the syscall
/// layer (`Master`) to do.
public enum MasterAction: Sendable, Equatable {
    /// Start one child of `groups[group]` in `slot`; report the pid back with
    /// `MasterState.started` or the failure with `MasterState.spawnFailed`.
    case spawn(group: Int, slot: Int)
    /// `kill(pid, signal)`, for the reason given (it decides the log line).
    case signal(pid: pid_t, signal: Int32, reason: SignalReason)

    public enum SignalReason: Sendable, Equatable {
        /// The group is above its target (TTOU): the highest slots retire.
        case resize
        /// A reloaded group's new generation is ready: the old one retires.
        case reload
        /// The master is stopping.
        case stop
        /// A child did not finish within its group's stop timeout.
        case escalate
        /// QUIT again: libfcgi checks its flag just before accept(), so a
        /// child entering accept() can miss the first one.
        case repeatQuit
        /// Busy on one request for this many milliseconds, past the timeout.
        case requestTimeout(elapsedMillis: Int64)
    }
}
