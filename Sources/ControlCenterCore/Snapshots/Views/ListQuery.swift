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

/// The `"snapshot":{"taken_at","taken_at_ms"}` object every snapshot
/// response ends with, and the body's closing brace. The body holds no age:
/// nginx sends the default views as files (docs/architecture.md "Default
/// views sent by nginx"), so a worker's answer is the same bytes; a client
/// takes the age as its clock (or `Date`) minus `taken_at`.
enum SnapshotTail {
    static func close(_ w: inout JSONWriter, takenAtMillis: Int64) {
        w.beginObject("snapshot")
        w.field("taken_at", Clock.iso8601(Double(takenAtMillis) / 1000))
        w.field("taken_at_ms", Int(takenAtMillis))
        w.endObject()
        w.endObject()
    }

    /// `X-Snapshot-Taken-At`: the snapshot's time as an HTTP-date (RFC 9110
    /// 5.6.7, whole seconds), the form nginx gives a file's mtime in
    /// `Last-Modified`, so its answers and the workers' say the same.
    static func response(_ body: [UInt8], _ snap: LoadedSnapshot) -> Response {
        var r = Response.json(bytes: body)
        r.headers.append(("X-Snapshot-Taken-At", Clock.httpDate(seconds: Int(snap.takenAtMillis / 1000))))
        return r
    }
}
