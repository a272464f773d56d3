/// What a new password must be (NIST SP 800-63B §5.1.1.2: a length floor,
/// no composition rules, a generous ceiling). Checked when a password is
/// set: create, change, admin reset, `user add`. Login accepts any stored
/// password up to `maxLength`, so an account whose password predates a
/// rule keeps working until its next change.
public enum PasswordPolicy {
    /// Characters (grapheme clusters), not bytes.
    public static let minLength = 12
    /// Bounds the argon2id input and the request body, not the strength.
    public static let maxLength = 1024

    /// Why `s` cannot be set as a password, or nil when it can.
    public static func problem(_ s: String) -> String? {
        if s.count < minLength { return "must be at least \(minLength) characters" }
        if s.count > maxLength { return "must be at most \(maxLength) characters" }
        if s.allSatisfy(\.isWhitespace) { return "must not be only white space" }
        if s.unicodeScalars.contains(where: { $0.value == 0 }) { return "must not contain NUL" }
        return nil
    }
}
