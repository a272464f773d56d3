import Foundation

/// `POST /api/system/processes/{pid}/signal` (admin). A worker never sends
/// a signal (it runs unprivileged, and a signal is an action on the host):
/// it records the request in `process_signals` with its audit event (user
/// and role) in one transaction, wakes the supervisor, and waits for its
/// answer for at most `answerSeconds` (+1 s of margin, so that a request the
/// supervisor refuses as expired is never sent after its client was told so).
/// It runs in the storage pool (nginx sends it there).
enum ProcessSignalRoutes {
    static func register(_ r: inout Router) {
        r.post("/api/system/processes/{pid}/signal", signal)
    }

    /// How long a request may wait for the supervisor before it is refused unsent.
    static let answerSeconds = 5.0
    static let poll = 0.02

    static func invalid(_ field: String, _ why: String) -> APIError {
        APIError.badRequest("\(field): \(why)", code: "validation_error")
    }

    /// The body: `signal` (one of `ProcessSignal.Name`), optional
    /// `start_time` (the listing's, Unix seconds) as milliseconds.
    static func body(_ req: Request) throws -> (ProcessSignal.Name, Int64?) {
        let o = try JSONInput(req).object
        for k in o.keys.sorted() where k != "signal" && k != "start_time" { throw invalid(k, "is not accepted here") }
        let names = ProcessSignal.Name.allCases.map(\.rawValue).joined(separator: ", ")
        guard let raw = o["signal"], !(raw is NSNull) else { throw invalid("signal", "is required (\(names))") }
        guard let s = raw as? String, let signal = ProcessSignal.Name(rawValue: s) else { throw invalid("signal", "must be one of \(names)") }
        var start: Int64?
        if let v = o["start_time"], !(v is NSNull) {
            guard let n = v as? NSNumber, !JSONInput.isBool(n), n.doubleValue.isFinite, n.doubleValue >= 0, n.doubleValue < 1e11 else {
                throw invalid("start_time", "must be the process's start_time from the listing (Unix seconds)")
            }
            start = Int64((n.doubleValue * 1000).rounded())
        }
        return (signal, start)
    }

    static func signal(_ req: Request, _ ctx: WorkerContext) throws -> Response {
        let p = try Auth.requireRole(.admin, req, ctx)
        guard let pid = Int32(req.parameter("pid")), pid > 0 else {
            throw APIError.badRequest("pid must be a positive whole number", code: "invalid_pid")
        }
        let (signal, start) = try body(req)
        // A setting, not a passing state: 403, not 503 (nothing to retry).
        guard ctx.config.supervisor else {
            throw APIError(403, "supervisor_disabled", "Signals are sent by the supervisor, which this server does not run (CC_SUPERVISOR=false)")
        }
        let id = try Store.write(ctx) { db -> Int64 in
            let id = try ProcessSignalRepository(db).enqueue(pid: pid, signal: signal, startMillis: start, actor: p.user.username)
            var w = JSONWriter()
            w.beginObject()
            w.field("role", p.user.role.rawValue)
            w.field("signal", signal.rawValue)
            w.field("pid", Int(pid))
            w.field("request_id", Int(id))
            w.endObject()
            try Audit.record(db, actor: p.user.username, action: "process.signal", target: "pid \(pid)",
                             message: "requested SIG\(signal.rawValue) to pid \(pid)", data: String(decoding: w.bytes, as: UTF8.self))
            return id
        }
        Supervisor.wake(ctx.config)
        let deadline = Clock.monotonicSeconds() + answerSeconds + 1
        var answer: ProcessSignalRequest?
        repeat {
            Clock.sleep(seconds: poll)
            answer = try Store.read(ctx) { try ProcessSignalRepository($0).find(id) }
        } while answer?.status == .pending && Clock.monotonicSeconds() < deadline
        let message = answer?.message ?? ""
        switch answer?.status ?? .pending {
        case .sent:
            return .json { w in
                w.beginObject()
                w.field("success", true)
                w.field("pid", Int(pid))
                w.field("signal", signal.rawValue)
                w.field("message", message)
                w.endObject()
            }
        case .notFound: throw APIError.notFound("No process \(pid): \(message)")
        case .conflict: throw APIError(409, "start_time_mismatch", message)
        case .forbidden: throw APIError(403, "protected_process", message)
        case .failed: throw APIError.unavailable("The signal was not sent: \(message)")
        case .pending: throw APIError.unavailable("The supervisor did not answer within \(answerSeconds.formatted()) s; nothing was sent")
        }
    }
}
