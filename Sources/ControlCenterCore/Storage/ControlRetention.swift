/// Deletes the control tables' finished rows, oldest first, in the same
/// small batches as `EventRetention` (each DELETE holds the write lock for a
/// few milliseconds; a backlog drains over a few samples). The collector runs
/// it after each sample, next to `EventRetention` (HistoryRecorder.maintain).
///
/// - `alerts` that are closed (`resolved`, or `inactive`: back below the
///   threshold before firing) and unchanged for `CC_EVENTS_RETENTION_DAYS`:
///   the alert history lasts as long as the events that tell it.
/// - `alert_silences` that ended, `service_actions` that finished (`done`,
///   `failed`, `superseded`) and `process_signals` that were answered, after
///   `finishedDays`: they matter while someone waits on them or reads the
///   answer; the lasting record is the audit and supervisor events they wrote.
///
/// Open alerts, silences still in force and queued or running actions and
/// signals are never touched. Each rule is a range on an index (migration 10,
/// `RetentionSchema`), so a round with nothing to delete costs an index probe.
public enum ControlRetention {
    static let batch = 500
    /// Days a finished action, an answered signal or an ended silence is kept.
    public static let finishedDays = 7

    /// (table, which rows are finished, the time they are aged by, days kept).
    static func rules(_ config: Config) -> [(table: String, finished: String, time: String, days: Int)] {
        [("alerts", "state IN ('inactive', 'resolved')", "updated_at", config.eventsRetentionDays),
         ("alert_silences", "", "ends_at", finishedDays),
         ("service_actions", "", "finished_at", finishedDays),
         ("process_signals", "", "finished_at", finishedDays)]
    }

    /// One batch of a rule's rows older than the bound `?`, oldest first.
    static func batchSQL(_ rule: (table: String, finished: String, time: String, days: Int)) -> String {
        "SELECT id FROM \(rule.table) WHERE \(rule.finished.isEmpty ? "" : rule.finished + " AND ")\(rule.time) < ? "
            + "ORDER BY \(rule.time) LIMIT \(batch)"
    }

    /// Returns the rows deleted; `now` is Unix ms.
    @discardableResult
    public static func prune(_ db: Database, config: Config, now: Int64, batches: Int = 1) throws -> Int {
        var deleted = 0
        for rule in rules(config) {
            let before = now - Int64(rule.days) * 86_400_000
            for _ in 0..<batches {
                let n = try db.execute("DELETE FROM \(rule.table) WHERE id IN (\(batchSQL(rule)))", [.int(before)])
                deleted += n
                if n < batch { break }
            }
        }
        return deleted
    }
}
