import CSupport
import Foundation
import Glibc

/// Starts one service process (`cc_spawn_service`): its own session, its
/// account's user and groups (`ServiceAccount`), the definition's directory
/// and open-files limit, stdin from /dev/null, stdout and stderr both to
/// `output` (the service's output FIFO, which the supervisor reads into its
/// log files).
///
/// The environment is built, not inherited, so nothing of the master's
/// (`CC_JWT_SECRET`, a database URL) reaches a service: a fixed `PATH`,
/// `HOME`, `USER` and `LOGNAME` of the account it runs as, `LANG=C.UTF-8`,
/// then the definition's variables, then the `CC_SERVICE` marker
/// (`ServiceProcessTree`) unless `marked` is false (an exec health probe
/// is not part of the service's tree).
enum ServiceLauncher {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    static func environment(_ def: ServiceDefinition, home: String, user: String, marked: Bool = true) -> [String] {
        var env = ["PATH": path, "HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8"]
        for (k, v) in def.environment { env[k] = v }
        if marked { env[ServiceProcessTree.markerName] = def.name }
        return env.keys.sorted().map { "\($0)=\(env[$0]!)" }
    }

    /// Runs `argv` (the definition's `command` unless given) the way the
    /// service runs, as `account` (`ServiceAccount.resolve`), in the cgroup
    /// whose `cgroup.procs` is open as `cgroupProcs` (-1: none; `ServiceCgroup.prepare`).
    static func spawn(_ def: ServiceDefinition, as account: ServiceAccount, argv command: [String]? = nil,
                      output: Int32, marked: Bool = true, cgroupProcs: Int32 = -1) throws -> Int32 {
        let command = command ?? def.command
        let argv = command.map { strdup($0) } + [nil]
        let envp = environment(def, home: account.home, user: account.name, marked: marked).map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var err: Int32 = 0
        let pid = cc_spawn_service(command[0], argv, envp, def.workingDirectory ?? "/", account.uid, account.gid,
                                   account.groups, Int32(account.groups.count), account.setIDs ? 1 : 0,
                                   def.limitOpenFiles ?? 0, output, cgroupProcs, &err)
        guard pid > 0 else { throw Failure(description: "\(command[0]): \(String(cString: strerror(err)))") }
        return pid
    }
}
