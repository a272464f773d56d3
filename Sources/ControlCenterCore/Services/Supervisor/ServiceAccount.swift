import Glibc

/// The account a service (and its exec health probe) runs as, from the
/// passwd and group databases (getpwnam(3), getgrnam(3), getgrouplist(3)).
///
/// Under a root supervisor a service without `user` runs as
/// `CC_SERVICES_USER`, an unprivileged user of its own (not `CC_USER`, whose
/// group reads jwt.secret and writes the database): root only when a
/// definition names it (`user: root`, which only an admin may write,
/// audited as a warning).
/// A supervisor that is not root starts services as itself, the only user
/// it can be, unless a definition names another user (which then fails).
struct ServiceAccount: Equatable {
    /// The user name, "" when the supervisor's own uid has no passwd entry.
    var name: String
    var uid: uid_t
    /// The primary group: the user's, or the definition's `group`.
    var gid: gid_t
    /// The user's groups from /etc/group, `gid` included; empty when `setIDs` is false.
    var groups: [gid_t]
    var home: String
    /// Whether the spawned child must setgroups, setgid and setuid.
    var setIDs: Bool

    /// The user to run as by name: the definition's, else `CC_SERVICES_USER`
    /// when the supervisor is root, else nil (the supervisor's own). Pure.
    static func userName(_ def: ServiceDefinition, defaultUser: String, supervisorIsRoot: Bool) -> String? {
        def.user ?? (supervisorIsRoot ? defaultUser : nil)
    }

    /// Resolves `def`'s account; throws when its user or group is not on this
    /// host (a definition written before the account was removed).
    static func resolve(_ def: ServiceDefinition, defaultUser: String, supervisorIsRoot: Bool = geteuid() == 0) throws -> ServiceAccount {
        var account = ServiceAccount(name: "", uid: getuid(), gid: getgid(), groups: [], home: "/", setIDs: false)
        if let pw = getpwuid(account.uid) {
            account.name = String(cString: pw.pointee.pw_name)
            account.home = String(cString: pw.pointee.pw_dir)
        }
        if let user = userName(def, defaultUser: defaultUser, supervisorIsRoot: supervisorIsRoot) {
            guard let pw = getpwnam(user) else { throw ServiceLauncher.Failure(description: "no local user \(user)") }
            // Root is only ever named, by an admin, and audited: never a default.
            if def.user == nil && pw.pointee.pw_uid == 0 {
                throw ServiceLauncher.Failure(description: "CC_SERVICES_USER \(user) is uid 0; a service runs as root only when its definition says user: root")
            }
            account.name = user
            account.uid = pw.pointee.pw_uid
            account.gid = pw.pointee.pw_gid
            account.home = String(cString: pw.pointee.pw_dir)
            account.setIDs = true
        }
        if let group = def.group {
            guard let gr = getgrnam(group) else { throw ServiceLauncher.Failure(description: "no local group \(group)") }
            account.gid = gr.pointee.gr_gid
            account.setIDs = true
        }
        if account.setIDs { account.groups = groupList(account.name.isEmpty ? "nobody" : account.name, account.gid) }
        return account
    }

    static func groupList(_ user: String, _ gid: gid_t) -> [gid_t] {
        var n: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(n))
        if getgrouplist(user, gid, &groups, &n) < 0 {
            groups = [gid_t](repeating: 0, count: Int(n))
            _ = getgrouplist(user, gid, &groups, &n)
        }
        return Array(groups.prefix(Int(max(n, 0))))
    }
}
