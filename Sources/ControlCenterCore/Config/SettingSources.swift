import Foundation

/// Where a setting's value came from, as Config.load resolves it:
/// environment over CC_CONFIG_FILE over the default.
public enum SettingSource: String, Sendable {
    case environment, file, `default`
}

extension Config {
    /// Every setting of Config.settings with its value and source, secrets
    /// masked (CC_JWT_SECRET, a password in CC_DATABASE_URL): what
    /// `check-config` prints. A default is shown as `loaded` resolved it where
    /// it depends on other settings or the host (paths under CC_STATE_DIR, the
    /// nginx user, the allowed hosts), else as Config.settings states it.
    /// Throws like Config.load when CC_CONFIG_FILE cannot be read or parsed.
    public static func settingSources(environment env: [String: String] = ProcessInfo.processInfo.environment,
                                      loaded: Config? = nil)
        throws -> [(name: String, value: String, source: SettingSource)] {
        var file: [String: String] = [:]
        if let path = env["CC_CONFIG_FILE"], !path.isEmpty {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigError("cannot read CC_CONFIG_FILE \(path)")
            }
            file = try parseFile(text)
        }
        return settings.map { s in
            // An empty value counts as unset, as the Parser reads it, except
            // for the lists where empty means none.
            func given(_ v: String?) -> String? {
                guard let v else { return nil }
                let empty = v.trimmingCharacters(in: .whitespaces).isEmpty
                return empty && !NginxSettings.emptyIsAValue.contains(s.name) ? nil : v
            }
            if let v = given(env[s.name]) { return (s.name, v.isEmpty ? "(empty)" : masked(s.name, v), .environment) }
            if let v = given(file[s.name]) { return (s.name, v.isEmpty ? "(empty)" : masked(s.name, v), .file) }
            return (s.name, loaded?.resolvedDefault(s.name) ?? s.defaultValue, .default)
        }
    }

    /// The value a default took, for the defaults that are not constants.
    func resolvedDefault(_ name: String) -> String? {
        switch name {
        case "CC_STATE_DIR": return stateDir
        case "CC_LISTEN": return listen.description
        case "CC_STORAGE_LISTEN": return storageListen.description
        case "CC_MAX_REQUESTS_JITTER": return String(maxRequestsJitter)
        case "CC_PID_FILE": return pidFile
        case "CC_DATABASE_URL": return Self.masked(name, databaseURL)
        case "CC_NGINX_USER": return nginx.user ?? "(none: nginx's workers run as the user that starts nginx)"
        case "CC_ALLOWED_HOSTS": return nginx.allowedHosts.joined(separator: ",")
        case "CC_WEB_DIR": return nginx.webDir
        default: return nil
        }
    }

    /// The value with its secret part replaced by `***`.
    public static func masked(_ name: String, _ value: String) -> String {
        switch name {
        case "CC_JWT_SECRET":
            return "*** (\(value.utf8.count) bytes)"
        case "CC_DATABASE_URL":
            // scheme://user:password@host/...: the password goes; and any
            // password=... query parameter (libpq's URI form).
            var v = value
            if let scheme = v.range(of: "://"), let at = v[scheme.upperBound...].firstIndex(of: "@"),
               let colon = v[scheme.upperBound..<at].firstIndex(of: ":") {
                v.replaceSubrange(v.index(after: colon)..<at, with: "***")
            }
            return v.replacingOccurrences(of: #"(?i)(password=)[^&]*"#, with: "$1***", options: .regularExpression)
        default:
            return value
        }
    }
}
