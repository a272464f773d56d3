import ArgumentParser
import ControlCenterCore
import Foundation
import Glibc

/// Master start, before any worker exists: migrate under the lock, make the
/// JWT secret and the first admin. A database that is down at start gets a
/// few retries, then the master refuses to start rather than serve without
/// a schema.
func prepareStorage(_ config: Config, log: Log) {
    var attempt = 0
    while true {
        attempt += 1
        do {
            _ = try StorageSetup.prepare(config, log: log)
            return
        } catch let e as DatabaseError where attempt < 10 {
            if case .unavailable = e {
                log.warning("database not reachable at start; retrying", ["error": e.description, "attempt": String(attempt)])
                Clock.sleep(seconds: 1)
                continue
            }
            fail(log, e)
        } catch {
            fail(log, error)
        }
    }
}

private func fail(_ log: Log, _ error: Error) -> Never {
    log.error("storage setup failed", ["error": String(describing: error)])
    FileHandle.standardError.write(Data("control-center: storage setup failed: \(error)\n".utf8))
    Glibc.exit(1)
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")

    @Flag(help: "Only compare this binary's schema with the database's; exit 0 if they match, 3 if the binary is newer, 4 if the database is (the master runs this before a reload).")
    var check = false

    func run() throws {
        let config = loadConfig()
        if check {
            do {
                let result = try StorageSetup.checkSchema(config)
                print(result)
                Glibc.exit(result.exitCode)
            } catch {
                FileHandle.standardError.write(Data("control-center: schema check failed: \(error)\n".utf8))
                Glibc.exit(1)
            }
        }
        do {
            let r = try StorageSetup.migrate(config)
            print(r.applied.isEmpty ? "database is up to date (version \(r.version))"
                                    : "applied migrations \(r.applied.map(String.init).joined(separator: ", ")); version \(r.version)")
        } catch {
            FileHandle.standardError.write(Data("control-center: migrate failed: \(error)\n".utf8))
            Glibc.exit(1)
        }
    }
}

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage users.",
                                                    subcommands: [AddUser.self])
}

struct AddUser: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Create a user (the first admin, say).")

    @Argument(help: "User name.") var name: String
    @Option(help: "admin, operator or viewer (aliases: user, readonly).") var role = "viewer"
    @Option(name: .customLong("password-file"), help: "Read the password from this file (first line); '-' for stdin.")
    var passwordFile: String?

    func run() throws {
        let config = loadConfig()
        guard let role = Role(parsing: role) else { die("unknown role '\(role)'", code: 2) }
        let password: String
        if let passwordFile {
            guard let text = passwordFile == "-" ? readLine(strippingNewline: true)
                    : (try? String(contentsOfFile: passwordFile, encoding: .utf8)) else {
                die("cannot read \(passwordFile)", code: 2)
            }
            password = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        } else {
            guard isatty(0) == 1 else { die("no terminal for the password prompt; use --password-file", code: 2) }
            let first = promptHidden("Password for \(name): ")
            guard promptHidden("Repeat: ") == first else { die("passwords differ", code: 2) }
            password = first
        }
        if let why = PasswordPolicy.problem(password) { die("the password \(why)", code: 2) }
        do {
            let u = try StorageSetup.addUser(config, username: name, role: role, password: password)
            print("created user \(u.username) (id \(u.id), role \(u.role.rawValue))")
        } catch {
            die("\(error)", code: 1)
        }
    }
}

private func die(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("control-center: \(message)\n".utf8))
    Glibc.exit(code)
}

/// Reads a line from the terminal with echo off.
private func promptHidden(_ prompt: String) -> String {
    FileHandle.standardError.write(Data(prompt.utf8))
    var old = termios()
    tcgetattr(0, &old)
    var quiet = old
    quiet.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(0, TCSANOW, &quiet)
    defer {
        tcsetattr(0, TCSANOW, &old)
        FileHandle.standardError.write(Data("\n".utf8))
    }
    return readLine(strippingNewline: true) ?? ""
}
