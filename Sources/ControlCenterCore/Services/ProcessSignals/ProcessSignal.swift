/// `POST /api/system/processes/{pid}/signal`: the signals an admin may send,
/// and which processes refuse them. The supervisor alone sends them
/// (`ProcessSignaller`); this is its decision, without system calls.
public enum ProcessSignal {
    /// signal(7) names without SIG.
    public enum Name: String, Sendable, CaseIterable {
        case TERM, KILL, HUP, INT, STOP, CONT, USR1, USR2

        public var number: Int32 {
            switch self {
            case .TERM: return 15
            case .KILL: return 9
            case .HUP: return 1
            case .INT: return 2
            case .STOP: return 19
            case .CONT: return 18
            case .USR1: return 10
            case .USR2: return 12
            }
        }
    }

    /// `process_signals.status`: `pending` until the supervisor answers.
    public enum Outcome: String, Sendable, CaseIterable {
        case pending, sent, notFound = "not_found", conflict, forbidden, failed
    }

    /// What the supervisor read of the target (/proc/PID/stat and comm)
    /// after opening its pidfd, so it describes the process the pidfd names.
    public struct Target: Sendable, Equatable {
        public var pid: Int32
        public var ppid: Int32
        /// /proc/PID/stat field 9.
        public var flags: UInt32
        /// Start time as Unix milliseconds: /proc/stat `btime` + field 22 / CLK_TCK,
        /// the listing's `start_time` (which it shows in seconds with 2 decimals).
        public var startMillis: Int64
        /// /proc/PID/comm.
        public var name: String

        public init(pid: Int32, ppid: Int32, flags: UInt32, startMillis: Int64, name: String) {
            self.pid = pid
            self.ppid = ppid
            self.flags = flags
            self.startMillis = startMillis
            self.name = name
        }
    }

    /// PF_KTHREAD (include/linux/sched.h).
    static let kernelThreadFlag: UInt32 = 0x0020_0000
    /// The listing rounds `start_time` to 10 ms; a request's value within
    /// that names the same process.
    static let startToleranceMillis: Int64 = 10

    /// The answer to a request for `target` (nil: no such process), with
    /// its reason. `sent` means "may be sent": the caller sends it.
    /// Refused: pid 1, kernel threads (kthreadd, pid 2, and its children),
    /// Control Center's master and its direct children (workers, collector,
    /// this supervisor) and nginx (any process named nginx: the master and
    /// its workers, whichever nginx serves us).
    public static func decide(_ target: Target?, requestedStartMillis: Int64?, master: Int32) -> (Outcome, String) {
        guard let t = target else { return (.notFound, "no such process") }
        if let want = requestedStartMillis, abs(want - t.startMillis) > startToleranceMillis {
            return (.conflict, "pid \(t.pid) is now another process (\(t.name)), started at another time than start_time")
        }
        if t.pid == 1 { return (.forbidden, "pid 1 (\(t.name)) is never signalled") }
        if t.pid == 2 || t.ppid == 2 || t.flags & kernelThreadFlag != 0 {
            return (.forbidden, "pid \(t.pid) (\(t.name)) is a kernel thread")
        }
        if t.pid == master { return (.forbidden, "pid \(t.pid) is Control Center's master") }
        if t.ppid == master {
            return (.forbidden, "pid \(t.pid) (\(t.name)) is a child of Control Center's master (a worker, the collector or the supervisor)")
        }
        if t.name == "nginx" { return (.forbidden, "pid \(t.pid) is nginx") }
        return (.sent, "")
    }
}
