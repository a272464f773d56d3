/// `/api/system/*`: the host views, served from the snapshot cache (issue 3).
public enum SystemRoutes {
    public static func register(_ r: inout Router) {}

    /// Refresh counters per snapshot kind, shown on `/api/pool/status`.
    static var statusSections: [PoolRoutes.Section] { [] }
}
