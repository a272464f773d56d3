public enum EventLevel: String, Sendable, CaseIterable {
    case debug, info, warning, error, critical
}

public struct Event: Sendable, Equatable {
    public var id: Int64 = 0
    public var ts: Int64
    public var level: EventLevel
    public var source: String
    public var actor: String?
    public var action: String?
    public var target: String?
    public var message: String
    /// Serialised JSON (validated before insert), spliced into responses as is.
    public var data: String?

    public init(ts: Int64 = Clock.wallMillis(), level: EventLevel, source: String, actor: String?, action: String?,
                target: String?, message: String, data: String? = nil) {
        self.ts = ts
        self.level = level
        self.source = source
        self.actor = actor
        self.action = action
        self.target = target
        self.message = message
        self.data = data
    }

    public func write(_ w: inout JSONWriter) {
        w.beginObject()
        w.field("id", Int(id))
        w.field("timestamp", timestamp: Double(ts) / 1000)
        w.field("level", level.rawValue)
        w.field("source", source)
        w.field("actor", actor)
        w.field("action", action)
        w.field("target", target)
        w.field("message", message)
        w.key("data")
        if let data { w.raw(data.utf8) } else { w.null() }
        w.endObject()
    }
}

/// Filters for the event list. `cursor` is the (ts, id) of the last event
/// of the previous page: pages are keyset-based, so inserts while paging
/// neither repeat nor skip rows, and page N costs the same as page 1.
public struct EventFilter: Sendable, Equatable {
    public var level: EventLevel?
    public var source: String?
    public var since: Int64?
    public var until: Int64?
    public var text: String?
    public var cursor: (ts: Int64, id: Int64)?
    public var limit: Int = 100

    public init() {}

    public static func == (a: EventFilter, b: EventFilter) -> Bool {
        a.level == b.level && a.source == b.source && a.since == b.since && a.until == b.until && a.text == b.text
            && a.cursor?.ts == b.cursor?.ts && a.cursor?.id == b.cursor?.id && a.limit == b.limit
    }
}

public struct EventRepository {
    let db: Database

    public init(_ db: Database) { self.db = db }

    @discardableResult
    public func insert(_ e: Event) throws -> Int64 {
        let rows = try db.query("""
            INSERT INTO events (ts, level, source, actor, action, target, message, data)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """, [.int(e.ts), .text(e.level.rawValue), .text(e.source), DBValue(e.actor), DBValue(e.action),
                  DBValue(e.target), .text(e.message), DBValue(e.data)])
        guard let id = rows.first?.int64(0) else { throw DatabaseError.failed("INSERT returned no id") }
        return id
    }

    /// Rows with an id above `id`, oldest first, at most `limit`: what the
    /// collector publishes on the events channel.
    public func after(id: Int64, limit: Int) throws -> [Event] {
        try db.query("SELECT id, ts, level, source, actor, action, target, message, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                     [.int(id), .int(Int64(limit))]).map(Self.decode)
    }

    /// The highest id, 0 for an empty table.
    public func lastID() throws -> Int64 {
        try db.query("SELECT COALESCE(MAX(id), 0) FROM events", []).first?.int64(0) ?? 0
    }

    /// How `list` answers a text filter. `.scan` is the pre-index query
    /// (kept for short text and PostgreSQL without pg_trgm); `.index` skips
    /// SQLite's probe. Tests and the search micro-benchmark force them to
    /// compare; requests always use `.automatic`.
    enum TextStrategy { case automatic, scan, index }
    var textStrategy = TextStrategy.automatic

    /// Newest first. The SQL is assembled from fixed fragments only (one
    /// cached statement per combination of filters); values are bound.
    public func list(_ f: EventFilter) throws -> [Event] {
        guard textStrategy != .scan, let text = f.text, EventTextSearch.indexable(text) else {
            return try select(f, text: .like)
        }
        return try EventTextSearch(repo: self).list(f, probe: textStrategy == .automatic)
    }

    /// How the text filter is matched. Both give LIKE's answer: `.trigram`
    /// reads through the index, and on SQLite rechecks its candidates with
    /// the same LIKE; on PostgreSQL its one LIKE over the joined columns is
    /// equivalent to the three.
    enum TextMatch { case like, trigram }

    /// One page of `f`. `atOrAfter` limits it to rows no older than a
    /// (ts, id) (the probe window of `EventTextSearch`).
    func select(_ f: EventFilter, text match: TextMatch, atOrAfter: (ts: Int64, id: Int64)? = nil) throws -> [Event] {
        let (sql, params) = statement(f, text: match, atOrAfter: atOrAfter)
        // Planned per call: the index is only worth it for a pattern the
        // planner can see (a generic plan would price any pattern alike).
        let rows = match == .trigram && db.engine == .postgres
            ? try db.queryPlannedPerCall(sql, params) : try db.query(sql, params)
        return try rows.map(Self.decode)
    }

    func statement(_ f: EventFilter, text match: TextMatch,
                   atOrAfter: (ts: Int64, id: Int64)? = nil) -> (sql: String, params: [DBValue]) {
        let columns = "SELECT e.id, e.ts, e.level, e.source, e.actor, e.action, e.target, e.message, e.data"
        var sql: String
        var params: [DBValue] = []
        if match == .trigram, f.text != nil, db.engine == .sqlite {
            // CROSS JOIN makes SQLite read the FTS matches first and fetch
            // just those rows by id; left to itself it may walk events_ts
            // and probe the match set per row, which reads what the scan does.
            sql = columns + " FROM events_fts CROSS JOIN events e ON e.id = events_fts.rowid WHERE events_fts MATCH ?"
            params.append(.text(EventTextSearch.ftsPhrase(f.text ?? "")))
        } else {
            sql = columns + " FROM events e WHERE 1 = 1"
        }
        appendFilters(f, to: &sql, &params)
        if let text = f.text {
            // Case-insensitive substring on both engines (SQLite's LIKE already is).
            //
            // PostgreSQL: `lower(col) LIKE lower(pattern)` is what ILIKE does
            // for UTF-8, but written out it costs a quarter as much, for two
            // reasons measured on 30k events (pgbench, '%77.%', LIMIT 100):
            // ILIKE with a bound pattern is estimated at a handful of rows, so
            // the planner sorts a full sequential scan (14 ms, growing with
            // the table), while this form walks `events_ts` newest first and
            // stops at the page limit (3.9 ms); and the pattern is lowered
            // (and its escapes parsed) once, in an InitPlan, instead of for
            // every row and column. Backslash is PostgreSQL's default LIKE
            // escape; SQLite has none, hence its explicit ESCAPE.
            //
            // With the trigram index (`.trigram`) the condition is the
            // index's expression (EventSearchSchema, verbatim): the columns
            // joined by U+001F, which the search text does not contain
            // (`EventTextSearch` checks), so a match cannot span two columns
            // and this one LIKE answers exactly what the three do.
            let pattern = DBValue.text("%" + Self.escapeLike(text) + "%")
            if db.engine == .postgres, match == .trigram {
                sql += " AND lower(e.message || chr(31) || coalesce(e.action, '') || chr(31) || coalesce(e.target, '')) LIKE lower(?)"
                params.append(pattern)
            } else if db.engine == .postgres {
                sql += " AND (lower(e.message) LIKE (SELECT lower(?)) OR lower(e.action) LIKE (SELECT lower(?)) OR lower(e.target) LIKE (SELECT lower(?)))"
                params += [pattern, pattern, pattern]
            } else {
                sql += " AND (e.message LIKE ? ESCAPE '\\' OR e.action LIKE ? ESCAPE '\\' OR e.target LIKE ? ESCAPE '\\')"
                params += [pattern, pattern, pattern]
            }
        }
        if let w = atOrAfter {
            // `e.ts >= ?` is implied by the OR but is what lets the index
            // walk stop at the window's end.
            sql += " AND e.ts >= ? AND (e.ts > ? OR (e.ts = ? AND e.id >= ?))"
            params += [.int(w.ts), .int(w.ts), .int(w.ts), .int(w.id)]
        }
        if match == .trigram, db.engine == .postgres {
            // `EventTextSearch` takes this path only for rare text, but with
            // ORDER BY and LIMIT in view the planner often walks events_ts
            // instead of using the index: it prices the bitmap's heap reads
            // as disk seeks, and the pattern's estimate swings with the
            // histogram sample (1 to 2 % for 1 in 100). OFFSET 0 fences the
            // match off, so it is planned alone (bitmap for a few rows, a
            // sequential scan if the estimate is large) and sorted after.
            sql = "SELECT * FROM (" + sql + " OFFSET 0) e"
        }
        sql += " ORDER BY e.ts DESC, e.id DESC LIMIT ?"
        params.append(.int(Int64(f.limit)))
        return (sql, params)
    }

    /// Level, source, time range and cursor: everything but the text.
    func appendFilters(_ f: EventFilter, to sql: inout String, _ params: inout [DBValue]) {
        if let level = f.level { sql += " AND e.level = ?"; params.append(.text(level.rawValue)) }
        if let source = f.source { sql += " AND e.source = ?"; params.append(.text(source)) }
        if let since = f.since { sql += " AND e.ts >= ?"; params.append(.int(since)) }
        if let until = f.until { sql += " AND e.ts < ?"; params.append(.int(until)) }
        if let c = f.cursor {
            sql += " AND (e.ts < ? OR (e.ts = ? AND e.id < ?))"
            params += [.int(c.ts), .int(c.ts), .int(c.id)]
        }
    }

    public func count() throws -> Int {
        try db.queryOne("SELECT COUNT(*) FROM events", [])?.int(0) ?? 0
    }

    static func escapeLike(_ s: String) -> String {
        var out = ""
        for c in s {
            if c == "\\" || c == "%" || c == "_" { out.append("\\") }
            out.append(c)
        }
        return out
    }

    static func decode(_ r: Row) throws -> Event {
        guard let id = r.int64(0), let ts = r.int64(1), let levelName = r.string(2),
              let level = EventLevel(rawValue: levelName) else {
            throw DatabaseError.failed("malformed events row")
        }
        var e = Event(ts: ts, level: level, source: r.string(3) ?? "", actor: r.string(4), action: r.string(5),
                      target: r.string(6), message: r.string(7) ?? "", data: r.string(8))
        e.id = id
        return e
    }
}

/// Audit records are events with source `audit`, written by the same
/// transaction as the change they describe.
public enum Audit {
    /// Reserved to the server: `POST /api/events` refuses it (`EventRoutes.isReserved`).
    public static let source = "audit"

    public static func record(_ db: Database, actor: String?, action: String, target: String?, message: String,
                              level: EventLevel = .info, data: String? = nil) throws {
        try EventRepository(db).insert(Event(level: level, source: source, actor: actor, action: action,
                                             target: target, message: message, data: data))
    }
}
