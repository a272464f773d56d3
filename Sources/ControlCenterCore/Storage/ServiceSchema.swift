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

/// Migration 9: service health and process signals (issue 12).
///
/// `service_state.health`: the probe's verdict, written by the supervisor
/// when it changes, with the failure that made it `unhealthy`.
///
/// `process_signals`: `POST /api/system/processes/{pid}/signal` requests,
/// written by workers and answered by the supervisor (which alone may send
/// a signal), like `service_actions`.
enum ProcessSignalSchema {
    static let migration = Migration(version: 9, name: "service health, process signals", statements: [
        "ALTER TABLE service_state ADD COLUMN health TEXT NOT NULL DEFAULT 'unknown' CHECK (health IN ('healthy', 'unhealthy', 'unknown'))",
        "ALTER TABLE service_state ADD COLUMN health_message TEXT",
        "ALTER TABLE service_state ADD COLUMN health_changed_at BIGINT",
        """
        CREATE TABLE process_signals (
            id {ID},
            pid INTEGER NOT NULL,
            signal TEXT NOT NULL,
            start_time_ms BIGINT,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'not_found', 'conflict', 'forbidden', 'failed')),
            actor TEXT NOT NULL,
            message TEXT,
            created_at BIGINT NOT NULL,
            finished_at BIGINT
        )
        """,
        "CREATE INDEX process_signals_pending ON process_signals (status, id)",
    ])
}
