import Glibc

/// uid -> name from /etc/passwd, parsed once per snapshot at most (and only
/// when the file changed), instead of one NSS lookup per process.
final class UserNames {
    private var names: [UInt32: String] = [:]
    private var loadedFrom: FileIdentity?

    func refresh() {
        let id = FileIdentity.of(path: "/etc/passwd")
        if id != nil && id == loadedFrom { return }
        loadedFrom = id
        names.removeAll()
        guard let bytes = AtomicFile.read("/etc/passwd", limit: 16 << 20) else { return }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 3, let uid = UInt32(f[2]), names[uid] == nil else { continue }
            names[uid] = String(f[0])
        }
    }

    /// The name, or the number as ps prints it for unknown uids.
    func name(_ uid: UInt32) -> String {
        if let n = names[uid] { return n }
        let n = String(uid)
        names[uid] = n
        return n
    }
}
