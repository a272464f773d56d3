/// Migration 5: managed services (issue 12).
///
/// `services`: the registry. A definition is stored as the JSON object
/// `ServiceDefinition` writes and parses, so the API, the import file and
/// the table share one format. The list's fields (description, port,
/// autostart, `depends_on` as comma-separated names) are copies written by
/// the same statement, so `GET /api/services` parses no JSON.
///
/// `service_state`: what the supervisor last saw of each service, written
/// by the supervisor only (workers read it).
///
/// `service_actions`: start/stop/restart requests, written by workers and
/// taken in id order by the supervisor, which records how each ended.
enum ServiceSchema {
    static let migration = Migration(version: 6, name: "service registry", statements: [
        """
        CREATE TABLE services (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            description TEXT NOT NULL,
            port INTEGER,
            autostart INTEGER NOT NULL CHECK (autostart IN (0, 1)),
            depends_on TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE service_state (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('stopped', 'starting', 'running', 'stopping', 'failed', 'backoff')),
            pid INTEGER,
            start_ticks BIGINT,
            started_at BIGINT,
            restarts INTEGER NOT NULL DEFAULT 0,
            last_exit_code INTEGER,
            last_exit_signal INTEGER,
            last_exit_at BIGINT,
            next_retry_at BIGINT,
            message TEXT,
            updated_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE service_actions (
            id {ID},
            service TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('start', 'stop', 'restart')),
            status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'superseded')),
            actor TEXT NOT NULL,
            message TEXT,
            pid INTEGER,
            created_at BIGINT NOT NULL,
            finished_at BIGINT
        )
        """,
        "CREATE INDEX service_actions_pending ON service_actions (status, id)",
    ])
}
