import Foundation

/// `control-center services import FILE`: registers the services a JSON
/// file lists (an array of definitions, each as `POST /api/services` takes
/// it). Idempotent: a definition equal to the stored one is left alone, so
/// importing the same file twice changes nothing and writes no event. It
/// never deletes. All or nothing: one bad definition, an unknown
/// dependency or a cycle, and nothing is written.
public enum ServiceImport {
    public struct Result: Equatable, Sendable {
        public var created: [String] = []
        public var updated: [String] = []
        public var unchanged: [String] = []
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses and host-checks every definition in `data`. Errors name the
    /// element (`services[2] (web)`).
    public static func parse(_ data: [UInt8]) throws -> [ServiceDefinition] {
        guard let any = try? JSONSerialization.jsonObject(with: Data(data)), StrictJSON.problem(data) == nil,
              let array = any as? [Any] else {
            throw Failure(description: "the file must hold one JSON array of service definitions")
        }
        var seen = Set<String>()
        return try array.enumerated().map { i, element in
            let label = "services[\(i)]"
            guard let obj = element as? [String: Any] else { throw Failure(description: "\(label): must be an object") }
            let def: ServiceDefinition
            do {
                def = try ServiceDefinition.parse(obj)
                try def.checkHost()
            } catch {
                throw Failure(description: "\(label)\((obj["name"] as? String).map { " (\($0))" } ?? ""): \(error)")
            }
            guard seen.insert(def.name).inserted else { throw Failure(description: "\(label): \(def.name) appears twice") }
            return def
        }
    }

    /// The command: reads `path`, migrates the database if needed, applies.
    public static func importFile(_ config: Config, path: String) throws -> Result {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "cannot read \(path)") }
        let definitions = try parse(Array(data))
        return try StorageSetup.withMigratedDatabase(config) { db, _ in try apply(db, definitions, actor: "cli") }
    }

    /// Writes `definitions` in one transaction with one audit event per
    /// created or changed service (actor `actor`, role `cli`).
    public static func apply(_ db: Database, _ definitions: [ServiceDefinition], actor: String) throws -> Result {
        try db.transaction {
            let repo = ServiceRepository(db)
            try repo.lockForWrite()
            var result = Result()
            for def in definitions {
                let action: String
                switch try repo.storedJSON(def.name) {
                case nil:
                    try repo.insert(def)
                    result.created.append(def.name)
                    action = "service.create"
                case def.storedJSON?:
                    result.unchanged.append(def.name)
                    continue
                default:
                    try repo.update(def)
                    result.updated.append(def.name)
                    action = "service.update"
                }
                let root = def.runsAsRoot
                try Audit.record(db, actor: actor, action: action, target: def.name,
                                 message: "imported service definition" + (root ? "; runs as root" : ""),
                                 level: root ? .warning : .info, data: #"{"role":"cli"}"#)
            }
            do {
                try repo.checkGraph()
            } catch let e as ServiceDefinition.Invalid {
                throw Failure(description: e.reason)
            }
            return result
        }
    }
}
