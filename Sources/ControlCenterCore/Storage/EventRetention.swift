/// Deletes events past `CC_EVENTS_RETENTION_DAYS` and audit records
/// (source `audit`) past `CC_AUDIT_RETENTION_DAYS`, oldest first, in
/// batches small enough that one DELETE (with the text index's trigger on
/// SQLite) holds the write lock for a few milliseconds. The collector runs
/// it after each sample (HistoryRecorder.maintain), so a backlog drains
/// over a few samples.
public enum EventRetention {
    static let batch = 500

    /// Returns the rows deleted; `now` is Unix ms.
    @discardableResult
    public static func prune(_ db: Database, config: Config, now: Int64, batches: Int = 1) throws -> Int {
        var deleted = 0
        let rules: [(String, Int)] = [("source <> ?", config.eventsRetentionDays), ("source = ?", config.auditRetentionDays)]
        for (match, days) in rules {
            let before = now - Int64(days) * 86_400_000
            for _ in 0..<batches {
                let n = try db.execute("""
                    DELETE FROM events WHERE id IN
                        (SELECT id FROM events WHERE ts < ? AND \(match) ORDER BY ts, id LIMIT \(batch))
                    """, [.int(before), .text(Audit.source)])
                deleted += n
                if n < batch { break }
            }
        }
        return deleted
    }
}
