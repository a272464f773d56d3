import Glibc

/// Which file a loaded copy came from: a new rename gives a new inode, so this
/// tells a worker whether its parsed copy is still the published one.
struct FileIdentity: Equatable {
    var dev: UInt64
    var ino: UInt64
    var size: Int64
    var mtimeNanos: Int64

    init(_ st: stat) {
        dev = UInt64(st.st_dev)
        ino = UInt64(st.st_ino)
        size = Int64(st.st_size)
        mtimeNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }

    static func of(path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(st)
    }
}

/// A validated snapshot held in a worker's memory, plus whatever view of it a
/// handler decoded (the process table, say), so decoding happens once per
/// published file, not once per request.
public final class LoadedSnapshot {
    let file: SnapshotFile
    let identity: FileIdentity?
    /// False when its file could not be written (a full disk): the figures
    /// are this process's only.
    public var isWritten: Bool { identity != nil }
    var decoded: AnyObject?

    init(file: SnapshotFile, identity: FileIdentity?) {
        self.file = file
        self.identity = identity
    }

    public var kind: SnapshotKind { file.kind }
    public var takenAtMillis: Int64 { file.takenAtMillis }
    public var refreshMillis: Double { Double(file.refreshMicros) / 1000 }
    public var itemCount: Int { file.itemCount }

    /// The view `make` builds from this snapshot, memoised.
    func view<T: AnyObject>(_ make: (SnapshotFile) throws -> T) rethrows -> T {
        if let d = decoded as? T { return d }
        let d = try make(file)
        decoded = d
        return d
    }

    /// Reads and validates the file at `path`; nil when missing or invalid.
    static func read(path: String, kind: SnapshotKind) -> LoadedSnapshot? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= SnapshotFile.headerSize, st.st_size < (256 << 20) else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return nil }
            off += n
        }
        guard let file = SnapshotFile.decode(bytes, kind: kind) else { return nil }
        return LoadedSnapshot(file: file, identity: FileIdentity(st))
    }
}
