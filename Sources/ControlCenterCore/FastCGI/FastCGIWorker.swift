import CFastCGI
import CSupport
import Foundation
import Glibc

/// One worker process: a single-threaded, blocking libfcgi accept loop on
/// fd 0, the listening socket the master handed over.
public final class FastCGIWorker {
    let context: WorkerContext
    let router: Router
    let accessLog: Log
    let slot: Int
    let masterPid: Int32?

    public init(context: WorkerContext, router: Router, accessLog: Log, slot: Int, masterPid: Int32?) {
        self.context = context
        self.router = router
        self.accessLog = accessLog
        self.slot = slot
        self.masterPid = masterPid
    }

    public func run() -> Int32 {
        guard FCGX_Init() == 0 else {
            context.log.error("FCGX_Init failed")
            return 1
        }
        // After FCGX_Init: libfcgi installs its own SIGTERM/SIGUSR1 handlers.
        cc_worker_install_signals()
        // Die with the master rather than linger as an orphan in accept().
        cc_set_parent_death_signal(SIGKILL)
        if let masterPid, getppid() != masterPid { return 0 }

        let config = context.config
        let status = WorkerStatusWriter(
            directory: config.workerStatusDir,
            record: WorkerStatusRecord(pid: getpid(), pool: context.pool, slot: slot, startedMillis: Clock.wallMillis()))
        if status == nil { context.log.warning("cannot write worker status file", ["dir": config.workerStatusDir]) }

        let limit = config.maxRequests == 0 ? Int.max
            : config.maxRequests + (config.maxRequestsJitter > 0 ? Int.random(in: 0...config.maxRequestsJitter) : 0)
        var request = FCGX_Request()
        FCGX_InitRequest(&request, 0, 0)
        var acceptErrors = 0

        while cc_worker_stop_requested() == 0 {
            let rc = FCGX_Accept_r(&request)
            // USR1 usually lands while blocked in accept; checking after it
            // means the request just accepted already goes to the new file.
            if cc_worker_take_reopen() != 0 {
                context.log.reopen()
                accessLog.reopen()
            }
            if rc < 0 {
                if cc_worker_stop_requested() != 0 { break }
                acceptErrors += 1
                if acceptErrors > 50 {
                    context.log.error("accept keeps failing; exiting", ["rc": String(rc)])
                    return 1
                }
                Clock.sleep(seconds: 0.05)
                continue
            }
            acceptErrors = 0
            serve(&request, status: status)
            context.requestsServed += 1
            if context.requestsServed >= limit {
                context.log.info("max requests reached; recycling", ["served": String(context.requestsServed)])
                break
            }
        }
        FCGX_Free(&request, 1)
        return 0
    }

    private func serve(_ fcgi: inout FCGX_Request, status: WorkerStatusWriter?) {
        let started = Clock.monotonicNanos()
        let envp = fcgi.envp
        let method = FastCGIExchange.param("REQUEST_METHOD", envp) ?? "GET"
        let uri = FastCGIExchange.param("REQUEST_URI", envp) ?? "/"
        let path: String
        if let docURI = FastCGIExchange.param("DOCUMENT_URI", envp), !docURI.isEmpty {
            path = docURI
        } else {
            path = String(uri.prefix { $0 != "?" })
        }
        let query = FastCGIExchange.param("QUERY_STRING", envp) ?? ""
        var requestID = FastCGIExchange.param("REQUEST_ID", envp) ?? ""
        if requestID.isEmpty { requestID = Self.makeRequestID() }
        let remote = FastCGIExchange.param("REMOTE_ADDR", envp) ?? ""
        status?.begin(method: method, path: path, nowMillis: Clock.wallMillis())

        let headers = FastCGIExchange.headers(envp)
        // A request that waited in the backlog until nginx gave up on it
        // (504) would only burn a worker: skip it, like nginx's 499.
        if Self.peerHasHungUp(fcgi.ipcFd) {
            FCGX_Finish_r(&fcgi)
            status?.end(nowMillis: Clock.wallMillis())
            context.log.warning("client gone before the request started; skipped",
                                ["method": method, "path": path, "request_id": requestID])
            if accessLog.isEnabled {
                accessLog.write(line: Self.accessLine(requestID: requestID, method: method, path: path, status: 499,
                                                      ms: Double(Clock.monotonicNanos() - started) / 1e6, bytes: 0,
                                                      remote: remote, pid: context.pid))
            }
            return
        }
        let response: Response
        switch FastCGIExchange.readBody(fcgi.in, contentLength: headers["content-length"], limit: context.config.maxBody) {
        case .tooLarge:
            response = APIError(413, "payload_too_large", "Request body exceeds \(context.config.maxBody) bytes")
                .response(requestID: requestID)
        case .invalid:
            response = APIError.badRequest("Invalid Content-Length").response(requestID: requestID)
        case .ok(let body):
            let req = Request(method: method, path: path, rawQuery: query, headers: headers, body: body,
                              requestID: requestID, remoteAddress: remote)
            response = router.handle(req, context: context)
        }
        FastCGIExchange.drain(fcgi.in)
        let bytes = FastCGIExchange.write(response, requestID: requestID, headOnly: method == "HEAD", to: fcgi.out)
        FCGX_Finish_r(&fcgi)
        status?.end(nowMillis: Clock.wallMillis())
        if accessLog.isEnabled {
            let ms = Double(Clock.monotonicNanos() - started) / 1e6
            accessLog.write(line: Self.accessLine(requestID: requestID, method: method, path: path,
                                                  status: response.status, ms: ms, bytes: bytes, remote: remote,
                                                  pid: context.pid))
        }
    }

    /// nginx closes its end when it stops waiting; the kernel reports that
    /// as RDHUP/HUP on our side even though its request bytes are still queued.
    static func peerHasHungUp(_ fd: Int32) -> Bool { cc_peer_hung_up(fd) != 0 }

    static func accessLine(requestID: String, method: String, path: String, status: Int, ms: Double,
                           bytes: Int, remote: String, pid: Int32) -> [UInt8] {
        var w = JSONWriter(capacity: 200)
        w.beginObject()
        w.field("time", timestamp: Clock.wallSeconds())
        w.field("request_id", requestID)
        w.field("method", method)
        w.field("path", path)
        w.field("status", status)
        w.field("duration_ms", ms, places: 3)
        w.field("pid", Int(pid))
        w.field("bytes", bytes)
        w.field("remote", remote)
        w.endObject()
        var line = w.bytes
        line.append(0x0A)
        return line
    }

    static func makeRequestID() -> String {
        var g = SystemRandomNumberGenerator()
        let a = g.next() as UInt64, b = g.next() as UInt64
        return String(a, radix: 16) + String(b, radix: 16)
    }
}
