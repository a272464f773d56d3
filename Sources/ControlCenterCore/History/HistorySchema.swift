/// Migration 7: the metric history. A sample is one row: `vals` holds its
/// figures as decimal text separated by commas, at position `id - 1` of each
/// series in `history_series` (an empty field where a series had no value,
/// such as a mount that was not there). Roll-up rows hold `avg:min:max` in
/// the same positions. Keys are Unix milliseconds, UTC, of the sample or of
/// the bucket start. The schema is the same on both engines except that
/// SQLite keys the tables by its rowid (no second copy of the key).
enum HistorySchema {
    static let migration = Migration(
        version: 7, name: "metric history",
        statements: ["CREATE TABLE history_series (id {ID}, name TEXT NOT NULL UNIQUE)"],
        engineStatements: [
            .sqlite: HistoryTier.allCases.map { "CREATE TABLE \($0.table) (ts INTEGER PRIMARY KEY, vals TEXT NOT NULL)" },
            .postgres: HistoryTier.allCases.map { "CREATE TABLE \($0.table) (ts BIGINT PRIMARY KEY, vals TEXT NOT NULL)" },
        ])
}
