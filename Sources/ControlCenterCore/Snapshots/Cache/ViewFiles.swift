import Glibc

/// The nginx-sent default views (`$CC_STATE_DIR/views/<kind>.json`) at the
/// master's end. nginx sends a view whenever its file exists, with no age
/// check per request (control-center-views.conf), so the master keeps the
/// promise that nginx never sends one older than `CC_CACHE_MAX_STALE`: it
/// removes them all when their publisher (the collector) dies, and any whose
/// mtime (the snapshot's time, `SnapshotCache.publishView`) is that old, which
/// is what a hung collector leaves. The workers then answer (ReadAccess's
/// stale copy, or 503).
public enum ViewFiles {
    /// The kinds nginx has a view location for.
    static let kinds = SnapshotKind.allCases.filter(\.hasNginxView)

    /// Pure: the views to remove, given each existing view's mtime (Unix ms).
    /// One as far in the future is removed too: a clock stepped back must not
    /// keep a view looking young.
    static func expired(mtimes: [SnapshotKind: Int64], nowMillis: Int64, maxStaleMillis: Int64) -> [SnapshotKind] {
        kinds.filter { kind in
            guard let m = mtimes[kind] else { return false }
            return abs(nowMillis - m) >= maxStaleMillis
        }
    }

    /// Removes the views older than `maxStale` seconds; returns their kinds.
    /// A view the collector renames into place between the check and the
    /// unlink is lost until its next refresh (TTL/2): workers answer meanwhile.
    @discardableResult
    public static func removeExpired(directory: String, maxStale: Double, nowMillis: Int64 = Clock.wallMillis()) -> [SnapshotKind] {
        var mtimes: [SnapshotKind: Int64] = [:]
        for kind in kinds {
            var st = stat()
            guard stat(kind.viewPath(directory), &st) == 0 else { continue }
            mtimes[kind] = Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
        }
        let old = expired(mtimes: mtimes, nowMillis: nowMillis, maxStaleMillis: Int64(maxStale * 1000))
        for kind in old { unlink(kind.viewPath(directory)) }
        return old
    }

    /// Removes every view (their publisher is gone); returns how many existed.
    @discardableResult
    public static func removeAll(directory: String) -> Int {
        kinds.filter { unlink($0.viewPath(directory)) == 0 }.count
    }
}
