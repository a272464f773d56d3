/// Auth, users and events: the storage-backed routes (issue 4).
public enum StorageRoutes {
    public static func register(_ r: inout Router) {}

    /// The database ping for `/health/ready`.
    static var readinessChecks: [HealthRoutes.ReadinessCheck] { [] }
}
