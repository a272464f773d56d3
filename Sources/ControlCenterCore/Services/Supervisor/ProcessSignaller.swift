import CSupport
import Foundation
import Glibc

/// The system calls behind `POST /api/system/processes/{pid}/signal`, run
/// by the supervisor only: it opens a pidfd on the pid first, reads what
/// the process is through /proc only then (so the facts describe the
/// process the pidfd names, not a later one given the same pid), lets
/// `ProcessSignal.decide` judge, and signals through the pidfd.
enum ProcessSignaller {
    static func answer(_ r: ProcessSignalRequest, master: Int32) -> (ProcessSignal.Outcome, String) {
        let pidfd = cc_pidfd_open(r.pid)
        guard pidfd >= 0 else {
            switch errno {
            case ESRCH: return (.notFound, "no such process")
            // pidfd_open(2) takes a thread group leader only.
            case EINVAL: return (.notFound, "pid \(r.pid) is a thread, not a process")
            default: return (.failed, "pidfd_open: \(String(cString: strerror(errno)))")
            }
        }
        defer { close(pidfd) }
        let target = self.target(r.pid)
        let (outcome, message) = ProcessSignal.decide(target, requestedStartMillis: r.startMillis, master: master)
        guard outcome == .sent, let target else { return (outcome, message) }
        guard cc_pidfd_send_signal(pidfd, r.signal.number) == 0 else {
            switch errno {
            case ESRCH: return (.notFound, "pid \(r.pid) exited before the signal")
            case EPERM: return (.forbidden, "the supervisor (uid \(getuid())) may not signal pid \(r.pid) (\(target.name))")
            default: return (.failed, "pidfd_send_signal: \(String(cString: strerror(errno)))")
            }
        }
        return (.sent, "sent SIG\(r.signal.rawValue) to pid \(r.pid) (\(target.name))")
    }

    /// /proc/PID/stat and comm, with the start time in Unix milliseconds.
    static func target(_ pid: Int32) -> ProcessSignal.Target? {
        guard let st = ServiceProcessTree.stat(pid), let boot = HostConstants.bootTime(ProcReader(capacity: 16 << 10)) else { return nil }
        let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .newlines) ?? "?"
        let start = Int64((boot * 1000 + Double(st.startTicks) * 1000 / HostConstants.clockTicks).rounded())
        return ProcessSignal.Target(pid: pid, ppid: st.ppid, flags: st.flags, startMillis: start, name: name)
    }
}
