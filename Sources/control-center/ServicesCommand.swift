import ArgumentParser
import ControlCenterCore
import Foundation
import Glibc

struct ServicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "Manage the service registry.",
                                                    subcommands: [ImportServices.self])
}

struct ImportServices: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Register or update the services a JSON file lists (an array of definitions as POST /api/services takes them). Idempotent; never deletes; all or nothing.")

    @Argument(help: "The JSON file.") var file: String

    func run() throws {
        let config = loadConfig()
        do {
            let r = try ServiceImport.importFile(config, path: file)
            print("services: \(r.created.count) created, \(r.updated.count) updated, \(r.unchanged.count) unchanged")
        } catch {
            FileHandle.standardError.write(Data("control-center: services import: \(error)\n".utf8))
            Glibc.exit(1)
        }
    }
}

struct SupervisorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervisor", abstract: "Run the service supervisor (started by the master).", shouldDisplay: false)

    @Option(help: "Slot number within the group.") var slot = 0

    func run() throws {
        let config = loadConfig()
        let log = Log(path: config.logFile, level: config.logLevel, fields: ["role": "supervisor"])
        do {
            Glibc.exit(try Supervisor(config: config, log: log).run())
        } catch {
            log.error("supervisor cannot start", ["error": String(describing: error)])
            Glibc.exit(1)
        }
    }
}
