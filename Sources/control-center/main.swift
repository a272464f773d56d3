import ArgumentParser
import ControlCenterCore
import ControlCenterLive
import Foundation
import Glibc

struct ControlCenter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control-center",
        abstract: "Host monitoring and service control: a FastCGI worker pool behind nginx.",
        version: Version.string,
        subcommands: [Serve.self, CheckConfig.self, NginxConfigCommand.self, Worker.self, CollectorCommand.self,
                      SupervisorCommand.self, Migrate.self, UserCommand.self, ServicesCommand.self, BackupCommand.self,
                      RestoreCommand.self, SnapshotCommand.self]
    )
}

/// Loads the config or exits 2 with the reason, so every subcommand fails alike.
func loadConfig() -> Config {
    do {
        return try Config.load()
    } catch {
        FileHandle.standardError.write(Data("control-center: configuration error: \(error)\n".utf8))
        Glibc.exit(2)
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the master: bind the FastCGI sockets and manage the worker pools.")

    func run() throws {
        let config = loadConfig()
        let log = Log(path: config.logFile, level: config.logLevel, fields: ["role": "master"])
        let workerUser: WorkerUser?
        do {
            workerUser = try WorkerUser.resolve(config)
        } catch {
            log.error("master cannot start", ["error": String(describing: error)])
            FileHandle.standardError.write(Data("control-center: \(error)\n".utf8))
            Glibc.exit(1)
        }
        prepareStorage(config, log: log)
        do {
            let code = try Master(config: config, log: log, workerUser: workerUser).run()
            Glibc.exit(code)
        } catch {
            log.error("master cannot start", ["error": String(describing: error)])
            FileHandle.standardError.write(Data("control-center: \(error)\n".utf8))
            Glibc.exit(1)
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration and print every setting with its value and source (default, file or environment), secrets masked.")

    func run() throws {
        let config = loadConfig()
        let rows: [(name: String, value: String, source: SettingSource)]
        do {
            rows = try Config.settingSources(loaded: config)
        } catch {
            FileHandle.standardError.write(Data("control-center: configuration error: \(error)\n".utf8))
            Glibc.exit(2)
        }
        print("configuration OK")
        let width = rows.map(\.name.count).max() ?? 0
        for r in rows {
            print("\(r.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(r.value)  (\(r.source.rawValue))")
        }
    }
}

struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one FastCGI worker on fd 0 (started by the master).", shouldDisplay: false)

    @Option(help: "Pool name.") var pool = "main"
    @Option(help: "Slot number within the pool.") var slot = 0

    func run() throws {
        let config = loadConfig()
        let log = Log(path: config.logFile, level: config.logLevel, fields: ["role": "worker", "pool": pool])
        let access = Log(path: config.accessLog, level: .info, defaultFD: 1,
                         bufferSize: config.accessLogBuffer, flushInterval: config.accessLogFlush)
        // Root only long enough to read the settings and open the logs (as
        // nginx's workers inherit theirs); no request, database or secret
        // is touched before the drop.
        let user: WorkerUser?
        do {
            user = try WorkerUser.resolve(config)
            if let user { try PrivilegeDrop.drop(to: user) }
        } catch {
            log.error("worker cannot drop root; not serving", ["error": String(describing: error)])
            Glibc.exit(1)
        }
        let context = WorkerContext(config: config, log: log, pool: pool, runsAs: user)
        let master = ProcessInfo.processInfo.environment["CC_MASTER_PID"].flatMap { Int32($0) }
        let worker = FastCGIWorker(context: context, router: Application.makeRouter(config: config),
                                   accessLog: access, slot: slot, masterPid: master)
        Glibc.exit(worker.run())
    }
}

ControlCenter.main()

struct CollectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "Run the collector: sample stats, refresh snapshots, publish live messages (started by the master).",
        shouldDisplay: false)

    @Option(help: "Slot number (always 0; the master passes it to every child).") var slot = 0

    func run() throws {
        let config = loadConfig()
        let log = Log(path: config.logFile, level: config.logLevel, fields: ["role": "collector"])
        Glibc.exit(Collector(config: config, log: log).run())
    }
}
