/// Migration 5: the service registry (issue 12). A definition is stored as
/// the JSON object `ServiceDefinition` writes and parses, so the API, the
/// import file and the table share one format; only what queries need
/// (the name, the times) are columns.
enum ServiceSchema {
    static let migration = Migration(version: 5, name: "service registry", statements: [
        """
        CREATE TABLE services (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )
        """,
    ])
}
