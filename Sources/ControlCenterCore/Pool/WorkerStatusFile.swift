import Glibc

/// The worker's side: one open fd, rewritten with a single pwrite per change.
public final class WorkerStatusWriter {
    public private(set) var record: WorkerStatusRecord
    private let fd: Int32
    public let path: String
    private var buffer: [UInt8] = []

    public init?(directory: String, record: WorkerStatusRecord) {
        self.record = record
        path = "\(directory)/\(record.pid).status"
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { return nil }
        flush()
    }

    deinit { close(fd) }

    public func begin(method: String, path: String, nowMillis: Int64) {
        record.busy = true
        record.method = method
        record.path = path
        record.sinceMillis = nowMillis
        flush()
    }

    public func end(nowMillis: Int64) {
        record.busy = false
        record.served += 1
        record.sinceMillis = nowMillis
        flush()
    }

    private func flush() {
        record.encode(into: &buffer)
        _ = buffer.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }
}

/// The reader's side (master and status page).
public enum WorkerStatusDirectory {
    public static func read(path: String) -> WorkerStatusRecord? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A read racing a pwrite can see a mix of two records: the end magic
        // catches most of those, and one retry is enough for the rest.
        for _ in 0..<3 {
            var buf = [UInt8](repeating: 0, count: WorkerStatusRecord.size)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            if n == WorkerStatusRecord.size, let r = WorkerStatusRecord(decoding: buf) { return r }
        }
        return nil
    }

    public static func readAll(directory: String) -> [WorkerStatusRecord] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [WorkerStatusRecord] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".status") else { continue }
            if let r = read(path: "\(directory)/\(name)") { out.append(r) }
        }
        return out.sorted { ($0.pool, $0.slot, $0.pid) < ($1.pool, $1.slot, $1.pid) }
    }
}
