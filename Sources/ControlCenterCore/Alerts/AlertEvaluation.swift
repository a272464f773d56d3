/// The state of one alert series: one rule applied to one label value (a
/// mount for `disk`, nothing for `cpu`).
///
/// `inactive` → `pending` (the condition holds) → `firing` (it held for the
/// rule's `for`) → `resolved` (it was clear for `keep_firing_for`); a
/// `pending` series whose value becomes clear goes back to `inactive`.
public enum AlertState: String, Sendable, CaseIterable {
    case inactive, pending, firing, resolved

    /// Pending and firing alerts are open: they have a row the routes list as active.
    public var isOpen: Bool { self == .pending || self == .firing }
}

/// `>`, `>=`, `<`, `<=`: how a value is compared with a rule's thresholds.
public enum AlertComparator: String, Sendable, CaseIterable {
    case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="

    public func holds(_ value: Double, _ threshold: Double) -> Bool {
        switch self {
        case .greater: return value > threshold
        case .greaterOrEqual: return value >= threshold
        case .less: return value < threshold
        case .lessOrEqual: return value <= threshold
        }
    }

    /// True for `>` and `>=`: the clear threshold must then be at or below the threshold.
    public var isUpper: Bool { self == .greater || self == .greaterOrEqual }
}

/// What the state machine needs of a rule.
public struct AlertCondition: Sendable, Equatable {
    public var comparator: AlertComparator
    public var threshold: Double
    /// A pending or firing alert counts as clear only once the comparison
    /// with this fails (hysteresis): with `> 90` and a clear threshold of
    /// 85, a value of 88 keeps it pending or firing.
    public var clearThreshold: Double
    /// Seconds the condition must hold before a pending alert fires.
    public var forSeconds: Double
    /// Seconds a firing alert must stay clear before it resolves.
    public var keepFiringForSeconds: Double

    public init(comparator: AlertComparator, threshold: Double, clearThreshold: Double, forSeconds: Double,
                keepFiringForSeconds: Double) {
        self.comparator = comparator
        self.threshold = threshold
        self.clearThreshold = clearThreshold
        self.forSeconds = forSeconds
        self.keepFiringForSeconds = keepFiringForSeconds
    }
}

/// One series' state between two samples. Times are monotonic seconds
/// (`Clock.monotonicSeconds`), so a wall-clock step changes no timer.
public struct AlertSeriesState: Sendable, Equatable {
    public var state: AlertState
    /// When the condition started to hold (pending's start); nil unless open.
    public var breachedSince: Double?
    /// When a firing alert's value last became clear; nil while it is not.
    public var clearSince: Double?

    public init(state: AlertState = .inactive, breachedSince: Double? = nil, clearSince: Double? = nil) {
        self.state = state
        self.breachedSince = breachedSince
        self.clearSince = clearSince
    }
}

/// The alert state machine: a pure function of the previous state, the
/// rule, the sampled value and the monotonic time.
public enum AlertEvaluation {
    /// The next state, and the new `AlertState` when it changed (a
    /// transition: one event, one notification). A missing value (the
    /// metric or the mount is gone) counts as clear.
    public static func step(_ s: AlertSeriesState, _ c: AlertCondition, value: Double?,
                            now: Double) -> (state: AlertSeriesState, transition: AlertState?) {
        let breached = value.map { c.comparator.holds($0, c.threshold) } ?? false
        switch s.state {
        case .inactive, .resolved:
            guard breached else { return (s, nil) }
            // A fresh episode: nothing of the previous one's timers remains.
            if c.forSeconds <= 0 { return (AlertSeriesState(state: .firing, breachedSince: now), .firing) }
            return (AlertSeriesState(state: .pending, breachedSince: now), .pending)
        case .pending:
            // The same hysteresis as a firing alert's: a value between the two
            // thresholds keeps it pending, so it does not flap pending/inactive.
            let stillBad = value.map { c.comparator.holds($0, c.clearThreshold) } ?? false
            guard stillBad else { return (AlertSeriesState(state: .inactive), .inactive) }
            let since = s.breachedSince ?? now
            if now - since >= c.forSeconds { return (AlertSeriesState(state: .firing, breachedSince: since), .firing) }
            return (AlertSeriesState(state: .pending, breachedSince: since), nil)
        case .firing:
            let stillBad = value.map { c.comparator.holds($0, c.clearThreshold) } ?? false
            if stillBad { return (AlertSeriesState(state: .firing, breachedSince: s.breachedSince), nil) }
            let clear = s.clearSince ?? now
            if now - clear >= c.keepFiringForSeconds { return (AlertSeriesState(state: .resolved), .resolved) }
            return (AlertSeriesState(state: .firing, breachedSince: s.breachedSince, clearSince: clear), nil)
        }
    }
}
