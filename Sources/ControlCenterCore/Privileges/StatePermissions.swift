import Glibc

/// The owner, group and mode of every path in the state directory that
/// request workers share with root's children, when the master is root and
/// the workers run as `WorkerUser`. Directories are set-group-id with the
/// user's group, so what the collector, the supervisor and SQLite create in
/// them later is that group's too; the file modes (0640 readable, 0660
/// read-write) then decide what the workers may do.
///
/// | path | mode | why |
/// |---|---|---|
/// | state dir | 2750 (2751 with CC_NGINX_USER), plus 1020 (sticky, group-writable) when the SQLite file is in it | SQLite creates `-wal` and `-shm` beside the database; sticky, so a worker deletes only its own files |
/// | run/ | 2750 (2751 with CC_NGINX_USER) | workers reach their sockets, pool.state, the wake socket and FIFO |
/// | run/workers/, run/metrics/, run/action-wait/ | 2770 | each worker writes its status, metrics and wait-slot lock files there |
/// | cache/ | 2750 | the collector writes snapshots (0640), workers read them |
/// | services/ | 2750 | the supervisor writes service output (0640), workers read it |
/// | jwt.secret | 0640 | workers verify tokens; never world-readable |
/// | SQLite file, -wal, -shm | 0660 | workers read and write the database |
/// | CC_LOG_FILE, CC_ACCESS_LOG | 0660 | workers append and reopen them on USR1, as nginx chowns its logs |
///
/// With `CC_NGINX_USER`, others also get search (x) on the state and run
/// directories, for nginx's workers.
public enum StatePermissions {
    public struct Grant: Equatable, Sendable, CustomStringConvertible {
        public var path: String
        public var mode: mode_t

        public init(_ path: String, _ mode: mode_t) {
            self.path = path
            self.mode = mode
        }

        public var description: String { "\(path) \(String(mode, radix: 8))" }
    }

    /// What `apply` sets, for `config`; pure.
    public static func plan(_ config: Config) -> [Grant] {
        let sqlite = StorageService.sqlitePath(config)
        let sqliteInState = sqlite.map { directory(of: $0) == config.stateDir } ?? false
        // nginx's workers (CC_NGINX_USER) reach the sockets and the views:
        // search only, as `Master.addSearchPermission` gives it.
        let nginx: mode_t = config.nginx.user == nil ? 0 : 0o001
        var grants = [
            Grant(config.stateDir, (sqliteInState ? 0o3770 : 0o2750) | nginx),
            Grant(config.runDir, 0o2750 | nginx),
            Grant(config.workerStatusDir, 0o2770),
            Grant(MetricsStore(runDir: config.runDir).directory, 0o2770),
            Grant(config.actionWaitDir, 0o2770),
            Grant(config.cacheDir, 0o2750),
            Grant(config.serviceLogDir, 0o2750),
        ]
        if config.jwtSecret == nil { grants.append(Grant(config.stateDir + "/jwt.secret", 0o640)) }
        if let sqlite { grants += [sqlite, sqlite + "-wal", sqlite + "-shm"].map { Grant($0, 0o660) } }
        grants += logFiles(config).map { Grant($0, 0o660) }
        return grants
    }

    /// The log files workers write (and reopen on USR1).
    public static func logFiles(_ config: Config) -> [String] {
        [config.logFile, config.accessLog].compactMap { $0 }.filter { $0 != "off" && !$0.hasPrefix("/dev/") }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Gives each existing path of `grants` the user's group and its mode;
    /// the owner stays (root). Returns the paths that failed, with the reason.
    @discardableResult
    public static func apply(_ grants: [Grant], group: gid_t) -> [String] {
        var failed: [String] = []
        for g in grants {
            var st = stat()
            guard stat(g.path, &st) == 0 else { continue } // made later, in a set-group-id directory
            if chown(g.path, uid_t.max, group) != 0 || chmod(g.path, g.mode) != 0 {
                failed.append("\(g.path): \(String(cString: strerror(errno)))")
            }
        }
        return failed
    }
}
