import Foundation
import Glibc

/// Every file nginx needs for one set of settings, rendered as text: the one
/// source of Control Center's nginx configuration (no templates, no sed).
/// Pure: what exists on the machine (nginx's modules) comes in as values, and
/// NginxConfigWriter puts the files on disk.
///
/// Files (all in `directory`, which nginx's `-p` prefix also is):
/// - `control-center-http.conf`: the `http {}` include (upstreams, limit zones, Host map).
/// - `control-center.conf`: the snippet for an operator's existing `server {}`.
/// - `control-center-headers.conf`: the security headers every answer carries.
/// - `control-center-ui-headers.conf`: those of the dashboard's files (its CSP, `no-cache`).
/// - `nginx.conf`: the standalone config of Scripts/run and the tests.
/// - with the views: `control-center-views-http.conf`, `control-center-views.conf`,
///   `control-center-view.inc`, `control-center-views-ms.map`.
/// - the live channels: `control-center-live-http.conf`, `control-center-live.conf`
///   (and `cc_live_resume.lua`, copied by the writer).
/// - with `bench`: `control-center-bench.conf` (the `/__bench` locations).
public struct NginxRender: Sendable {
    public let config: Config
    /// Where the files go; absolute.
    public let directory: String
    /// Adds the `/__bench` reference locations (Scripts/bench only).
    public let bench: Bool
    /// worker_rlimit_nofile: nginx's workers set it after dropping root, so
    /// it must not exceed the hard limit (20,000 on some hosts).
    public let openFilesLimit: Int

    /// Debian's dynamic modules; `load_module` needs absolute paths.
    public static let modulesDirectory = "/usr/lib/nginx/modules"
    public static let nchanModule = "ngx_nchan_module.so"
    /// The live channels check resume ids in Lua (cc_live_resume.lua).
    public static let liveModules = [nchanModule, "ndk_http_module.so", "ngx_http_lua_module.so"]
    public static let liveLuaFileName = "cc_live_resume.lua"

    /// nginx's nchan and Lua modules are on this host: the live channels,
    /// always rendered, need them (NginxConfigWriter refuses to write without).
    public static var liveModulesInstalled: Bool {
        liveModules.allSatisfy { access("\(modulesDirectory)/\($0)", R_OK) == 0 }
    }

    /// What `control-center nginx-config` says when a live module is missing.
    public static let liveModulesMissing = "nginx's nchan or Lua module (\(liveModules.joined(separator: ", ")) in "
        + "\(modulesDirectory)) is missing: the live channels (/ws, /api/stream/*) need them; "
        + "install the Debian packages libnginx-mod-nchan and libnginx-mod-http-lua"

    public init(config: Config, directory: String, bench: Bool = false,
                openFilesLimit: Int = 65536) {
        self.openFilesLimit = openFilesLimit
        self.config = config
        self.directory = directory
        self.bench = bench
    }

    /// nginx sends the default views itself: asked for, and public reads
    /// (nginx checks no token).
    public var viewsEnabled: Bool { config.writesViews }

    /// (file name, contents) of every rendered file.
    /// Throws RenderError when a path would not be a single nginx token.
    public func files() throws -> [(name: String, contents: String)] {
        for path in [directory, config.stateDir, config.nginx.webDir] + config.accessLogPaths {
            guard Self.isSafeToken(path) else {
                throw RenderError("\(path): nginx paths may hold only letters, digits and / . _ - + @ , : ~")
            }
        }
        var out: [(String, String)] = [
            ("control-center-http.conf", httpInclude),
            ("control-center.conf", serverSnippet),
            ("control-center-headers.conf", SecurityHeaders.conf),
            ("control-center-ui-headers.conf", SecurityHeaders.pageConf),
            ("nginx.conf", standalone),
            ("control-center-live-http.conf", liveHTTP),
            ("control-center-live.conf", liveServer),
        ]
        if viewsEnabled {
            out += [("control-center-views-http.conf", viewsHTTP), ("control-center-views.conf", viewsServer),
                    ("control-center-view.inc", viewInclude), ("control-center-views-ms.map", Self.millisecondMap)]
        }
        if bench { out.append(("control-center-bench.conf", benchLocations)) }
        return out
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    static func isSafeToken(_ s: String) -> Bool {
        !s.isEmpty && s.range(of: #"^[A-Za-z0-9/._+@,:~-]+$"#, options: .regularExpression) != nil
    }

    /// Seconds as whole milliseconds.
    static func millis(_ seconds: Double) -> Int { Int((seconds * 1000).rounded()) }

    /// Seconds in nginx's time syntax: whole seconds as `10s`, else milliseconds.
    static func duration(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(millis(seconds))ms"
    }
}

public struct RenderError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

extension Config {
    /// Files nginx itself writes log lines to (the view access log).
    var accessLogPaths: [String] {
        guard let a = accessLog, a != "off" else { return [] }
        return [a]
    }
}
