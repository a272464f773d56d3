import CSupport
import Glibc

/// Takes a root process down to `WorkerUser` for good: the syscall layer of
/// privilege separation, run by a request worker before it serves anything.
public enum PrivilegeDrop {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// setgroups (only the user's primary group), setgid, setuid, in that
    /// order (each later step needs root for the one before), then
    /// PR_SET_NO_NEW_PRIVS. Verifies that the drop cannot be undone: real,
    /// effective and saved ids are the user's, no supplementary group is
    /// root's, and setuid(0) fails. Throws rather than serve as root.
    public static func drop(to user: WorkerUser) throws {
        var groups = [user.gid]
        guard setgroups(1, &groups) == 0 else { throw failure("setgroups") }
        guard setgid(user.gid) == 0 else { throw failure("setgid(\(user.gid))") }
        guard setuid(user.uid) == 0 else { throw failure("setuid(\(user.uid))") }
        guard cc_set_no_new_privs() == 0 else { throw failure("prctl(PR_SET_NO_NEW_PRIVS)") }
        try verify(user)
    }

    /// Checks that this process runs as `user` and cannot get root back.
    public static func verify(_ user: WorkerUser) throws {
        guard cc_ids_all_equal(user.uid, user.gid) == 1 else {
            throw Failure(description: "after dropping to \(user.name), a real, effective or saved id is still another user's")
        }
        let count = getgroups(0, nil)
        var list = [gid_t](repeating: 0, count: Int(max(count, 0)))
        guard count >= 0, getgroups(count, &list) == count, list.allSatisfy({ $0 == user.gid }) else {
            throw Failure(description: "after dropping to \(user.name), supplementary groups remain: \(list)")
        }
        guard setuid(0) != 0, seteuid(0) != 0 else {
            throw Failure(description: "after dropping to \(user.name), setuid(0) still succeeds")
        }
    }

    private static func failure(_ step: String) -> Failure {
        Failure(description: "\(step) failed: \(String(cString: strerror(errno)))")
    }
}
