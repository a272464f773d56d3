/// The `depends_on` graph of every registered service, checked whenever a
/// definition is written so that the registry never holds a dependency on a
/// missing service or a cycle (the supervisor can then always order starts).
public enum ServiceGraph {
    /// Why `dependencies` (service name → the names it depends on) is not a
    /// valid graph, or nil. Reports the first problem in name order, so the
    /// message is stable: an unknown name (`b depends on missing c`), or a
    /// cycle spelled out (`a -> b -> a`).
    public static func problem(_ dependencies: [String: [String]]) -> String? {
        for name in dependencies.keys.sorted() {
            for d in dependencies[name] ?? [] where dependencies[d] == nil {
                return "\(name) depends on \(d), which is not registered"
            }
        }
        // Depth-first search with three colours; a grey node met again is a cycle.
        var state: [String: Bool] = [:]   // false: on the current path, true: done
        var path: [String] = []
        func visit(_ n: String) -> [String]? {
            if let done = state[n] {
                if done { return nil }
                return Array(path[path.firstIndex(of: n)!...]) + [n]
            }
            state[n] = false
            path.append(n)
            for d in (dependencies[n] ?? []).sorted() {
                if let cycle = visit(d) { return cycle }
            }
            path.removeLast()
            state[n] = true
            return nil
        }
        for name in dependencies.keys.sorted() {
            if let cycle = visit(name) { return "dependency cycle: \(cycle.joined(separator: " -> "))" }
        }
        return nil
    }
}
