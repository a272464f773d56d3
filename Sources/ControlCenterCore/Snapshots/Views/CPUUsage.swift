/// CPU busy percentages between two /proc/stat readings, per CPU number.
///
/// The kernel lists only online CPUs in /proc/stat, so lines are matched by
/// the N of `cpuN`, never by position. The total is summed from the cores
/// that have a figure, not taken from the aggregate `cpu` line: that line
/// keeps an offline CPU's frozen counters, and its idle time jumps when the
/// CPU comes back, so it disagrees with the online cores.
struct CPUUsage: Equatable {
    /// What a figure is measured over; written as `since_previous_sample`.
    enum Basis: String {
        case snapshot                   // since the previous snapshot
        case boot                       // no previous snapshot: average since boot
        case none                       // online, but no usable previous reading (came online since, or counters reset)
        case offline                    // not in /proc/stat now
    }

    struct Core: Equatable {
        var cpu: Int
        var percent: Double?            // nil unless basis is .snapshot or .boot
        var basis: Basis
    }

    var total: Double?
    var totalBasis: Basis               // .snapshot or .boot
    var cores: [Core]                   // index = CPU number

    /// - Parameters:
    ///   - now: this reading's lines (the aggregate line is ignored).
    ///   - before: the previous snapshot's lines, nil for the first snapshot.
    ///   - slots: how many CPU numbers to report (the CPUs present); raised to
    ///     cover every number seen.
    static func compute(now: [HostScanner.CPUTimes], before: [HostScanner.CPUTimes]?, slots: Int) -> CPUUsage {
        var current: [Int: HostScanner.CPUTimes] = [:]
        for t in now { if let n = t.cpu { current[n] = t } }
        var previous: [Int: HostScanner.CPUTimes] = [:]
        for t in before ?? [] { if let n = t.cpu { previous[n] = t } }
        let count = max(slots, (current.keys.max() ?? -1) + 1)
        var busySum: UInt64 = 0, timeSum: UInt64 = 0
        var cores: [Core] = []
        cores.reserveCapacity(count)
        for n in 0..<count {
            guard let t = current[n] else { cores.append(Core(cpu: n, percent: nil, basis: .offline)); continue }
            var dt = t.total, di = t.idle
            if before != nil {
                guard let b = previous[n], t.total >= b.total, t.idle >= b.idle, t.total - b.total >= t.idle - b.idle else {
                    cores.append(Core(cpu: n, percent: nil, basis: .none))
                    continue
                }
                dt = t.total - b.total
                di = t.idle - b.idle
            }
            let busy = dt - min(di, dt)
            busySum += busy
            timeSum += dt
            cores.append(Core(cpu: n, percent: dt > 0 ? Double(busy) * 100 / Double(dt) : nil,
                              basis: before == nil ? .boot : .snapshot))
        }
        return CPUUsage(total: timeSum > 0 ? Double(busySum) * 100 / Double(timeSum) : nil,
                        totalBasis: before == nil ? .boot : .snapshot, cores: cores)
    }
}
