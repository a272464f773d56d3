import Foundation

/// The one spelling of a username, so that names which look alike are one
/// account: `PROBE-VIEWER`, `probe-viewer` and `ｐｒｏｂｅ-ｖｉｅｗｅｒ` fold to the same
/// key, and invisible or direction-changing characters never get in.
///
/// Folding is Unicode NFKC, then full case folding, then NFKC again (the
/// NFKC_Casefold idea of Unicode UAX #15 and UTS #39). It is applied on
/// create, on login lookup and, once, to the stored names by migration 4.
public enum Username {
    public static let maxLength = 64

    /// NFKC + case fold: `"ＡＤＭＩＮ"` → `"admin"`, `"Straße"` → `"strasse"`.
    public static func fold(_ s: String) -> String {
        s.precomposedStringWithCompatibilityMapping
            .folding(options: [.caseInsensitive], locale: nil)
            .precomposedStringWithCompatibilityMapping
    }

    /// Why `s` (already folded) cannot be a new username, or nil when it can.
    /// Refused: empty, longer than `maxLength` characters, surrounding white
    /// space, control (Cc), format (Cf: right-to-left overrides, zero-width
    /// joiners), separator, private-use, surrogate and unassigned code
    /// points, default-ignorable ones (zero-width space, Hangul fillers,
    /// variation selectors), a combining mark with no base character, and
    /// more than two combining marks on one character.
    public static func problem(_ s: String) -> String? {
        if s.isEmpty { return "must not be empty" }
        if s.count > maxLength { return "must be at most \(maxLength) characters" }
        if s != s.trimmingCharacters(in: .whitespacesAndNewlines) { return "must not have surrounding spaces" }
        var marksOnBase = 0
        var sawBase = false
        for u in s.unicodeScalars {
            let p = u.properties
            switch p.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
                return "must not contain control, format or invisible characters (U+\(hex(u)))"
            case .nonspacingMark, .enclosingMark, .spacingMark:
                guard sawBase else { return "must not start with a combining mark" }
                marksOnBase += 1
                if marksOnBase > 2 { return "must not stack more than two combining marks on one character" }
            default:
                sawBase = true
                marksOnBase = 0
            }
            if p.isDefaultIgnorableCodePoint {
                return "must not contain zero-width or invisible characters (U+\(hex(u)))"
            }
        }
        return nil
    }

    /// The folded name, or `Invalid` saying why it cannot be created.
    public static func normalized(_ s: String) throws -> String {
        let folded = fold(s)
        if let why = problem(folded) { throw Invalid(reason: why) }
        return folded
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "username \(reason)" }
    }

    private static func hex(_ u: Unicode.Scalar) -> String {
        let h = String(u.value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - h.count)) + h
    }
}
