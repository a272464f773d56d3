import Foundation

/// How a registered service is written in responses.
enum ServiceJSON {
    /// One element of `GET /api/services`: the fields the old dashboard reads
    /// (`name`, `description`, `status`, `pid`, `port`, `uptime_seconds`,
    /// `last_run_time`) plus `autostart` and `depends_on`. Until the
    /// supervisor runs services, every service is `stopped` with null
    /// pid, uptime and last run.
    static func summary(_ w: inout JSONWriter, _ s: StoredService) {
        let d = s.definition
        w.beginObject()
        w.field("name", d.name)
        w.field("description", d.description)
        w.field("status", "stopped")
        w.nullField("pid")
        w.field("port", d.port)
        w.nullField("uptime_seconds")
        w.nullField("last_run_time")
        w.field("autostart", d.autostart)
        w.beginArray("depends_on")
        for n in d.dependsOn { w.string(n) }
        w.endArray()
        w.endObject()
    }

    /// The whole definition (its stored JSON object) with `status`,
    /// `created_at` and `updated_at`; `environment` is left out unless the
    /// reader is an admin (it may hold secrets).
    static func full(_ w: inout JSONWriter, _ s: StoredService, environment: Bool) {
        var o = s.definition.jsonObject
        if !environment { o.removeValue(forKey: "environment") }
        o["status"] = "stopped"
        o["created_at"] = Clock.iso8601(Double(s.createdAt) / 1000)
        o["updated_at"] = Clock.iso8601(Double(s.updatedAt) / 1000)
        w.raw(try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]))
    }
}
