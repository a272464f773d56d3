import Glibc

/// Write-then-rename publishing: readers see the old file or the new one,
/// never a partial one, even if the writer is killed mid-write.
public enum AtomicFile {
    /// `mtimeMillis` stamps the file before it is published, for readers
    /// (nginx's view check) that take its age from the modification time.
    @discardableResult
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600, sync: Bool = false,
                             mtimeMillis: Int64? = nil) -> Bool {
        let tmp = "\(path).tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return false }
        var ok = bytes.withUnsafeBytes { raw -> Bool in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        if ok && sync { ok = fsync(fd) == 0 }
        // open() applied the umask; the caller's mode is what it asked for.
        if ok { ok = fchmod(fd, mode) == 0 }
        if ok, let ms = mtimeMillis { ok = setTimes(fd, millis: ms) }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            return false
        }
        return true
    }

    /// Sets an open file's access and modification times to `millis` (Unix
    /// milliseconds), the clock the snapshot files and nginx's view check use.
    @discardableResult
    public static func setTimes(_ fd: Int32, millis: Int64) -> Bool {
        let t = timespec(tv_sec: Int(millis / 1000), tv_nsec: Int(millis % 1000) * 1_000_000)
        var times = (t, t)
        return withUnsafePointer(to: &times) {
            $0.withMemoryRebound(to: timespec.self, capacity: 2) { futimens(fd, $0) }
        } == 0
    }

    /// Reads a whole file. Files in /proc report size 0, so this reads to
    /// EOF rather than trusting fstat.
    public static func read(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size <= limit else { return nil }
        var out = [UInt8](repeating: 0, count: max(Int(st.st_size), 4096))
        var off = 0
        while true {
            if off == out.count {
                guard out.count < limit else { return nil }
                out.append(contentsOf: [UInt8](repeating: 0, count: min(out.count, limit - out.count)))
            }
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            off += n
        }
        out.removeSubrange(off...)
        return out
    }
}
