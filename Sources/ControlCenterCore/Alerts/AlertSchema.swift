/// Migration 8: threshold alerts (issue 11 §2).
///
/// `alert_rules`: what to watch. `targets` is the JSON array AlertRule
/// writes and parses.
///
/// `alerts`: one row per episode of a series (a rule and a label value):
/// opened when it turns pending, kept as history once resolved (or back to
/// inactive before firing). At most one row per series is open (pending or
/// firing): the partial unique index says so on both engines.
///
/// `alert_silences`: while `starts_at <= now < ends_at`, transitions of
/// matching alerts are recorded but not notified. Every matcher field given
/// must equal the alert's.
///
/// The default rules are inserted here, once: a default an operator edits
/// or deletes is never recreated (no later migration touches them).
enum AlertSchema {
    static let migration = Migration(version: 8, name: "alert rules, alerts, silences", statements: [
        """
        CREATE TABLE alert_rules (
            id {ID},
            name TEXT NOT NULL UNIQUE,
            metric TEXT NOT NULL,
            label TEXT,
            comparator TEXT NOT NULL CHECK (comparator IN ('>', '>=', '<', '<=')),
            threshold DOUBLE PRECISION NOT NULL,
            clear_threshold DOUBLE PRECISION NOT NULL,
            for_seconds DOUBLE PRECISION NOT NULL,
            keep_firing_for_seconds DOUBLE PRECISION NOT NULL,
            severity TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            targets TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE alerts (
            id {ID},
            rule_id BIGINT NOT NULL,
            rule_name TEXT NOT NULL,
            metric TEXT NOT NULL,
            label TEXT NOT NULL,
            severity TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
            state TEXT NOT NULL CHECK (state IN ('inactive', 'pending', 'firing', 'resolved')),
            value DOUBLE PRECISION,
            threshold DOUBLE PRECISION NOT NULL,
            pending_since BIGINT NOT NULL,
            fired_at BIGINT,
            resolved_at BIGINT,
            acked_by TEXT,
            acked_at BIGINT,
            notify_retries INTEGER NOT NULL DEFAULT 0,
            updated_at BIGINT NOT NULL
        )
        """,
        "CREATE UNIQUE INDEX alerts_open_series ON alerts (rule_id, label) WHERE state IN ('pending', 'firing')",
        "CREATE INDEX alerts_state_id ON alerts (state, id)",
        """
        CREATE TABLE alert_silences (
            id {ID},
            rule_name TEXT,
            metric TEXT,
            label TEXT,
            severity TEXT,
            starts_at BIGINT NOT NULL,
            ends_at BIGINT NOT NULL,
            created_by TEXT NOT NULL,
            comment TEXT,
            created_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX alert_silences_ends ON alert_silences (ends_at)",
    ], code: insertDefaults)

    /// name, metric, comparator, threshold, clear threshold, for, keep_firing_for, severity.
    static let defaults: [(String, String, String, Double, Double, Double, Double, String)] = [
        ("cpu high", "cpu", ">", 90, 85, 300, 60, "warning"),
        ("memory high", "memory", ">", 90, 85, 300, 60, "warning"),
        ("disk almost full", "disk", ">", 90, 88, 60, 60, "warning"),
        ("disk full", "disk", ">", 95, 93, 60, 60, "critical"),
        ("swap high", "swap", ">", 80, 75, 300, 60, "warning"),
    ]

    @Sendable static func insertDefaults(_ db: Database) throws {
        let now = Clock.wallMillis()
        for (name, metric, cmp, threshold, clear, forS, keepS, severity) in defaults {
            try db.execute("""
                INSERT INTO alert_rules (name, metric, label, comparator, threshold, clear_threshold, for_seconds,
                    keep_firing_for_seconds, severity, enabled, targets, created_at, updated_at)
                VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, 1, '[]', ?, ?)
                """, [.text(name), .text(metric), .text(cmp), .double(threshold), .double(clear), .double(forS),
                      .double(keepS), .text(severity), .int(now), .int(now)])
        }
    }
}
