/// What a refresh produces for one kind; the cache adds the header, publishes
/// the file and counts the refresh.
struct BuiltSnapshot {
    var itemCount: Int
    var sections: [(SnapshotFile.Tag, [UInt8])]
}

/// The time a refresh stands for, and the copy it replaces (for rates).
struct BuildInput {
    var takenAtMillis: Int64
    var monoNanos: UInt64
    var previous: SnapshotFile?
}

protocol SnapshotBuilder: AnyObject {
    func build(_ input: BuildInput) throws -> BuiltSnapshot
}

struct SnapshotError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
