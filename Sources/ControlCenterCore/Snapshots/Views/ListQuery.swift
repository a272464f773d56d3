/// `limit` and `offset` as every list route takes them.
struct Page: Equatable {
    var limit: Int
    var offset: Int

    static let maxLimit = 10_000

    init(limit: Int, offset: Int) {
        self.limit = limit
        self.offset = offset
    }

    init(_ req: Request, defaultLimit: Int) throws {
        limit = try intParameter(req, "limit", default: defaultLimit, range: 0...Page.maxLimit)
        offset = try intParameter(req, "offset", default: 0, range: 0...Int(Int32.max))
    }

    /// The slice of `0..<count` this page covers.
    func range(_ count: Int) -> Range<Int> {
        let lo = min(offset, count)
        return lo..<min(count, lo + limit)
    }
}

func invalid(_ message: String) -> APIError { APIError(400, "invalid_parameter", message) }

func intParameter(_ req: Request, _ name: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
    guard let raw = req.query[name] else { return d }
    guard let v = Int(raw), range.contains(v) else {
        throw invalid("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
    }
    return v
}

func optionalInt(_ req: Request, _ name: String, range: ClosedRange<Int>) throws -> Int? {
    guard let raw = req.query[name], !raw.isEmpty else { return nil }
    guard let v = Int(raw), range.contains(v) else {
        throw invalid("\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
    }
    return v
}

func choice(_ req: Request, _ name: String, _ allowed: [String], default d: String?) throws -> String? {
    guard let raw = req.query[name], !raw.isEmpty else { return d }
    guard allowed.contains(raw) else { throw invalid("\(name) must be one of \(allowed.joined(separator: ", "))") }
    return raw
}

/// The `"snapshot":{...,"age_ms":` tail every snapshot response ends with;
/// the age is appended per request, then `}}` closes it and the body.
enum SnapshotTail {
    static func open(_ w: inout JSONWriter, takenAtMillis: Int64) {
        w.beginObject("snapshot")
        w.field("taken_at", Clock.iso8601(Double(takenAtMillis) / 1000))
        w.field("taken_at_ms", Int(takenAtMillis))
        w.key("age_ms")
    }

    static let close: [UInt8] = Array("}}".utf8)

    /// A complete body from a pre-rendered prefix: one copy plus the age.
    static func body(prefix: ArraySlice<UInt8>, age: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(prefix.count + 16)
        out.append(contentsOf: prefix)
        out.append(contentsOf: Array(String(age).utf8))
        out.append(contentsOf: close)
        return out
    }

    /// Finishes a body written by `open` (writer left expecting the age).
    static func finish(_ w: inout JSONWriter, age: Int) -> [UInt8] {
        w.int(age)
        w.endObject()
        w.endObject()
        return w.bytes
    }

    static func response(_ body: [UInt8], _ snap: LoadedSnapshot, age: Int) -> Response {
        var r = Response.json(bytes: body)
        r.headers.append(("X-Snapshot-Age-Ms", String(age)))
        r.headers.append(("X-Snapshot-Taken-At", Clock.iso8601(Double(snap.takenAtMillis) / 1000)))
        return r
    }
}
