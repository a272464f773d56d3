import Glibc

/// An flock(2) lock on a file of its own. The kernel drops it when the holder
/// dies, so a refresher killed mid-scan never wedges the others.
final class FileLock {
    let path: String
    private var fd: Int32 = -1

    init(path: String) { self.path = path }

    deinit { if fd >= 0 { close(fd) } }

    private func open() -> Bool {
        if fd >= 0 { return true }
        fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
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
