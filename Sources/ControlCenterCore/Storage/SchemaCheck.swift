/// How a binary's schema (`Migrations.latest`) compares with a database's
/// (`Migrations.currentVersion`), as `control-center migrate --check` reports
/// it in its exit status and the master reads it before a reload: a HUP
/// starts new workers without migrating, so they may only run a binary
/// whose schema is exactly the database's.
public enum SchemaCheck: Equatable, Sendable, CustomStringConvertible {
    case current(Int)
    /// The binary has migrations the database lacks: a restart runs them.
    case binaryNewer(binary: Int, database: Int)
    /// The database was migrated by a newer binary: this one is too old for it.
    case databaseNewer(binary: Int, database: Int)

    public init(binary: Int, database: Int) {
        if binary == database {
            self = .current(binary)
        } else if binary > database {
            self = .binaryNewer(binary: binary, database: database)
        } else {
            self = .databaseNewer(binary: binary, database: database)
        }
    }

    /// 0 when they match; 3 and 4 tell the two mismatches apart (1 and 2 are
    /// the command's own failures and configuration errors).
    public var exitCode: Int32 {
        switch self {
        case .current: 0
        case .binaryNewer: 3
        case .databaseNewer: 4
        }
    }

    /// What an exit status of `migrate --check` means, for the master's log.
    public static func explain(exitCode: Int32) -> String {
        switch exitCode {
        case 0: "the schemas match"
        case 3: "the new binary's schema is newer than the database: restart to migrate"
        case 4: "the database's schema is newer than the new binary"
        case 2: "the new binary rejects the configuration"
        default: "the new binary could not check the database"
        }
    }

    public var description: String {
        switch self {
        case .current(let v): "binary schema \(v), database schema \(v): up to date"
        case .binaryNewer(let b, let d):
            "binary schema \(b), database schema \(d): migrations pending (control-center migrate, or a restart)"
        case .databaseNewer(let b, let d):
            "binary schema \(b), database schema \(d): the database is newer than this binary"
        }
    }
}
