import Glibc

/// An flock(2) lock on a file of its own. The kernel drops it when the holder
/// dies, so a refresher killed mid-scan never wedges the others.
final class FileLock {
    let path: String
    /// The lock file's mode when this process creates it.
    let mode: mode_t
    private var fd: Int32 = -1

    init(path: String, mode: mode_t = 0o600) {
        self.path = path
        self.mode = mode
    }

    deinit { if fd >= 0 { close(fd) } }

    private func open() -> Bool {
        if fd >= 0 { return true }
        fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode)
        // The umask may have taken group bits `mode` asks for; only the
        // owner may change them, so another user's file is left as it is.
        if fd >= 0 { _ = fchmod(fd, mode) }
        return fd >= 0
    }

    /// True if this process now holds the lock.
    func tryLock() -> Bool {
        guard open() else { return false }
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            if errno != EINTR { return false }
        }
    }

    /// Blocks until the lock is ours; false only if the file cannot be opened.
    func lock() -> Bool {
        guard open() else { return false }
        while true {
            if flock(fd, LOCK_EX) == 0 { return true }
            if errno != EINTR { return false }
        }
    }

    func unlock() {
        if fd >= 0 { flock(fd, LOCK_UN) }
    }
}
