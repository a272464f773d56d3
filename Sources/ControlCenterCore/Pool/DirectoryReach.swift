import Foundation
import Glibc

/// Whether another user (nginx's workers, `CC_NGINX_USER`) can reach a path:
/// every directory from `/` down to it must be searchable (x) by that user.
/// The master adds search permission to the state and run directories
/// itself, but the directories above them belong to the operator, and a
/// state directory under a 0700 home leaves nginx with "Permission denied"
/// on every request; better to refuse to start and say which directory.
enum DirectoryReach {
    /// The directories on the way to `path`, `/` first, `path` last.
    static func ancestors(of path: String) -> [String] {
        var out: [String] = []
        var p = path
        while p.count > 1 {
            out.append(p)
            p = (p as NSString).deletingLastPathComponent
        }
        out.append("/")
        return out.reversed()
    }

    /// The first directory on the way to `path` that `user` may not search,
    /// as the kernel judges it (mode bits and ACLs) with that user's ids;
    /// nil when all are searchable, and when this process is not root (it
    /// cannot take another user's ids, and nginx then runs as this user).
    static func firstUnsearchable(path: String, user: String) -> String? {
        guard geteuid() == 0, let pw = getpwnam(user) else { return nil }
        let uid = pw.pointee.pw_uid, gid = pw.pointee.pw_gid
        // Take the user's ids for the checks only, then root's back: the
        // group list first (it needs root), the effective uid last.
        let count = getgroups(0, nil)
        var saved = [gid_t](repeating: 0, count: Int(max(count, 0)))
        guard count >= 0, getgroups(count, &saved) == count else { return nil }
        var own = [gid]
        guard setgroups(1, &own) == 0 else { return nil }
        defer { _ = setgroups(saved.count, &saved) }
        guard setegid(gid) == 0 else { return nil }
        defer { _ = setegid(0) }
        guard seteuid(uid) == 0 else { return nil }
        defer { _ = seteuid(0) }
        return ancestors(of: path).first { faccessat(AT_FDCWD, $0, X_OK, AT_EACCESS) != 0 }
    }
}
