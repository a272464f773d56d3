/// Migration 10: the indexes `ControlRetention` reads, so that pruning the
/// control tables finds its old rows by range instead of scanning the table
/// every sample. `alerts` is searched by state, then age (a partial index
/// over closed states alone is passed over by SQLite's planner for the
/// existing `(state, id)` one, which then reads every closed alert);
/// `alert_silences` already has one on `ends_at` (migration 8).
enum RetentionSchema {
    static let migration = Migration(version: 10, name: "control table retention indexes", statements: [
        "CREATE INDEX alerts_state_updated ON alerts (state, updated_at)",
        "CREATE INDEX service_actions_finished ON service_actions (finished_at)",
        "CREATE INDEX process_signals_finished ON process_signals (finished_at)",
    ])
}
