/// Auth, users, events, the service registry and alerts: the storage-backed routes.
public enum StorageRoutes {
    public static func register(_ r: inout Router) {
        AuthRoutes.register(&r)
        UserRoutes.register(&r)
        EventRoutes.register(&r)
        ServiceRoutes.register(&r)
        AlertRoutes.register(&r)
    }

    /// The database ping for `/health/ready`. It uses the worker's own
    /// connection, so it also reports that this worker has reconnected.
    static var readinessChecks: [HealthRoutes.ReadinessCheck] {
        [(name: "database", check: { ctx in
            do {
                try StorageService.shared(ctx).run { try $0.ping() }
                return nil
            } catch {
                return String(describing: error)
            }
        })]
    }
}
