import Glibc

/// The unprivileged user request workers run as (`CC_USER`) when the master
/// is root, as nginx's and OpenSSH's workers do: a flaw in request parsing
/// then yields that user, not root. The collector (it reads every process's
/// /proc entries) and the supervisor (it starts services as their users)
/// keep root.
public struct WorkerUser: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    /// The user's primary group: the only group a dropped worker keeps, and
    /// the group of every file in the state directory workers read or write
    /// (`StatePermissions`).
    public var gid: gid_t

    public init(name: String, uid: uid_t, gid: gid_t) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }

    /// The user to drop to: nil when this process is not root (nothing to
    /// drop; every child runs as the master's user). Throws when root and
    /// `CC_USER` is not a user on this host, or is root itself.
    public static func resolve(_ config: Config, isRoot: Bool = geteuid() == 0) throws -> WorkerUser? {
        guard isRoot else { return nil }
        guard let pw = getpwnam(config.user) else {
            throw ConfigError("CC_USER \(config.user) is not a user on this host: the master runs as root and its "
                + "request workers must run as an unprivileged user. Create it (useradd --system --no-create-home "
                + "--shell /usr/sbin/nologin \(config.user)) or set CC_USER to an existing one")
        }
        guard pw.pointee.pw_uid != 0, pw.pointee.pw_gid != 0 else {
            throw ConfigError("CC_USER \(config.user) has uid or gid 0: request workers would keep root")
        }
        return WorkerUser(name: config.user, uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid)
    }
}
