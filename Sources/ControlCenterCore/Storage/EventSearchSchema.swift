/// Migration 2: trigram indexes behind `GET /api/events?q=`.
///
/// Both engines index the three searched columns by trigrams, so a
/// substring of three or more characters narrows the rows to read to those
/// that contain all of its trigrams; the query still rechecks every
/// candidate with the original LIKE, so results are those of the scan.
enum EventSearchSchema {
    static let statements: [DatabaseEngine: [String]] = [.sqlite: sqlite, .postgres: postgres]

    /// The index the repository probes for on PostgreSQL (see `EventTextSearch`).
    static let postgresIndex = "events_text_trgm"

    /// An external-content FTS5 table: it stores only the index, reading
    /// column text from `events` by rowid, so rows are not stored twice.
    /// Triggers keep it in step with every write, inside the writer's
    /// transaction; `rebuild` backfills the rows that predate it. FTS5 is
    /// a hard requirement (Debian's libsqlite3 has it; a test checks).
    static let sqlite = [
        """
        CREATE VIRTUAL TABLE events_fts USING fts5(
            message, action, target, content='events', content_rowid='id', tokenize='trigram')
        """,
        """
        CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
            INSERT INTO events_fts (rowid, message, action, target)
            VALUES (new.id, new.message, new.action, new.target);
        END
        """,
        """
        CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
            INSERT INTO events_fts (events_fts, rowid, message, action, target)
            VALUES ('delete', old.id, old.message, old.action, old.target);
        END
        """,
        """
        CREATE TRIGGER events_fts_update AFTER UPDATE ON events BEGIN
            INSERT INTO events_fts (events_fts, rowid, message, action, target)
            VALUES ('delete', old.id, old.message, old.action, old.target);
            INSERT INTO events_fts (rowid, message, action, target)
            VALUES (new.id, new.message, new.action, new.target);
        END
        """,
        "INSERT INTO events_fts (events_fts) VALUES ('rebuild')",
    ]

    /// pg_trgm is a contrib extension: it may be missing (no
    /// postgresql-contrib) or refused (pg_trgm is trusted since PG 13, but
    /// the role still needs CREATE on the database). Either way the
    /// migration must succeed, so the attempt runs in a DO block whose
    /// exception handler (a subtransaction) swallows the failure, and the
    /// index is created only if the extension is there; without it the
    /// repository keeps the scan. The operator class is qualified with the
    /// extension's schema, which need not be on the search_path.
    ///
    /// One index over the three columns joined, not one per column: an OR
    /// of three GIN scans is costed so high (two of the columns are mostly
    /// NULL) that the planner preferred a sequential scan and a sort (11 ms
    /// at 50k rows, 1 in 100 matching, against 1 ms through this index).
    /// The separator, U+001F, keeps a match from spanning two columns (see
    /// `EventRepository.select`, which must use this expression verbatim).
    ///
    /// GIN queues inserts in a pending list (4 MB by default) that every
    /// search reads in full and the planner prices as such: at 300 pending
    /// pages it chose a 27 ms sequential scan over a 1 ms bitmap. 256 kB
    /// keeps that bounded; bulk-inserting 50k rows cost 15 µs a row for the
    /// index at 256 kB, 11 µs at 4 MB, 43 µs with the list off.
    static let postgres = [
        """
        DO $$
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_trgm unavailable, event text search stays a scan: %', SQLERRM;
        END
        $$
        """,
        """
        DO $$
        DECLARE
            s text;
        BEGIN
            SELECT n.nspname INTO s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
            WHERE e.extname = 'pg_trgm';
            IF s IS NOT NULL THEN
                EXECUTE format('CREATE INDEX events_text_trgm ON events USING gin '
                    '((lower(message || chr(31) || coalesce(action, '''') || chr(31) || coalesce(target, ''''))) %I.gin_trgm_ops) '
                    'WITH (gin_pending_list_limit = 256)', s);
            END IF;
        END
        $$
        """,
    ]
}
