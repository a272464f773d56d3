/// Index-backed `q=` search (migration 2). The scan walks events newest
/// first until `limit` rows match, so its cost grows as matches get rarer
/// (about 3.8 ms per search at 1 in 100); a trigram index reads only the
/// rows that can match, so its cost grows with how many rows match in the
/// whole table. Each search gets the cheaper of the two (`probed`).
struct EventTextSearch {
    let repo: EventRepository
    var db: Database { repo.db }

    /// A trigram index can only answer text of three or more characters
    /// (code points, which is what FTS5 and pg_trgm count); shorter text
    /// keeps the scan.
    static func indexable(_ text: String) -> Bool { text.unicodeScalars.count >= 3 }

    /// The text as one FTS5 phrase: inside double quotes everything is
    /// literal except the quote itself, which doubles. A trigram phrase
    /// matches exactly the rows that contain the text as a substring,
    /// compared case-folded (Unicode folding, wider than SQLite LIKE's
    /// ASCII-only folding; the LIKE recheck narrows it back).
    static func ftsPhrase(_ text: String) -> String {
        "\"" + text.replacingAll("\"", with: "\"\"") + "\""
    }

    func list(_ f: EventFilter, probe: Bool) throws -> [Event] {
        guard try indexed(f.text ?? "") else { return try repo.select(f, text: .like) }
        return probe ? try probed(f) : try repo.select(f, text: .trigram)
    }

    /// FTS5 is always there (migration 2 requires it); pg_trgm may not be,
    /// and the PostgreSQL index expression cannot take text containing its
    /// column separator.
    func indexed(_ text: String) throws -> Bool {
        switch db.engine {
        case .sqlite: return true
        case .postgres: return try !text.unicodeScalars.contains(Self.columnSeparator) && postgresIndexed()
        }
    }

    /// Joins the columns in the PostgreSQL index expression.
    static let columnSeparator: Unicode.Scalar = "\u{1F}"

    static let trigramFact = "events_text_trgm"

    /// Whether migration 2 could create the pg_trgm index here.
    func postgresIndexed() throws -> Bool {
        if let known = db.schemaFacts[Self.trigramFact] { return known }
        let found = try db.queryOne("""
            SELECT COUNT(*) FROM pg_indexes
            WHERE schemaname = current_schema() AND tablename = 'events' AND indexname = ?
            """, [.text(EventSearchSchema.postgresIndex)])?.int(0) == 1
        db.schemaFacts[Self.trigramFact] = found
        return found
    }

    /// Neither planner can be left to choose between the index and the
    /// scan. SQLite's cannot tell a rare text from a common one (FTS5 keeps
    /// no statistics), and PostgreSQL's, which can, still walked events_ts
    /// for the benchmark's 1-in-100 text (see `EventRepository.select`).
    /// And the index must read every match before it can sort them by
    /// time: 25k matches out of 50k cost ~50 ms on SQLite, where the scan
    /// stops after 200 rows. So this finds out: it first scans a window of
    /// the newest rows the other filters allow. If that fills the page, or
    /// holds every remaining row, the scan was the right plan and this is
    /// its answer. If the window showed matches are common enough that the
    /// rest of the page is a few windows away, the scan continues past it.
    /// Only rare text goes to the index, for the rows older than the window.
    func probed(_ f: EventFilter) throws -> [Event] {
        let window = Self.window(limit: f.limit)
        guard let edge = try windowEdge(f, rows: window) else {
            return try repo.select(f, text: .like)   // fewer rows than a window: the scan is bounded
        }
        let head = try repo.select(f, text: .like, atOrAfter: edge)
        if head.count >= f.limit { return head }
        var rest = f
        rest.cursor = edge
        rest.limit = f.limit - head.count
        let commonEnough = head.count * Self.scanWindowsAhead >= rest.limit
        return head + (try repo.select(rest, text: commonEnough ? .like : .trigram))
    }

    /// Rows the probe scans: enough to see a few matches of text that the
    /// scan still answers well (one in `window / limit`), few enough that
    /// rare text pays little for the look (~0.4 ms per 1000 rows).
    static func window(limit: Int) -> Int { max(1000, 5 * limit) }

    /// How many more windows the scan may expect to read before the index
    /// is cheaper. At 1 in 50 the rest of a page of 100 is ~4000 rows
    /// (~1.6 ms) away, about what the index costs for 1000 matches in 50k.
    static let scanWindowsAhead = 4

    /// The (ts, id) of the `rows`-th newest row that the non-text filters
    /// allow, or nil when there are fewer. Reads index entries only.
    func windowEdge(_ f: EventFilter, rows: Int) throws -> (ts: Int64, id: Int64)? {
        var sql = "SELECT e.ts, e.id FROM events e WHERE 1 = 1"
        var params: [DBValue] = []
        repo.appendFilters(f, to: &sql, &params)
        sql += " ORDER BY e.ts DESC, e.id DESC LIMIT 1 OFFSET ?"
        params.append(.int(Int64(rows - 1)))
        guard let r = try db.queryOne(sql, params), let ts = r.int64(0), let id = r.int64(1) else { return nil }
        return (ts, id)
    }
}
