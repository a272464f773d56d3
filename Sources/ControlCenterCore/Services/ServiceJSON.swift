import Foundation

/// How a registered service is written in responses.
enum ServiceJSON {
    /// One element of `GET /api/services`: the fields the old dashboard reads
    /// (`name`, `description`, `status`, `pid`, `port`, `uptime_seconds`,
    /// `last_run_time`: when the current run started, else when the last one ended) plus
    /// `autostart` and `depends_on`, with the supervisor's last record
    /// (`stopped` when it has none).
    static func summary(_ w: inout JSONWriter, _ s: ServiceSummary, now: Int64) {
        w.beginObject()
        w.field("name", s.name)
        w.field("description", s.description)
        w.field("status", s.status.rawValue)
        w.field("pid", s.pid.map { Int($0) })
        w.field("port", s.port)
        w.field("uptime_seconds", s.pid == nil ? nil : s.startedAt.map { Double(max(0, now - $0)) / 1000 })
        w.field("last_run_time", (s.startedAt ?? s.lastExitAt).map { Clock.iso8601(Double($0) / 1000) })
        w.field("autostart", s.autostart)
        w.beginArray("depends_on")
        for n in s.dependsOn { w.string(n) }
        w.endArray()
        w.endObject()
    }

    /// Seconds since the current run started, while it has a process.
    static func uptime(_ state: ServiceStateRow?, now: Int64) -> Double? {
        guard let state, state.pid != nil, let started = state.startedAt else { return nil }
        return Double(max(0, now - started)) / 1000
    }

    /// The whole definition (its stored JSON object) with `status`,
    /// `created_at` and `updated_at`; `environment` is left out unless the
    /// reader is an admin (it may hold secrets).
    static func full(_ w: inout JSONWriter, _ s: StoredService, _ state: ServiceStateRow?, environment: Bool) {
        var o = s.definition.jsonObject
        if !environment { o.removeValue(forKey: "environment") }
        o["status"] = state?.status.rawValue ?? ServicePolicy.Status.stopped.rawValue
        o["created_at"] = Clock.iso8601(Double(s.createdAt) / 1000)
        o["updated_at"] = Clock.iso8601(Double(s.updatedAt) / 1000)
        w.raw(try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]))
    }
}
