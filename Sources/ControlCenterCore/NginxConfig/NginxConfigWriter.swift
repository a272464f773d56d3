import Foundation
import Glibc

/// Puts NginxRender's files on disk: the syscall side of `control-center
/// nginx-config`. Files are 0644 and directories 0755, since nginx's workers
/// (CC_NGINX_USER) read them.
public enum NginxConfigWriter {
    /// Renders for `config` into `directory` (created, with `tmp/` for
    /// nginx's temp paths), installs cc_live_resume.lua, and returns the
    /// names written. Throws RenderError, also when nginx's nchan or Lua
    /// module is missing (the live channels are always rendered).
    @discardableResult
    public static func write(config: Config, directory: String, bench: Bool) throws -> [String] {
        guard NginxRender.liveModulesInstalled else { throw RenderError(NginxRender.liveModulesMissing) }
        let dir = Config.absolute(directory)
        let render = NginxRender(
            config: config, directory: dir, bench: bench,
            openFilesLimit: openFilesLimit())
        var files = try render.files()
        files.append((NginxRender.liveLuaFileName, try luaSource(NginxRender.liveLuaFileName)))
        for d in [dir, dir + "/tmp"] + (bench ? [config.stateDir + "/bench"] : []) {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        // nginx binds the publisher socket in it, whichever of nginx and the master starts first.
        // The same modes as the master's (Master.prepareDirectories).
        for (d, mode) in [(config.stateDir, 0o755), (config.runDir, 0o755), (config.publishDir, 0o700)] as [(String, mode_t)]
        where mkdir(d, mode) != 0 && errno != EEXIST {
            throw RenderError("cannot create \(d): \(String(cString: strerror(errno)))")
        }
        // nginx does not remove a unix socket it listened on when it dies, and
        // then cannot bind it again: clear the live channels' sockets that
        // nobody answers on (a running nginx keeps its own).
        for path in [config.publishSocket, config.streamAuthorizeSocket]
        where access(path, F_OK) == 0 && !ListenSocket.isUnixSocketLive(path) {
            unlink(path)
        }
        try installWebCopy(from: config.nginx.webDir, to: render.webCopy)
        for (name, text) in files {
            guard AtomicFile.write(Array(text.utf8), to: "\(dir)/\(name)", mode: 0o644) else {
                throw RenderError("cannot write \(dir)/\(name): \(String(cString: strerror(errno)))")
            }
        }
        // A file that the settings no longer include must not linger looking current.
        let written = Set(files.map(\.name))
        for stale in allNames where !written.contains(stale) { unlink("\(dir)/\(stale)") }
        return files.map(\.name)
    }

    /// Files only some settings render (and cc_views.lua, which older
    /// versions installed and nothing includes now).
    static let allNames = ["control-center-views-http.conf", "control-center-views.conf", "control-center-view.inc",
                           "control-center-views-ms.map", "control-center-bench.conf", "cc_views.lua"]

    /// Replaces `target` with a copy of the dashboard's files in `source`,
    /// directories 0755 and files 0644, so nginx's workers can read them.
    static func installWebCopy(from source: String, to target: String) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: source + "/index.html") else {
            throw RenderError("CC_WEB_DIR \(source) holds no index.html (the dashboard's web/ folder)")
        }
        try? fm.removeItem(atPath: target)
        do {
            try fm.copyItem(atPath: source, toPath: target)
        } catch {
            throw RenderError("cannot copy the dashboard from \(source) to \(target): \(error)")
        }
        chmod(target, 0o755)
        for case let rel as String in fm.enumerator(atPath: target)?.allObjects ?? [] {
            var isDir: ObjCBool = false
            let p = target + "/" + rel
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else { continue }
            chmod(p, isDir.boolValue ? 0o755 : 0o644)
        }
    }

    /// 65,536 or this host's hard RLIMIT_NOFILE, whichever is lower.
    static func openFilesLimit() -> Int {
        var r = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r) == 0 else { return 65536 }
        return Int(min(r.rlim_max, 65536))
    }

    /// A Lua file nginx runs (`name`.lua), a resource of this module (Sources/ControlCenterCore/NginxConfig).
    static func luaSource(_ name: String) throws -> String {
        guard let url = Bundle.module.url(forResource: String(name.dropLast(4)), withExtension: "lua"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw RenderError("\(name) is missing from the control-center resources")
        }
        return text
    }
}
