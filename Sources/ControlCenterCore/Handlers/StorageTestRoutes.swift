/// Test-only (`CC_TEST_ROUTES=true`): a query that takes `ms` milliseconds
/// inside the database, for the slow-database scenario. Bounded by
/// `CC_DB_TIMEOUT` like any other statement.
public enum StorageTestRoutes {
    public static func register(_ r: inout Router) {
        r.get("/api/test/db-sleep", dbSleep)
    }

    static func dbSleep(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let ms = try TestRoutes.milliseconds(req, max: 600_000)
        let started = Clock.monotonicSeconds()
        try Store.read(ctx) { try $0.sleep(milliseconds: ms) }
        return .json { w in
            w.beginObject()
            w.field("slept_ms", ms)
            w.field("elapsed_ms", Int((Clock.monotonicSeconds() - started) * 1000))
            w.field("engine", StorageService.shared(ctx).engine.rawValue)
            w.endObject()
        }
    }
}
