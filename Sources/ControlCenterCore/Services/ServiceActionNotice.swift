import Glibc

/// The supervisor's notice to workers answering `?wait=` that a service
/// action ended: one byte rewritten in `Config.serviceActionNoticePath`,
/// which each waiting worker watches with inotify(7) (IN_MODIFY), so that it
/// re-reads its action when one ends instead of polling the database on a
/// timer. The notice says only "some action ended": the outcome is read from
/// the database, and a notice for another action costs one row read.
enum ServiceActionNotice {
    /// The supervisor's end: opens (creating, mode 0640: run/ gives it the
    /// workers' group) the notice file without truncating it, so watches
    /// taken under an earlier supervisor keep working. -1 when it cannot;
    /// waiters then fall back to polling.
    static func open(_ config: Config) -> Int32 {
        let fd = Glibc.open(config.serviceActionNoticePath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        if fd >= 0 { _ = fchmod(fd, 0o640) } // whatever the umask
        return fd
    }

    /// An action ended (`fd` from `open`; -1 is ignored).
    static func post(_ fd: Int32) {
        guard fd >= 0 else { return }
        var b: UInt8 = 1
        _ = pwrite(fd, &b, 1, 0)
    }

    /// A worker's watch on the notice file, taken before its first read of
    /// the action so that no notice between the read and the wait is missed.
    final class Watch {
        private let fd: Int32

        /// nil when inotify or the file is unavailable (no supervisor has run yet).
        init?(_ config: Config) {
            fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard fd >= 0 else { return nil }
            guard inotify_add_watch(fd, config.serviceActionNoticePath, UInt32(IN_MODIFY)) >= 0 else {
                close(fd)
                return nil
            }
        }

        deinit { close(fd) }

        /// Waits up to `seconds` for a notice; true when one came (and is consumed).
        @discardableResult
        func wait(seconds: Double) -> Bool {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, SupervisorSchedule.pollMillis(seconds)) > 0 else { return false }
            var buf = [UInt8](repeating: 0, count: 4096)
            while read(fd, &buf, buf.count) > 0 {}
            return true
        }
    }
}
