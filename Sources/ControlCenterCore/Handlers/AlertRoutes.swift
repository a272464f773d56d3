import Foundation

/// Alert rules, alerts and silences (issue 11 §2), on the storage pool.
/// Rules and silences: read by viewers, changed by operators; target URLs
/// and headers are shown to admins only. Active and past alerts are
/// readable like the system routes (public unless CC_PUBLIC_READ=false).
/// Every change commits with its audit event (user and role).
enum AlertRoutes {
    static func register(_ r: inout Router) {
        r.get("/api/alerts/rules", listRules)
        r.post("/api/alerts/rules", createRule)
        r.get("/api/alerts/rules/{id}", getRule)
        r.put("/api/alerts/rules/{id}", updateRule)
        r.delete("/api/alerts/rules/{id}", deleteRule)
        r.get("/api/alerts/active", active)
        r.get("/api/alerts/history", history)
        r.post("/api/alerts/{id}/ack", ack)
        r.get("/api/alerts/silences", listSilences)
        r.post("/api/alerts/silences", createSilence)
        r.delete("/api/alerts/silences/{id}", deleteSilence)
    }

    static func id(_ req: Request) throws -> Int64 {
        guard let v = Int64(req.parameter("id")), v > 0 else {
            throw APIError.badRequest("id must be a positive whole number", code: "invalid_id")
        }
        return v
    }

    static func invalid(_ e: AlertRule.Invalid) -> APIError { APIError.badRequest(e.description, code: "validation_error") }

    static func audit(_ db: Database, _ p: Principal, _ action: String, target: String, message: String,
                      extra: (inout JSONWriter) -> Void = { _ in }) throws {
        var w = JSONWriter()
        w.beginObject()
        w.field("role", p.user.role.rawValue)
        extra(&w)
        w.endObject()
        try Audit.record(db, actor: p.user.username, action: action, target: target, message: message,
                         data: String(decoding: w.bytes, as: UTF8.self))
    }

    // MARK: rules

    /// The body's rule, its new targets checked against CC_ALERT_TARGET_ALLOW
    /// (a DNS lookup: done before any transaction opens).
    static func rule(_ body: JSONInput, _ ctx: WorkerContext) throws -> AlertRule {
        do {
            return try AlertRule.parse(body.object, allow: ctx.config.alertTargetAllow)
        } catch let e as AlertRule.Invalid {
            throw invalid(e)
        }
    }

    static func ruleResponse(_ rule: AlertRule, status: Int = 200, secrets: Bool) -> Response {
        .json(status) { rule.write(&$0, secrets: secrets) }
    }

    static func nameTaken(_ name: String) -> APIError { APIError(409, "rule_exists", "A rule named \(name) already exists") }

    static func listRules(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.viewer, req, ctx)
        let rules = try Store.read(ctx) { try AlertRepository($0).rules() }
        return .json { w in
            w.beginObject()
            w.beginArray("rules")
            for r in rules { r.write(&w, secrets: p.user.role == .admin) }
            w.endArray()
            w.field("count", rules.count)
            w.endObject()
        }
    }

    static func getRule(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.viewer, req, ctx)
        let n = try id(req)
        guard let r = try Store.read(ctx, { try AlertRepository($0).rule(id: n) }) else { throw APIError.notFound("No alert rule \(n)") }
        return ruleResponse(r, secrets: p.user.role == .admin)
    }

    static func createRule(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        let r = try rule(try JSONInput(req), ctx)
        do {
            let stored = try Store.write(ctx) { db -> AlertRule in
                let repo = AlertRepository(db)
                let n = try repo.insert(r)
                try audit(db, p, "alert_rule.create", target: r.name, message: "created alert rule") { $0.field("rule_id", Int(n)) }
                return try repo.rule(id: n)!
            }
            return ruleResponse(stored, status: 201, secrets: p.user.role == .admin)
        } catch DatabaseError.uniqueViolation {
            throw nameTaken(r.name)
        }
    }

    /// A full replacement, except that absent `targets` keeps the stored ones.
    static func updateRule(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        let n = try id(req)
        let body = try JSONInput(req)
        var r = try rule(body, ctx)
        let keepsTargets = body.object["targets"] == nil
        do {
            let stored = try Store.write(ctx) { db -> AlertRule in
                let repo = AlertRepository(db)
                guard let old = try repo.rule(id: n) else { throw APIError.notFound("No alert rule \(n)") }
                if keepsTargets { r.targets = old.targets }
                _ = try repo.update(id: n, r)
                try audit(db, p, "alert_rule.update", target: r.name, message: "changed alert rule") { $0.field("rule_id", Int(n)) }
                return try repo.rule(id: n)!
            }
            return ruleResponse(stored, secrets: p.user.role == .admin)
        } catch DatabaseError.uniqueViolation {
            throw nameTaken(r.name)
        }
    }

    /// Its open alerts end at the collector's next sample (resolved, or
    /// inactive if they never fired), each with its event.
    static func deleteRule(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        let n = try id(req)
        try Store.write(ctx) { db in
            let repo = AlertRepository(db)
            guard let old = try repo.rule(id: n), try repo.deleteRule(id: n) else { throw APIError.notFound("No alert rule \(n)") }
            try audit(db, p, "alert_rule.delete", target: old.name, message: "deleted alert rule") { $0.field("rule_id", Int(n)) }
        }
        return .json { w in
            w.beginObject()
            w.field("success", true)
            w.field("deleted", Int(n))
            w.endObject()
        }
    }

    // MARK: alerts

    static func alertList(_ alerts: [AlertRecord], extra: (inout JSONWriter) -> Void = { _ in }) -> Response {
        .json { w in
            w.beginObject()
            w.beginArray("alerts")
            for a in alerts { a.write(&w) }
            w.endArray()
            w.field("count", alerts.count)
            extra(&w)
            w.endObject()
        }
    }

    static func active(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        _ = try ReadAccess.of(req, ctx)
        return alertList(try Store.read(ctx) { try AlertRepository($0).open() })
    }

    static let maxHistoryPage = 500

    /// Resolved alerts, newest first, `limit` (default 100) per page;
    /// `before` is the previous page's `next_before`.
    static func history(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        _ = try ReadAccess.of(req, ctx)
        let limit = try UserRoutes.intParam(req, "limit", default: 100, range: 1...maxHistoryPage)
        var before: Int64?
        if let raw = req.query["before"] {
            guard let v = Int64(raw), v > 0 else { throw APIError.badRequest("before must be a positive whole number") }
            before = v
        }
        let alerts = try Store.read(ctx) { try AlertRepository($0).resolved(limit: limit, before: before) }
        return alertList(alerts) { w in
            w.field("next_before", alerts.count == limit ? alerts.last.map { Int($0.id) } : nil)
        }
    }

    static func ack(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        let n = try id(req)
        let a = try Store.write(ctx) { db -> AlertRecord in
            let repo = AlertRepository(db)
            guard let a = try repo.alert(id: n) else { throw APIError.notFound("No alert \(n)") }
            guard try repo.ack(id: n, by: p.user.username) else {
                throw APIError(409, "alert_not_open", "Alert \(n) is \(a.state.rawValue); only pending or firing alerts are acknowledged")
            }
            try audit(db, p, "alert.ack", target: a.ruleName, message: "acknowledged alert") { $0.field("alert_id", Int(n)) }
            return try repo.alert(id: n)!
        }
        return .json { a.write(&$0) }
    }

    // MARK: silences

    static let silenceFields: Set<String> = ["matcher", "starts_at", "ends_at", "comment"]
    static let matcherFields: Set<String> = ["rule_name", "metric", "label", "severity"]

    /// `{matcher: {rule_name?, metric?, label?, severity?}, starts_at?, ends_at, comment?}`:
    /// at least one matcher field; `ends_at` after now and after `starts_at` (default now).
    static func silence(_ req: Request, by user: String, now: Int64) throws -> AlertSilence {
        let body = try JSONInput(req)
        for k in body.object.keys.sorted() where !silenceFields.contains(k) {
            throw APIError.badRequest("\(k): is not a silence field", code: "validation_error")
        }
        guard let m = body.object["matcher"] as? [String: Any] else {
            throw APIError.badRequest("matcher: must be an object", code: "validation_error")
        }
        var matcher: [String: String] = [:]
        for (k, v) in m {
            guard matcherFields.contains(k) else { throw APIError.badRequest("matcher.\(k): is not a matcher field", code: "validation_error") }
            guard let s = v as? String, !s.isEmpty, s.count <= 256 else {
                throw APIError.badRequest("matcher.\(k): must be a string of 1 to 256 characters", code: "validation_error")
            }
            matcher[k] = s
        }
        guard !matcher.isEmpty else {
            throw APIError.badRequest("matcher: needs at least one of rule_name, metric, label, severity", code: "validation_error")
        }
        var severity: AlertRule.Severity?
        if let s = matcher["severity"] {
            guard let v = AlertRule.Severity(rawValue: s) else {
                throw APIError.badRequest("matcher.severity: must be warning or critical", code: "validation_error")
            }
            severity = v
        }
        func time(_ k: String) throws -> Int64? {
            guard let v = body.object[k], !(v is NSNull) else { return nil }
            guard let s = v as? String else { throw APIError.badRequest("\(k): must be an RFC 3339 time", code: "validation_error") }
            return try EventRoutes.timestamp(k, s)
        }
        guard let ends = try time("ends_at") else { throw APIError.badRequest("ends_at: is required", code: "validation_error") }
        let starts = try time("starts_at") ?? now
        guard ends > starts, ends > now else {
            throw APIError.badRequest("ends_at: must be after starts_at and in the future", code: "validation_error")
        }
        let comment = try body.string("comment", maxLength: 1000)
        return AlertSilence(ruleName: matcher["rule_name"], metric: matcher["metric"], label: matcher["label"], severity: severity,
                            startsAt: starts, endsAt: ends, createdBy: user, comment: comment)
    }

    static func listSilences(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.viewer, req, ctx)
        let list = try Store.read(ctx) { try AlertRepository($0).silences(now: Clock.wallMillis()) }
        return .json { w in
            w.beginObject()
            w.beginArray("silences")
            for s in list { s.write(&w) }
            w.endArray()
            w.field("count", list.count)
            w.endObject()
        }
    }

    static func createSilence(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        var s = try silence(req, by: p.user.username, now: Clock.wallMillis())
        s.id = try Store.write(ctx) { db in
            let n = try AlertRepository(db).insert(s)
            try audit(db, p, "alert_silence.create", target: "silence \(n)", message: "silenced alerts") { w in
                w.field("silence_id", Int(n))
                w.field("ends_at", Clock.iso8601(Double(s.endsAt) / 1000))
            }
            return n
        }
        return .json(201) { s.write(&$0) }
    }

    static func deleteSilence(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        let n = try id(req)
        try Store.write(ctx) { db in
            guard try AlertRepository(db).deleteSilence(id: n) else { throw APIError.notFound("No silence \(n)") }
            try audit(db, p, "alert_silence.delete", target: "silence \(n)", message: "removed silence")
        }
        return .json { w in
            w.beginObject()
            w.field("success", true)
            w.field("deleted", Int(n))
            w.endObject()
        }
    }
}
