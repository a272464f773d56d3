import CSupport
import Foundation
import Glibc

/// Starts one service process (`cc_spawn_service`): its own session, the
/// definition's user, group, directory and open-files limit, stdin from
/// /dev/null, stdout and stderr both to `output` (the write end of the pipe
/// the supervisor reads into the service's log files).
///
/// The environment is built, not inherited, so nothing of the master's
/// (`CC_JWT_SECRET`, a database URL) reaches a service: a fixed `PATH`,
/// `HOME`, `USER` and `LOGNAME` of the account it runs as, `LANG=C.UTF-8`,
/// then the definition's variables, then the `CC_SERVICE` marker
/// (`ServiceProcessTree`).
enum ServiceLauncher {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    static func environment(_ def: ServiceDefinition, home: String, user: String) -> [String] {
        var env = ["PATH": path, "HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8"]
        for (k, v) in def.environment { env[k] = v }
        env[ServiceProcessTree.markerName] = def.name
        return env.keys.sorted().map { "\($0)=\(env[$0]!)" }
    }

    static func spawn(_ def: ServiceDefinition, output: Int32) throws -> Int32 {
        var setIDs: Int32 = 0
        var uid = getuid(), gid = getgid()
        var groups: [gid_t] = []
        var home = "/", userName = ""
        if let pw = getpwuid(uid) {
            home = String(cString: pw.pointee.pw_dir)
            userName = String(cString: pw.pointee.pw_name)
        }
        if let user = def.user {
            guard let pw = getpwnam(user) else { throw Failure(description: "no local user \(user)") }
            uid = pw.pointee.pw_uid
            gid = pw.pointee.pw_gid
            home = String(cString: pw.pointee.pw_dir)
            userName = user
            setIDs = 1
        }
        if let group = def.group {
            guard let gr = getgrnam(group) else { throw Failure(description: "no local group \(group)") }
            gid = gr.pointee.gr_gid
            setIDs = 1
        }
        if setIDs != 0 {
            var n: Int32 = 64
            groups = [gid_t](repeating: 0, count: Int(n))
            if getgrouplist(userName.isEmpty ? "nobody" : userName, gid, &groups, &n) < 0 {
                groups = [gid_t](repeating: 0, count: Int(n))
                _ = getgrouplist(userName, gid, &groups, &n)
            }
            groups = Array(groups.prefix(Int(max(n, 0))))
        }
        let argv = def.command.map { strdup($0) } + [nil]
        let envp = environment(def, home: home, user: userName).map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var err: Int32 = 0
        let pid = cc_spawn_service(def.command[0], argv, envp, def.workingDirectory ?? "/", uid, gid, groups,
                                   Int32(groups.count), setIDs, def.limitOpenFiles ?? 0, output, &err)
        guard pid > 0 else { throw Failure(description: "\(def.command[0]): \(String(cString: strerror(err)))") }
        return pid
    }
}
