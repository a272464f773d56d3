import Foundation

/// The event log: operational events in, filtered pages out.
///
/// `POST /api/events` is itself the audit record of the call (actor = the
/// token's user), so it writes one row, not two.
enum EventRoutes {
    static func register(_ r: inout Router) {
        r.post("/api/events", create)
        r.get("/api/events", list)
    }

    static let maxData = 64 * 1024

    static func create(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.operator, req, ctx)
        let body = try JSONInput(req)
        let levelName = try body.string("level", maxLength: 16) ?? "info"
        guard let level = EventLevel(rawValue: levelName) else {
            throw JSONInput.invalid("level", "must be debug, info, warning, error or critical")
        }
        let source = try body.string("source", maxLength: 64, minLength: 1) ?? "api"
        guard !isReserved(source) else {
            throw JSONInput.invalid("source", "'\(Audit.source)' and '\(AlertEngine.eventSource)' are reserved for the server's own records")
        }
        let message = try body.requiredString("message", maxLength: 4096)
        let action = try body.string("action", maxLength: 128)
        let target = try body.string("target", maxLength: 256)
        var data: String?
        if let v = body.object["data"], !(v is NSNull) {
            guard v is [String: Any] || v is [Any] else { throw JSONInput.invalid("data", "must be a JSON object or array") }
            guard let bytes = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes]) else {
                throw JSONInput.invalid("data", "is not serialisable JSON")
            }
            guard bytes.count <= maxData else {
                throw APIError(413, "payload_too_large", "data: must be at most \(maxData) bytes as JSON")
            }
            data = String(decoding: bytes, as: UTF8.self)
        }
        var event = Event(level: level, source: source, actor: p.user.username, action: action, target: target,
                          message: message, data: data)
        // The event is its own audit record: one INSERT, atomic on its own.
        event.id = try Store.writeStatement(ctx) { try EventRepository($0).insert(event) }
        return .json(201) { event.write(&$0) }
    }

    /// True for `audit` and `alerts` however they are spelled: any case or
    /// width, with white space or invisible characters around or inside.
    static func isReserved(_ source: String) -> Bool {
        let visible = Username.fold(source).unicodeScalars.filter {
            !$0.properties.isWhitespace && !$0.properties.isDefaultIgnorableCodePoint
                && $0.properties.generalCategory != .format && $0.properties.generalCategory != .control
        }
        return [Audit.source, AlertEngine.eventSource].contains(String(String.UnicodeScalarView(visible)))
    }

    static func list(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.viewer, req, ctx)
        var f = EventFilter()
        if let l = req.query["level"] {
            guard let level = EventLevel(rawValue: l) else {
                throw APIError.badRequest("level must be debug, info, warning, error or critical")
            }
            f.level = level
        }
        if let s = req.query["source"] {
            guard !s.isEmpty, s.count <= 64 else { throw APIError.badRequest("source must be 1 to 64 characters") }
            f.source = s
        }
        if let s = req.query["since"] { f.since = try timestamp("since", s) }
        if let s = req.query["until"] { f.until = try timestamp("until", s) }
        if let q = req.query["q"], !q.isEmpty {
            guard q.count <= 256 else { throw APIError.badRequest("q must be at most 256 characters") }
            f.text = q
        }
        if let c = req.query["cursor"], !c.isEmpty { f.cursor = try cursor(c) }
        if let raw = req.query["limit"] {
            guard let n = Int(raw), n >= 1 else { throw APIError.badRequest("limit must be a whole number >= 1") }
            f.limit = min(n, 1000)
        }
        let events = try Store.read(ctx) { try EventRepository($0).list(f) }
        return .json { w in
            w.beginObject()
            w.beginArray("events")
            for e in events { e.write(&w) }
            w.endArray()
            w.field("count", events.count)
            w.field("limit", f.limit)
            if events.count == f.limit, let last = events.last {
                w.field("next_cursor", "\(last.ts)_\(last.id)")
            } else {
                w.nullField("next_cursor")
            }
            w.endObject()
        }
    }

    /// Unix seconds (fractions allowed) or RFC 3339; stored as milliseconds.
    static func timestamp(_ name: String, _ s: String) throws -> Int64 {
        if let secs = Double(s), secs.isFinite, abs(secs) < 1e11 { return Int64((secs * 1000).rounded()) }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        throw APIError.badRequest("\(name) must be Unix seconds or an RFC 3339 time")
    }

    static func cursor(_ s: String) throws -> (ts: Int64, id: Int64) {
        let parts = s.split(separator: "_")
        guard parts.count == 2, let ts = Int64(parts[0]), let id = Int64(parts[1]) else {
            throw APIError.badRequest("cursor is malformed; pass next_cursor from the previous page", code: "invalid_cursor")
        }
        return (ts, id)
    }
}
