import Foundation

extension ServiceDefinition {
    /// Why a definition was refused: the field (dotted for nested ones,
    /// `health_check.url`) and the reason. The routes answer it with 400
    /// `validation_error`; `services import` prints it.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let field: String
        public let reason: String
        public var description: String { "\(field): \(reason)" }
    }

    static let nameMaxLength = 63

    /// True when `s` matches `^[a-z0-9][a-z0-9_-]{0,62}$`.
    public static func isValidName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard (1...nameMaxLength).contains(b.count) else { return false }
        func ok(_ c: UInt8, first: Bool) -> Bool {
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || (!first && (c == 0x5F || c == 0x2D))
        }
        return b.enumerated().allSatisfy { ok($0.element, first: $0.offset == 0) }
    }

    static let fields: Set<String> = [
        "name", "description", "command", "working_directory", "environment", "user", "group", "port", "autostart",
        "restart_policy", "backoff_initial_seconds", "backoff_max_seconds", "max_retries", "retry_cooldown_seconds",
        "depends_on", "start_timeout_seconds", "stop_timeout_seconds", "stop_signal", "health_check", "limits",
    ]

    /// Reads a definition from a JSON object, refusing unknown fields, wrong
    /// types, a shell string where an argv belongs, and out-of-range values.
    /// Absent and null fields take `Defaults`. `name` is the path's name on
    /// a PUT: the body may then omit `name` or repeat it, not change it.
    ///
    /// Pure: it does not look at the host. `checkHost` does that part.
    public static func parse(_ o: [String: Any], name pathName: String? = nil) throws(Invalid) -> ServiceDefinition {
        let f = Fields(o, prefix: "")
        try f.allowOnly(fields)
        let name: String
        if let given = try f.string("name", max: 200) {
            guard isValidName(given) else {
                throw Invalid(field: "name", reason: "must match ^[a-z0-9][a-z0-9_-]{0,62}$ (lower-case letters, digits, '_' and '-'; no '/' or '.')")
            }
            if let pathName, given != pathName { throw Invalid(field: "name", reason: "cannot be changed (the path names \(pathName))") }
            name = given
        } else if let pathName {
            name = pathName
        } else {
            throw Invalid(field: "name", reason: "is required")
        }
        let command = try required(f.argv("command"), "command", "is required")
        let workingDirectory = try f.string("working_directory", max: 4096)
        if let wd = workingDirectory, !wd.hasPrefix("/") {
            throw Invalid(field: "working_directory", reason: "must be an absolute path")
        }
        let environment = try f.environment("environment")
        let user = try f.accountName("user")
        let group = try f.accountName("group")
        let port = try f.int("port", 1...65535)
        let policy = try f.string("restart_policy", max: 32).map { raw throws(Invalid) in
            guard let p = RestartPolicy(rawValue: raw) else { throw Invalid(field: "restart_policy", reason: "must be no, on-failure or always") }
            return p
        } ?? Defaults.restartPolicy
        let backoffInitial = try f.seconds("backoff_initial_seconds", 0.1...3600) ?? Defaults.backoffInitialSeconds
        let backoffMax = try f.seconds("backoff_max_seconds", 0.1...86400) ?? max(Defaults.backoffMaxSeconds, backoffInitial)
        guard backoffMax >= backoffInitial else {
            throw Invalid(field: "backoff_max_seconds", reason: "must be at least backoff_initial_seconds")
        }
        let dependsOn = try f.names("depends_on")
        if dependsOn.contains(name) { throw Invalid(field: "depends_on", reason: "a service cannot depend on itself") }
        let signal = try f.string("stop_signal", max: 16).map { raw throws(Invalid) in
            let bare = raw.hasPrefix("SIG") ? String(raw.dropFirst(3)) : raw
            guard let s = StopSignal(rawValue: bare) else {
                throw Invalid(field: "stop_signal", reason: "must be one of \(StopSignal.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return s
        } ?? Defaults.stopSignal
        let limits = try f.object("limits").map { l throws(Invalid) in
            let lf = Fields(l, prefix: "limits.")
            try lf.allowOnly(["open_files", "memory_bytes"])
            return (try lf.int("open_files", 16...1_048_576), try lf.int("memory_bytes", 1_048_576...Int(Int64.max)).map(Int64.init))
        }
        return ServiceDefinition(
            name: name, description: try f.string("description", max: 500) ?? "", command: command,
            workingDirectory: workingDirectory, environment: environment, user: user, group: group, port: port,
            autostart: try f.bool("autostart") ?? false, restartPolicy: policy,
            backoffInitialSeconds: backoffInitial, backoffMaxSeconds: backoffMax,
            maxRetries: try f.int("max_retries", 0...1000) ?? Defaults.maxRetries,
            retryCooldownSeconds: try f.seconds("retry_cooldown_seconds", 1...86400) ?? Defaults.retryCooldownSeconds,
            dependsOn: dependsOn,
            startTimeoutSeconds: try f.seconds("start_timeout_seconds", 0...3600) ?? Defaults.startTimeoutSeconds,
            stopTimeoutSeconds: try f.seconds("stop_timeout_seconds", 0.1...3600) ?? Defaults.stopTimeoutSeconds,
            stopSignal: signal, healthCheck: try f.object("health_check").map(HealthCheck.parse),
            limitOpenFiles: limits?.0, limitMemoryBytes: limits?.1)
    }

    /// What only the host can tell: the working directory exists and is a
    /// directory, and the user and group exist. Run at write time (route and
    /// import), not when a stored definition is read back.
    public func checkHost() throws(Invalid) {
        if let wd = workingDirectory {
            var st = stat()
            guard stat(wd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw Invalid(field: "working_directory", reason: "\(wd) is not an existing directory")
            }
        }
        if let user, getpwnam(user) == nil { throw Invalid(field: "user", reason: "no local user \(user)") }
        if let group, getgrnam(group) == nil { throw Invalid(field: "group", reason: "no local group \(group)") }
    }

    /// Whether `user` names uid 0, by any name (root, toor): such a service
    /// runs as root, which only an admin may write and is audited as a warning.
    /// A definition without `user` runs as `CC_SERVICES_USER`, never uid 0 (`ServiceAccount` refuses it).
    public var runsAsRoot: Bool {
        guard let user, let pw = getpwnam(user) else { return false }
        return pw.pointee.pw_uid == 0
    }
}

extension ServiceDefinition.HealthCheck {
    static func parse(_ o: [String: Any]) throws(ServiceDefinition.Invalid) -> Self {
        typealias Invalid = ServiceDefinition.Invalid
        let f = Fields(o, prefix: "health_check.")
        let type = try required(f.string("type", max: 16), "health_check.type", "is required (http, tcp or exec)")
        let common: Set<String> = ["type", "interval_seconds", "timeout_seconds", "failure_threshold"]
        let kind: Kind
        switch type {
        case "http":
            try f.allowOnly(common.union(["url", "expected_status"]))
            let url = try required(f.string("url", max: 2048), "health_check.url", "is required")
            guard Self.isLoopbackHTTP(url) else {
                throw Invalid(field: "health_check.url", reason: "must be an http:// URL on loopback (127.0.0.0/8, [::1] or localhost)")
            }
            kind = .http(url: url, expectedStatus: try f.int("expected_status", 100...599) ?? ServiceDefinition.Defaults.probeExpectedStatus)
        case "tcp":
            try f.allowOnly(common.union(["port"]))
            kind = .tcp(port: try required(f.int("port", 1...65535), "health_check.port", "is required"))
        case "exec":
            try f.allowOnly(common.union(["command"]))
            kind = .exec(command: try required(f.argv("command"), "health_check.command", "is required"))
        default:
            throw Invalid(field: "health_check.type", reason: "must be http, tcp or exec")
        }
        let interval = try f.seconds("interval_seconds", 1...86400) ?? ServiceDefinition.Defaults.probeIntervalSeconds
        let timeout = try f.seconds("timeout_seconds", 0.1...300) ?? ServiceDefinition.Defaults.probeTimeoutSeconds
        guard timeout <= interval else { throw Invalid(field: "health_check.timeout_seconds", reason: "must not exceed interval_seconds") }
        return Self(kind: kind, intervalSeconds: interval, timeoutSeconds: timeout,
                    failureThreshold: try f.int("failure_threshold", 1...100) ?? ServiceDefinition.Defaults.probeFailureThreshold)
    }

    /// `http://` with a loopback host: 127.0.0.0/8, `[::1]` or `localhost`.
    /// Probes leave the host only if someone can edit definitions, and even
    /// then they do not: a probe is no way to reach other machines.
    static func isLoopbackHTTP(_ url: String) -> Bool {
        guard let c = URLComponents(string: url), c.scheme == "http", let host = c.host, c.user == nil, c.password == nil else {
            return false
        }
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.dropFirst().allSatisfy { p in
            UInt8(p).map { String($0) == p } ?? false
        }
    }
}

/// `v`, or the refusal saying a required field is missing.
func required<T>(_ v: T?, _ field: String, _ reason: String) throws(ServiceDefinition.Invalid) -> T {
    guard let v else { throw ServiceDefinition.Invalid(field: field, reason: reason) }
    return v
}

/// Strict typed reads from one JSON object, naming fields with `prefix`.
struct Fields {
    typealias Invalid = ServiceDefinition.Invalid
    let o: [String: Any]
    let prefix: String

    init(_ o: [String: Any], prefix: String) {
        self.o = o
        self.prefix = prefix
    }

    func bad(_ k: String, _ why: String) -> Invalid { Invalid(field: prefix + k, reason: why) }

    func value(_ k: String) -> Any? {
        guard let v = o[k], !(v is NSNull) else { return nil }
        return v
    }

    func allowOnly(_ names: Set<String>) throws(Invalid) {
        for k in o.keys.sorted() where !names.contains(k) { throw bad(k, "is not a known field") }
    }

    func string(_ k: String, max: Int) throws(Invalid) -> String? {
        guard let v = value(k) else { return nil }
        guard let s = v as? String else { throw bad(k, "must be a string") }
        try checkText(k, s, max: max)
        return s
    }

    func checkText(_ k: String, _ s: String, max: Int) throws(Invalid) {
        guard s.count <= max else { throw bad(k, "must be at most \(max) characters") }
        guard !s.unicodeScalars.contains(where: { $0.value == 0 }) else { throw bad(k, "must not contain NUL") }
    }

    func bool(_ k: String) throws(Invalid) -> Bool? {
        guard let v = value(k) else { return nil }
        guard let n = v as? NSNumber, JSONInput.isBool(n) else { throw bad(k, "must be true or false") }
        return n.boolValue
    }

    func number(_ k: String) throws(Invalid) -> Double? {
        guard let v = value(k) else { return nil }
        guard let n = v as? NSNumber, !JSONInput.isBool(n), n.doubleValue.isFinite else { throw bad(k, "must be a number") }
        return n.doubleValue
    }

    func int(_ k: String, _ range: ClosedRange<Int>) throws(Invalid) -> Int? {
        guard let d = try number(k) else { return nil }
        guard d == d.rounded(), let i = Int(exactly: d), range.contains(i) else {
            throw bad(k, "must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    func seconds(_ k: String, _ range: ClosedRange<Double>) throws(Invalid) -> Double? {
        guard let d = try number(k) else { return nil }
        guard range.contains(d) else { throw bad(k, "must be between \(range.lowerBound) and \(range.upperBound) seconds") }
        return d
    }

    func object(_ k: String) throws(Invalid) -> [String: Any]? {
        guard let v = value(k) else { return nil }
        guard let obj = v as? [String: Any] else { throw bad(k, "must be an object") }
        return obj
    }

    /// A non-empty array of strings; a single string is refused by name,
    /// since splitting it is what a shell would do.
    func argv(_ k: String) throws(Invalid) -> [String]? {
        guard let v = value(k) else { return nil }
        if v is String {
            throw bad(k, "must be an argv array of strings such as [\"/usr/bin/python3\", \"-m\", \"http.server\"], not a shell string")
        }
        guard let a = v as? [Any], let strings = a as? [String], a.count == strings.count else {
            throw bad(k, "must be an array of strings")
        }
        guard (1...256).contains(strings.count) else { throw bad(k, "must have 1 to 256 elements") }
        guard !strings[0].isEmpty else { throw bad(k, "the program (element 0) must not be empty") }
        for s in strings { try checkText(k, s, max: 4096) }
        return strings
    }

    /// Names must be valid variable names (`[A-Za-z_][A-Za-z0-9_]*`), values strings.
    func environment(_ k: String) throws(Invalid) -> [String: String] {
        guard let obj = try object(k) else { return [:] }
        guard obj.count <= 200 else { throw bad(k, "must have at most 200 variables") }
        var env: [String: String] = [:]
        for (name, v) in obj {
            let b = Array(name.utf8)
            let valid = !b.isEmpty && b.count <= 128 && b.enumerated().allSatisfy { i, c in
                c == 0x5F || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (i > 0 && c >= 0x30 && c <= 0x39)
            }
            guard valid else { throw bad(k, "\(name.debugDescription) is not a variable name ([A-Za-z_][A-Za-z0-9_]*)") }
            guard let s = v as? String else { throw bad("\(k).\(name)", "must be a string") }
            try checkText("\(k).\(name)", s, max: 32768)
            env[name] = s
        }
        return env
    }

    /// A POSIX portable account name (`[a-z_][a-z0-9_-]{0,31}`).
    func accountName(_ k: String) throws(Invalid) -> String? {
        guard let s = try string(k, max: 64) else { return nil }
        let b = Array(s.utf8)
        let valid = (1...32).contains(b.count) && b.enumerated().allSatisfy { i, c in
            c == 0x5F || (c >= 0x61 && c <= 0x7A) || (i > 0 && (c == 0x2D || (c >= 0x30 && c <= 0x39)))
        }
        guard valid else { throw bad(k, "must be a local account name ([a-z_][a-z0-9_-]{0,31})") }
        return s
    }

    /// Distinct valid service names.
    func names(_ k: String) throws(Invalid) -> [String] {
        guard let v = value(k) else { return [] }
        guard let a = v as? [Any], let names = a as? [String], a.count == names.count else {
            throw bad(k, "must be an array of service names")
        }
        guard names.count <= 64 else { throw bad(k, "must name at most 64 services") }
        for n in names where !ServiceDefinition.isValidName(n) { throw bad(k, "\(n.debugDescription) is not a service name") }
        guard Set(names).count == names.count else { throw bad(k, "must not repeat a name") }
        return names
    }
}
