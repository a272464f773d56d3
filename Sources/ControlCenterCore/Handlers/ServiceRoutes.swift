import Foundation

/// The service registry (issue 12): reads for any signed-in user, writes for
/// admins. Every write, its dependency-graph check and its audit event
/// commit in one transaction, so a refused write leaves nothing behind; then
/// the supervisor is woken to re-read the registry. A changed definition
/// applies from the service's next start.
enum ServiceRoutes {
    static func register(_ r: inout Router) {
        r.get("/api/services", list)
        r.post("/api/services", create)
        r.get("/api/services/{name}", get)
        r.put("/api/services/{name}", update)
        r.delete("/api/services/{name}", delete)
        ServiceActionRoutes.register(&r)
    }

    static let defaultPageSize = 50
    static let maxPageSize = 200

    /// The path's name, or 400 (it is used in log paths later, so nothing
    /// but the validated form goes further).
    static func name(_ req: Request) throws -> String {
        let n = req.parameter("name")
        guard ServiceDefinition.isValidName(n) else {
            throw APIError.badRequest("Service name must match ^[a-z0-9][a-z0-9_-]{0,62}$", code: "invalid_name")
        }
        return n
    }

    static func invalid(_ e: ServiceDefinition.Invalid) -> APIError {
        APIError.badRequest(e.description, code: "validation_error")
    }

    /// Parses and host-checks a body; every refusal is a 400 naming the field.
    static func definition(_ req: Request, name: String?) throws -> ServiceDefinition {
        let body = try JSONInput(req)
        do {
            let def = try ServiceDefinition.parse(body.object, name: name)
            try def.checkHost()
            return def
        } catch {
            throw invalid(error)
        }
    }

    /// Writes one change with its audit event, mapping graph refusals to 400.
    static func write<T>(_ ctx: WorkerContext, _ body: (ServiceRepository, Database) throws -> T) throws -> T {
        do {
            return try Store.write(ctx) { db in
                let repo = ServiceRepository(db)
                try repo.lockForWrite()
                return try body(repo, db)
            }
        } catch let e as ServiceDefinition.Invalid {
            throw invalid(e)
        }
    }

    static func audit(_ db: Database, _ p: Principal, _ action: String, _ def: ServiceDefinition?, name: String, message: String) throws {
        var w = JSONWriter()
        w.beginObject()
        w.field("role", p.user.role.rawValue)
        if let def { w.field("user", def.user) }
        w.endObject()
        let root = def?.runsAsRoot ?? false
        try Audit.record(db, actor: p.user.username, action: action, target: name,
                         message: root ? message + "; runs as root" : message,
                         level: root ? .warning : .info, data: String(decoding: w.bytes, as: UTF8.self))
    }

    static func create(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.admin, req, ctx)
        let def = try definition(req, name: nil)
        let stored = try write(ctx) { repo, db -> StoredService in
            guard try repo.find(def.name) == nil else {
                throw APIError(409, "service_exists", "A service named \(def.name) already exists")
            }
            try repo.insert(def)
            try repo.checkGraph()
            try audit(db, p, "service.create", def, name: def.name, message: "registered service")
            return try repo.find(def.name)!
        }
        Supervisor.wake(ctx.config)
        return .json(201) { ServiceJSON.full(&$0, stored, nil, environment: true) }
    }

    static func list(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        try Auth.requireRole(.viewer, req, ctx)
        let page = try UserRoutes.intParam(req, "page", default: 1, range: 1...1_000_000)
        let size = try UserRoutes.intParam(req, "page_size", default: defaultPageSize, range: 1...maxPageSize)
        let (services, total) = try Store.read(ctx) { db in
            let repo = ServiceRepository(db)
            return (try repo.summaries(limit: size, offset: (page - 1) * size), try repo.count())
        }
        let now = Clock.wallMillis()
        let pages = (total + size - 1) / size
        return .json { w in
            w.beginObject()
            w.field("success", true)
            w.beginArray("services")
            for s in services { ServiceJSON.summary(&w, s, now: now) }
            w.endArray()
            w.field("count", services.count)
            w.beginObject("meta")
            w.field("total", total)
            w.field("page", page)
            w.field("page_size", size)
            w.field("total_pages", pages)
            w.field("has_next", page < pages)
            w.field("has_prev", page > 1)
            w.endObject()
            w.endObject()
        }
    }

    static func get(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.viewer, req, ctx)
        let n = try name(req)
        let (found, state) = try Store.read(ctx) { db in (try ServiceRepository(db).find(n), try ServiceStateRepository(db).find(n)) }
        guard let s = found else { throw APIError.notFound("No service \(n)") }
        return .json { ServiceJSON.full(&$0, s, state, environment: p.user.role == .admin) }
    }

    /// A full replacement (PUT): omitted fields return to their defaults.
    static func update(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.admin, req, ctx)
        let n = try name(req)
        let def = try definition(req, name: n)
        let (stored, state) = try write(ctx) { repo, db -> (StoredService, ServiceStateRow?) in
            guard try repo.update(def) else { throw APIError.notFound("No service \(n)") }
            try repo.checkGraph()
            try audit(db, p, "service.update", def, name: n, message: "changed service definition")
            return (try repo.find(n)!, try ServiceStateRepository(db).find(n))
        }
        Supervisor.wake(ctx.config)
        return .json { ServiceJSON.full(&$0, stored, state, environment: true) }
    }

    static func delete(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.admin, req, ctx)
        let n = try name(req)
        try write(ctx) { repo, db in
            guard try repo.delete(n) else { throw APIError.notFound("No service \(n)") }
            let dependents = try repo.dependencies().filter { $0.value.contains(n) }.keys.sorted()
            guard dependents.isEmpty else {
                throw APIError(409, "service_has_dependents",
                               "\(dependents.joined(separator: ", ")) depend\(dependents.count == 1 ? "s" : "") on \(n); change them first")
            }
            try audit(db, p, "service.delete", nil, name: n, message: "removed service")
        }
        // A running service that was removed is stopped at once.
        Supervisor.wake(ctx.config)
        return .json { w in
            w.beginObject()
            w.field("success", true)
            w.field("deleted", n)
            w.endObject()
        }
    }
}
