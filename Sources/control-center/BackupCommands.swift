import ArgumentParser
import ControlCenterCore
import Foundation
import Glibc

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the SQLite database (consistent, safe while serving) and the JWT secret into a new directory (mode 0700).")

    @Argument(help: "The backup directory to create; it must not exist.") var directory: String

    func run() throws {
        let config = loadConfig()
        do {
            let summary = try Backup.create(config, to: directory)
            print("backup written to \(directory): \(summary)")
        } catch {
            FileHandle.standardError.write(Data("control-center: backup failed: \(error)\n".utf8))
            Glibc.exit(1)
        }
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a fresh (missing or empty) CC_STATE_DIR; start the master afterwards.")

    @Argument(help: "A directory written by control-center backup.") var directory: String

    func run() throws {
        let config = loadConfig()
        do {
            let summary = try Backup.restore(config, from: directory)
            print("restored into \(config.stateDir): \(summary)")
            if config.jwtSecret != nil {
                print("note: CC_JWT_SECRET is set, so the restored jwt.secret is not used; tokens issued with the "
                      + "backed-up key stay valid only if CC_JWT_SECRET holds that key")
            }
        } catch {
            FileHandle.standardError.write(Data("control-center: restore failed: \(error)\n".utf8))
            Glibc.exit(1)
        }
    }
}
