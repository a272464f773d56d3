extension MasterState {
    /// What systemd is told (sd_notify(3), `Type=notify`): the master is
    /// ready once it is running, no reload is under way, and every group has
    /// its target of children of its current generation, none told to stop,
    /// each accepting if the group has a heartbeat (its status file exists;
    /// a group without one counts once spawned, as a reload does). A group
    /// backing off after crashes is not up, so a master whose workers cannot
    /// start never reports ready and systemd's start timeout fails the unit.
    public func isReady(heartbeats: Heartbeats) -> Bool {
        guard phase == .running else { return false }
        return groups.indices.allSatisfy { g in
            let group = groups[g]
            guard group.reloadStartedAt == nil else { return false }
            let current = children(of: g).filter { $0.generation == group.generation && $0.stop == nil }
            let up = group.spec.heartbeat == nil ? current : current.filter { heartbeats.reporting.contains($0.pid) }
            return up.count >= group.spec.target
        }
    }
}
