import Foundation

/// A request's JSON object body with strictly typed accessors: a wrong type
/// is a 422 naming the field, never a crash or a silent coercion (a JSON
/// `true` is not the number 1, and `"5"` is not 5).
public struct JSONInput {
    public let object: [String: Any]

    /// 415 `unsupported_media_type` unless the Content-Type is
    /// `application/json` (optionally `; charset=utf-8`, RFC 8259 §8.1);
    /// 400 `invalid_json` for an empty body, anything that is not one JSON
    /// object, and what Foundation's parser lets through but RFC 8259 does
    /// not (see `StrictJSON`).
    public init(_ req: Request) throws {
        guard Self.isJSONMediaType(req.header("content-type")) else {
            throw APIError(415, "unsupported_media_type", "Content-Type must be application/json")
        }
        guard !req.body.isEmpty else { throw APIError.badRequest("Request body must be a JSON object", code: "invalid_json") }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(req.body), options: [.fragmentsAllowed]) else {
            throw APIError.badRequest("Request body is not valid JSON", code: "invalid_json")
        }
        if let why = StrictJSON.problem(req.body) {
            throw APIError.badRequest("Request body is not valid JSON: \(why)", code: "invalid_json")
        }
        guard let obj = parsed as? [String: Any] else {
            throw APIError.badRequest("Request body must be a JSON object", code: "invalid_json")
        }
        object = obj
    }

    /// `application/json`, with no parameter but `charset=utf-8` (any case,
    /// optionally quoted). A missing header is not JSON.
    public static func isJSONMediaType(_ header: String?) -> Bool {
        guard let header else { return false }
        let parts = header.split(separator: ";", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard parts[0] == "application/json" else { return false }
        return parts.dropFirst().allSatisfy { p in
            let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return kv.count == 2 && kv[0] == "charset" && (kv[1] == "utf-8" || kv[1] == "\"utf-8\"")
        }
    }

    public init(object: [String: Any]) { self.object = object }

    public func has(_ k: String) -> Bool { object[k] != nil }

    static func invalid(_ field: String, _ why: String) -> APIError {
        APIError(422, "validation_error", "\(field): \(why)")
    }

    /// nil when absent or null.
    public func string(_ k: String, maxLength: Int, minLength: Int = 0) throws -> String? {
        guard let v = object[k], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw Self.invalid(k, "must be a string") }
        let n = s.count
        guard n >= minLength else { throw Self.invalid(k, "must be at least \(minLength) characters") }
        guard n <= maxLength else { throw Self.invalid(k, "must be at most \(maxLength) characters") }
        guard !s.unicodeScalars.contains(where: { $0.value == 0 }) else { throw Self.invalid(k, "must not contain NUL") }
        return s
    }

    public func requiredString(_ k: String, maxLength: Int, minLength: Int = 1) throws -> String {
        guard let s = try string(k, maxLength: maxLength, minLength: minLength) else { throw Self.invalid(k, "is required") }
        return s
    }

    public func bool(_ k: String) throws -> Bool? {
        guard let v = object[k], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, Self.isBool(n) else { throw Self.invalid(k, "must be true or false") }
        return n.boolValue
    }

    public static func isBool(_ n: NSNumber) -> Bool {
        type(of: n) == type(of: NSNumber(value: true))
    }

    /// Rejects fields a route does not take, so a typo is not silently ignored.
    public func allowOnly(_ names: Set<String>) throws {
        for k in object.keys.sorted() where !names.contains(k) {
            throw Self.invalid(k, "is not accepted here")
        }
    }
}

/// Shared field rules for users.
enum UserFields {
    /// The folded name (see `Username`), or 422 saying why it cannot be one.
    static func username(_ s: String) throws -> String {
        do {
            return try Username.normalized(s)
        } catch let e as Username.Invalid {
            throw JSONInput.invalid("username", e.reason)
        }
    }

    static func email(_ s: String?) throws -> String? {
        guard let s, !s.isEmpty else { return nil }
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !s.contains(" ") else {
            throw JSONInput.invalid("email", "is not an e-mail address")
        }
        return s
    }

    static func role(_ s: String?) throws -> Role? {
        guard let s else { return nil }
        guard let r = Role(parsing: s) else { throw JSONInput.invalid("role", "must be admin, operator or viewer") }
        return r
    }

    /// A password being set (not one being checked at login): `PasswordPolicy`.
    static func password(_ field: String, _ s: String) throws -> String {
        if let why = PasswordPolicy.problem(s) { throw JSONInput.invalid(field, why) }
        return s
    }
}
