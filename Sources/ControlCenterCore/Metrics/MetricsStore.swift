import Glibc

/// The pool's application metrics without shared memory, in the design of
/// prometheus_client's multiprocess mode: each worker writes its own totals
/// to `<pid>-<start ms>.metrics` in `$CC_STATE_DIR/run/metrics/`; a file whose
/// writer has exited is folded into `exited.metrics` (added, then unlinked),
/// so recycling, SIGKILL and HUP never lose what a worker had written and
/// counters never go backwards. Folds happen at a scrape and when the master
/// reaps; both take `fold.lock` (flock), and a scrape sums under the same
/// lock so it never sees a file both folded and still listed, or neither.
public struct MetricsStore: Sendable {
    public let directory: String

    public init(runDir: String) { directory = runDir + "/metrics" }

    static let foldedName = "exited.metrics"
    static let suffix = ".metrics"

    /// The file a worker started at `startedMillis` writes.
    public func workerPath(pid: Int32, startedMillis: Int64) -> String {
        "\(directory)/\(pid)-\(startedMillis)\(Self.suffix)"
    }

    /// The fold's lock and result are shared by the master (root) and the
    /// request workers (CC_USER when the master is root), whose group the
    /// directory passes on (StatePermissions): read-write for that group.
    static let sharedMode: mode_t = 0o660

    public func ensureDirectory() { mkdir(directory, 0o700) }

    /// Decoded files of live workers by name, reused while a file's mtime and
    /// size and inode are unchanged: a worker rewrites its file at most once a second,
    /// so most of a busy scraper's files are unchanged since its last scrape.
    public final class Cache {
        var files: [String: (mtime: Int, size: Int, inode: UInt, file: MetricsFile)] = [:]
        public init() {}
    }

    /// Folds exited workers' files and returns the pool's totals: the folded
    /// total plus every live worker's last written file.
    public func totals(cache: Cache? = nil) -> [String: Double] {
        let lock = FileLock(path: directory + "/fold.lock", mode: Self.sharedMode)
        guard lock.lock() else { return [:] }
        defer { lock.unlock() }
        return foldLocked(cache: cache).samples
    }

    /// The master's fold after a reap: skipped when a scrape holds the lock
    /// (that scrape folds the same files).
    public func foldIfFree() {
        let lock = FileLock(path: directory + "/fold.lock", mode: Self.sharedMode)
        guard lock.tryLock() else { return }
        defer { lock.unlock() }
        _ = foldLocked(cache: nil)
    }

    private func foldLocked(cache: Cache?) -> MetricsFile {
        let foldedPath = directory + "/" + Self.foldedName
        var exited = AtomicFile.read(foldedPath).map { MetricsFile.decode($0) } ?? MetricsFile()
        let already = Set(exited.folded)
        var live = MetricsFile()
        var newlyFolded: [String] = []
        var seen = Set<String>()
        for name in Self.list(directory) where name != Self.foldedName {
            if let tmp = name.range(of: ".tmp.") {
                // A writer killed between write and rename leaves its temp file.
                if let pid = Int32(name[tmp.upperBound...]), !Self.isAlive(pid) { unlink(directory + "/" + name) }
                continue
            }
            guard name.hasSuffix(Self.suffix), let pid = Int32(name.prefix { $0 != "-" }) else { continue }
            let path = directory + "/" + name
            if already.contains(name) {
                unlink(path) // folded by a fold that died before unlinking it
                continue
            }
            if Self.isAlive(pid) {
                var st = stat()
                guard stat(path, &st) == 0 else { continue }
                let mtime = st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec, size = Int(st.st_size)
                if let hit = cache?.files[name], hit.mtime == mtime, hit.size == size, hit.inode == UInt(st.st_ino) {
                    live.add(hit.file.samples)
                    seen.insert(name)
                    continue
                }
                guard let bytes = AtomicFile.read(path, limit: 4 << 20) else { continue }
                let file = MetricsFile.decode(bytes)
                // The file may have been replaced between stat and read: keyed by what was read.
                if bytes.count == size { cache?.files[name] = (mtime, size, UInt(st.st_ino), file) }
                seen.insert(name)
                live.add(file.samples)
            } else {
                guard let bytes = AtomicFile.read(path, limit: 4 << 20) else { continue }
                exited.add(MetricsFile.decode(bytes).samples)
                newlyFolded.append(name)
            }
        }
        if let cache { cache.files = cache.files.filter { seen.contains($0.key) } }
        if !newlyFolded.isEmpty {
            exited.folded = newlyFolded
            guard AtomicFile.write(exited.encode(), to: foldedPath, mode: Self.sharedMode) else {
                // Not folded: count them as live this time and retry next time.
                live.add(exited.samples)
                return live
            }
            for name in newlyFolded { unlink(directory + "/" + name) }
        }
        live.add(exited.samples)
        return live
    }

    /// A zombie (exited, not yet reaped) still counts as alive: its file is
    /// final either way, and the next fold takes it.
    static func isAlive(_ pid: Int32) -> Bool { pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) }

    static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }
}
