/// The route table: every subsystem registers its routes here, once per worker.
public enum Application {
    public static func makeRouter(config: Config) -> Router {
        var r = Router()
        HealthRoutes.register(&r, readiness: readinessChecks(config: config))
        PoolRoutes.register(&r, sections: statusSections(config: config))
        SystemRoutes.register(&r)
        HistoryRoutes.register(&r)
        MetricsRoutes.register(&r)
        ContractRoutes.register(&r)
        StorageRoutes.register(&r)
        StreamRoutes.register(&r)
        if config.testRoutes { TestRoutes.register(&r) }
        return r
    }

    static func readinessChecks(config: Config) -> [HealthRoutes.ReadinessCheck] {
        StorageRoutes.readinessChecks
    }

    static func statusSections(config: Config) -> [PoolRoutes.Section] {
        SystemRoutes.statusSections
    }
}
