import Glibc

/// Routes that exist only with `CC_TEST_ROUTES=true`: they let tests and load
/// scenarios hold a worker, crash one, or make a response of a given size.
public enum TestRoutes {
    public static func register(_ r: inout Router) {
        r.get("/api/test/sleep", sleep)
        r.get("/api/test/crash", crash)
        r.get("/api/test/large", large)
        r.post("/api/test/echo", echo)
        StorageTestRoutes.register(&r)
    }

    static func milliseconds(_ req: Request, max: Int) throws -> Int {
        guard let raw = req.query["ms"] else { return 1000 }
        guard let ms = Int(raw), (0...max).contains(ms) else {
            throw APIError.badRequest("ms must be a whole number in 0...\(max)")
        }
        return ms
    }

    static func sleep(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let ms = try milliseconds(req, max: 600_000)
        Clock.sleep(seconds: Double(ms) / 1000)
        return .json { w in
            w.beginObject()
            w.field("slept_ms", ms)
            w.field("pid", Int(ctx.pid))
            w.endObject()
        }
    }

    static func crash(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        fatalError("crash requested by /api/test/crash")
    }

    static func large(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let raw = req.query["bytes"] ?? "1100000"
        guard let n = Int(raw), (0...(64 << 20)).contains(n) else {
            throw APIError.badRequest("bytes must be a whole number in 0...67108864")
        }
        var body = Array("{\"data\":\"".utf8)
        body.append(contentsOf: [UInt8](repeating: UInt8(ascii: "x"), count: n))
        body.append(contentsOf: Array("\"}".utf8))
        return .json(bytes: body)
    }

    static func echo(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        .json { w in
            w.beginObject()
            w.field("bytes", req.body.count)
            w.endObject()
        }
    }
}
