/// The log line for one reaped pid, kept apart from `waitpid` so what the
/// operator reads about each exit is unit-tested.
public enum ReapLog {
    public struct Entry: Sendable, Equatable {
        public var level: LogLevel
        public var message: String
        public var fields: [String: String]
    }

    /// - Parameters:
    ///   - group: the name of the child's group; nil for an unknown pid.
    ///   - last: the child's last status record, if it wrote one (the request
    ///     it was serving when it died).
    public static func entry(pid: Int32, status: ExitStatus, reaped: MasterState.Reaped, group: String?,
                             last: WorkerStatusRecord?) -> Entry {
        guard case .child(let child, let how) = reaped else {
            return Entry(level: .warning, message: "unknown child reaped",
                         fields: ["pid": String(pid), "status": status.description])
        }
        var fields = ["pool": group ?? "?", "slot": String(child.slot), "worker_pid": String(pid),
                      "status": status.description, "served": String(last?.served ?? 0)]
        if let last, last.busy { fields["in_flight"] = "\(last.method) \(last.path)" }
        switch how {
        case .timedOut: return Entry(level: .error, message: "worker killed after request timeout", fields: fields)
        case .expected: return Entry(level: .info, message: "worker exited", fields: fields)
        case .died: return Entry(level: .error, message: "worker died", fields: fields)
        }
    }
}
