/// admin ⊃ operator ⊃ viewer. The old backend's `user` maps to operator
/// (it could start and stop services) and `readonly` to viewer.
public enum Role: String, Sendable, CaseIterable, Comparable {
    case viewer, `operator`, admin

    var rank: Int { switch self { case .viewer: 0; case .operator: 1; case .admin: 2 } }

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }

    /// Accepts the canonical names and the old aliases, case-insensitively.
    public init?(parsing s: String) {
        switch s.lowercased() {
        case "admin": self = .admin
        case "operator", "user": self = .operator
        case "viewer", "readonly": self = .viewer
        default: return nil
        }
    }

    public func includes(_ other: Role) -> Bool { self >= other }
}
