import Glibc

/// Serves snapshots from `$CC_STATE_DIR/cache`; only the collector (and the
/// CLI's benchmark) writes them, with `forceRefresh`.
///
/// A request worker never scans /proc, with or without root: the collector
/// refreshes every kind a route serves every half TTL. A worker serves the
/// published copy (from memory when it already parsed that file, without a
/// syscall) while it is younger than `CC_CACHE_MAX_STALE`, its time shown in
/// the answer as for any copy, and answers 503 after that: a worker that
/// scanned /proc as CC_USER would miss other users' fds and sockets and serve
/// that partial view as whole. Right after a start, a request that finds no
/// copy at all waits up to 2 s for the collector's first one.
public final class SnapshotCache {
    public let config: Config
    public let directory: String
    /// Where default views go for nginx, or nil when nginx must not serve them.
    public let viewsDirectory: String?
    private var loaded: [SnapshotKind: LoadedSnapshot] = [:]
    private var locks: [SnapshotKind: FileLock] = [:]
    private var builders: [SnapshotKind: SnapshotBuilder] = [:]
    /// The directories exist (made by the first refresh when not by the master).
    private var madeDirectories = false

    public init(config: Config, directory: String? = nil, viewsDirectory: String?? = nil) {
        self.config = config
        self.directory = directory ?? config.cacheDir
        self.viewsDirectory = viewsDirectory ?? (config.writesViews ? config.viewsDir : nil)
    }

    private static func makePath(_ dir: String, mode: mode_t) {
        var path = ""
        for part in dir.split(separator: "/") {
            path += "/" + part
            mkdir(path, mode)
        }
    }

    /// The collector's copy of `kind`: the published one while it is younger
    /// than `CC_CACHE_MAX_STALE`. Throws 503 (`service_unavailable`) when
    /// there is none after `firstCopyWait`, or only an older one.
    public func snapshot(_ kind: SnapshotKind) throws -> LoadedSnapshot {
        let ttl = Int64(kind.ttl(config) * 1000)
        if let mine = loaded[kind], Clock.wallMillis() - mine.takenAtMillis < ttl { return mine }
        var copy = published(kind)
        let deadline = Clock.monotonicSeconds() + min(Self.firstCopyWait, config.requestTimeout / 2)
        while copy == nil, Clock.monotonicSeconds() < deadline {
            Clock.sleep(seconds: 0.05)
            copy = published(kind)
        }
        guard let copy else {
            throw APIError.unavailable("no \(kind.rawValue) snapshot yet: the collector has not written one")
        }
        let age = Clock.wallMillis() - copy.takenAtMillis
        guard age < Int64(config.cacheMaxStale * 1000) else {
            throw APIError.unavailable("the \(kind.rawValue) snapshot is \(age / 1000) s old, beyond CC_CACHE_MAX_STALE: "
                + "the collector is not refreshing it")
        }
        return copy
    }

    /// Seconds a request waits for the collector's first copy (a request
    /// right after the master started), polling the file.
    static let firstCopyWait = 2.0

    /// Rebuilds `kind` now, whatever its age (the collector, the CLI
    /// benchmark). The caller must not hold the lock. A snapshot whose file
    /// could not be written (a full disk) is returned all the same, with no
    /// `identity`; throws when it cannot be built.
    @discardableResult
    public func forceRefresh(_ kind: SnapshotKind) throws -> LoadedSnapshot {
        if !madeDirectories {
            // The master creates them; tests and the CLI may not have them yet.
            Self.makePath(directory, mode: 0o700)
            if let v = viewsDirectory { Self.makePath(v, mode: 0o755) }
            madeDirectories = true
        }
        let lock = lockFor(kind)
        guard lock.lock() else { throw SnapshotError("cannot open \(lock.path)") }
        defer { lock.unlock() }
        return try refresh(kind, previous: published(kind)?.file)
    }

    public func counters(_ kind: SnapshotKind) -> RefreshCounters {
        RefreshCounters.read(kind.countersPath(directory))
    }

    // MARK: internals

    private func lockFor(_ kind: SnapshotKind) -> FileLock {
        if let l = locks[kind] { return l }
        let l = FileLock(path: kind.lockPath(directory))
        locks[kind] = l
        return l
    }

    /// The currently published copy, reusing this worker's parse when the
    /// file has not changed. An invalid file counts as no file.
    private func published(_ kind: SnapshotKind) -> LoadedSnapshot? {
        let path = kind.snapPath(directory)
        if let mine = loaded[kind], let id = mine.identity, FileIdentity.of(path: path) == id { return mine }
        guard let fresh = LoadedSnapshot.read(path: path, kind: kind) else { return nil }
        loaded[kind] = fresh
        return fresh
    }

    /// Runs with the kind's lock held.
    private func refresh(_ kind: SnapshotKind, previous: SnapshotFile?) throws -> LoadedSnapshot {
        removeOrphanTemps(kind)
        let countersPath = kind.countersPath(directory)
        var counters = RefreshCounters.read(countersPath)
        let startMono = Clock.monotonicNanos()
        let input = BuildInput(takenAtMillis: Clock.wallMillis(), monoNanos: HostConstants.bootNanos(), previous: previous)
        do {
            let built = try builder(kind).build(input)
            let micros = (Clock.monotonicNanos() - startMono) / 1000
            let bytes = SnapshotFile.encode(kind: kind, takenAtMillis: input.takenAtMillis, takenAtMonoNanos: input.monoNanos,
                                            refreshMicros: micros, itemCount: built.itemCount, sections: built.sections)
            let path = kind.snapPath(directory)
            // 0640: request workers read it through the cache directory's group (StatePermissions).
            let written = AtomicFile.write(bytes, to: path, mode: 0o640)
            let writeErrno = errno
            guard let file = SnapshotFile.decode(bytes, kind: kind) else { throw SnapshotError("encoded snapshot does not decode") }
            guard written else {
                // A full (or read-only) disk: the figures are good, only their file is not.
                // The caller still has them (the collector samples and publishes on; a
                // worker answers with its own copy); readers of the file keep the last one.
                counters.errors += 1
                counters.lastError = "cannot write \(path): errno \(writeErrno)"
                counters.write(countersPath)
                let snap = LoadedSnapshot(file: file, identity: nil)
                loaded[kind] = snap
                return snap
            }
            let snap = LoadedSnapshot(file: file, identity: FileIdentity.of(path: path))
            if !publishView(kind, file, takenAtMillis: input.takenAtMillis) {
                counters.lastError = "cannot publish the \(kind.rawValue) view: errno \(errno)"
            }
            loaded[kind] = snap
            counters.refreshes += 1
            counters.lastDurationMicros = Int(micros)
            counters.totalDurationMicros += Int(micros)
            counters.lastTakenAtMillis = input.takenAtMillis
            counters.write(countersPath)
            return snap
        } catch {
            counters.errors += 1
            counters.lastError = String(describing: error)
            counters.write(countersPath)
            throw error
        }
    }

    /// The default view as nginx sends it: the whole body, written complete
    /// (write, then rename) with its mtime the snapshot's time, which nginx
    /// gives as `Last-Modified` and the master checks against
    /// `CC_CACHE_MAX_STALE` (ViewFiles). A failed write only costs speed:
    /// nginx sends requests for a missing view to the workers.
    private func publishView(_ kind: SnapshotKind, _ file: SnapshotFile, takenAtMillis: Int64) -> Bool {
        guard kind.hasNginxView, let dir = viewsDirectory else { return true }
        let body = Array(file.section(.body))
        guard !body.isEmpty else { return true }
        return AtomicFile.write(body, to: kind.viewPath(dir), mode: 0o644, mtimeMillis: takenAtMillis)
    }

    /// A refresher killed mid-write leaves `<kind>.snap.tmp.<pid>`; only the
    /// lock holder writes those, so any found now is garbage.
    private func removeOrphanTemps(_ kind: SnapshotKind) {
        let prefix = "\(kind.rawValue).snap.tmp."
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) { unlink("\(directory)/\(name)") }
        }
    }

    private func builder(_ kind: SnapshotKind) -> SnapshotBuilder {
        if let b = builders[kind] { return b }
        let b: SnapshotBuilder
        switch kind {
        case .processes: b = ProcessesBuilder()
        case .connections: b = ConnectionsBuilder()
        case .network: b = NetworkBuilder()
        case .stats: b = StatsBuilder()
        }
        builders[kind] = b
        return b
    }
}
