import ArgumentParser
import ControlCenterCore
import Foundation
import Glibc

/// `control-center nginx-config`: renders every file nginx needs for the
/// current settings (environment, then CC_CONFIG_FILE).
struct NginxConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nginx-config",
        abstract: "Render nginx's configuration for the current settings.",
        discussion: """
            Writes control-center-http.conf (http level), control-center.conf (inside a server {}), \
            nginx.conf (standalone) and every file they include, then prints url=<where the standalone nginx answers>. Reload nginx afterwards.
            """)

    @Option(help: "Directory to write into (default: $CC_STATE_DIR/nginx).") var output: String?
    @Flag(help: "Also render the /__bench reference locations (Scripts/bench only).") var bench = false

    func run() throws {
        let config = loadConfig()
        let dir = output ?? config.stateDir + "/nginx"
        do {
            let names = try NginxConfigWriter.write(config: config, directory: dir, bench: bench)
            print("url=\(NginxRender.url(config))")
            print("wrote \(names.count) files to \(Config.absolute(dir)): \(names.joined(separator: " "))")
        } catch {
            FileHandle.standardError.write(Data("control-center: nginx-config: \(error)\n".utf8))
            Glibc.exit(1)
        }
    }
}
