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
    /// Counted at the same seam as the access log (`account`).
    private var metrics: RequestMetrics?

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
        // After our handlers: TERM (fast stop) and crashes write the buffered
        // access log before the process goes.
        accessLog.flushOnFatalSignals()
        defer { accessLog.flush() } // QUIT, max-requests recycle, accept failures
        // Die with the master rather than linger as an orphan in accept().
        cc_set_parent_death_signal(SIGKILL)
        if let masterPid, getppid() != masterPid { return 0 }

        let config = context.config
        let startedMillis = Clock.wallMillis()
        let status = WorkerStatusWriter(
            directory: config.workerStatusDir,
            record: WorkerStatusRecord(pid: getpid(), pool: context.pool, slot: slot, startedMillis: startedMillis))
        if status == nil { context.log.warning("cannot write worker status file", ["dir": config.workerStatusDir]) }
        let store = MetricsStore(runDir: config.runDir)
        store.ensureDirectory()
        metrics = context.service(RequestMetrics.self) {
            RequestMetrics(path: store.workerPath(pid: getpid(), startedMillis: startedMillis))
        }
        defer { metrics?.write(nowNanos: Clock.monotonicNanos()) }

        let limit = config.maxRequests == 0 ? Int.max
            : config.maxRequests + (config.maxRequestsJitter > 0 ? Int.random(in: 0...config.maxRequestsJitter) : 0)
        // libfcgi's own accept adds a 2 s poll per connection (its AF_UNIX
        // "keeper" check), so the worker accepts itself and hands libfcgi a
        // connected fd. listen_sock -1: libfcgi never blocks in accept, even
        // after a connection that sent no valid request (it then fails fast).
        // FCGI_WEB_SERVER_ADDRS is enforced only by libfcgi's accept: keep it then.
        let ownAccept = getenv("FCGI_WEB_SERVER_ADDRS") == nil
        let isTCP = cc_socket_is_tcp(0) != 0
        var request = FCGX_Request()
        FCGX_InitRequest(&request, ownAccept ? -1 : 0, 0)
        var acceptErrors = 0

        while cc_worker_stop_requested() == 0 {
            var accepted = false
            if ownAccept && request.ipcFd < 0 {
                let fd = cc_accept_connection(0, isTCP ? 1 : 0)
                if cc_worker_take_reopen() != 0 { reopenLogs() }
                if fd < 0 {
                    let err = errno
                    if cc_worker_stop_requested() != 0 { break }
                    // Signals, and a peer that went away between connect and
                    // accept: libfcgi retried these silently too.
                    if err == EINTR || err == ECONNABORTED || err == EPROTO { continue }
                    // SO_RCVTIMEO on the listener (the master's acceptWakeup):
                    // idle for a while, so nothing should wait in the buffer.
                    if err == EAGAIN || err == EWOULDBLOCK { idle(); continue }
                    if noteAcceptError(&acceptErrors, "errno \(err)") { return 1 }
                    continue
                }
                request.ipcFd = fd
                // FCGX_Accept_r first "finishes" the previous request and
                // closes ipcFd unless keepConnection is set; the begin record
                // it reads next sets keepConnection to what nginx asked for.
                request.keepConnection = 1
                accepted = true
                // The deadline starts with the connection, so it covers the
                // params FCGX_Accept_r reads as well as the body.
                _ = cc_read_deadline_arm(fd, readDeadlineMillis)
            }
            // A connection nginx kept open (fastcgi_keep_conn): the next
            // request is read from it with no accept to wake up from, so
            // nothing may wait in the buffer meanwhile.
            if request.ipcFd >= 0 && request.keepConnection != 0 && !accepted { idle() }
            let rc = FCGX_Accept_r(&request)
            // USR1 usually lands while blocked in accept; checking after it
            // means the request just accepted already goes to the new file.
            if cc_worker_take_reopen() != 0 { reopenLogs() }
            if rc < 0 {
                if cc_read_deadline_disarm() != 0 {
                    context.log.warning("request not read within the read deadline; connection dropped",
                                        ["stage": "params", "deadline_ms": String(readDeadlineMillis)])
                }
                if cc_worker_stop_requested() != 0 { break }
                // The connection (ours, or one nginx kept open) ended without
                // a valid request; libfcgi has closed it. Not an accept failure.
                if ownAccept { continue }
                if rc == -EAGAIN || rc == -EWOULDBLOCK { idle(); continue }
                if noteAcceptError(&acceptErrors, String(rc)) { return 1 }
                continue
            }
            acceptErrors = 0
            // libfcgi's own accept, or a connection nginx kept open: the
            // request is known only now, and its body is still to be read.
            if !accepted { _ = cc_read_deadline_arm(request.ipcFd, readDeadlineMillis) }
            serve(&request, status: status)
            accessLog.flushIfDue()
            metrics?.writeIfDue(nowNanos: Clock.monotonicNanos())
            context.requestsServed += 1
            if context.requestsServed >= limit {
                context.log.info("max requests reached; recycling", ["served": String(context.requestsServed)])
                break
            }
        }
        FCGX_Free(&request, 1)
        return 0
    }

    /// Nothing to serve for a while: what is buffered goes out now.
    private func idle() {
        accessLog.flush()
        metrics?.write(nowNanos: Clock.monotonicNanos())
    }

    /// The one place a finished request is accounted for: its access-log
    /// line and its metrics. `route` is the router's pattern (nil: none).
    private func account(requestID: String, method: String, path: String, route: String?, status: Int,
                         errorCode: String? = nil, started: UInt64, bytes: Int, remote: String) {
        let nanos = Clock.monotonicNanos() &- started
        metrics?.record(route: route, method: method, status: status, errorCode: errorCode,
                        seconds: Double(nanos) / 1e9)
        guard accessLog.isEnabled else { return }
        accessLog.write(line: Self.accessLine(requestID: requestID, method: method, path: path, status: status,
                                              ms: Double(nanos) / 1e6, bytes: bytes, remote: remote, pid: context.pid))
    }

    private func reopenLogs() {
        context.log.reopen()
        accessLog.reopen()
    }

    /// True when accept has failed too often in a row to go on.
    private func noteAcceptError(_ count: inout Int, _ what: String) -> Bool {
        count += 1
        if count > 50 {
            context.log.error("accept keeps failing; exiting", ["rc": what])
            return true
        }
        Clock.sleep(seconds: 0.05)
        return false
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
        // (504) would only burn a worker: skip it, like nginx's 499. nginx
        // gives up only after the request timeout, so a request it sent a
        // moment ago needs no poll to find out.
        if Self.mayHaveBeenAbandoned(requestStart: fcgi.envp.flatMap { FCGX_GetParam("REQUEST_START", $0) },
                                     now: Clock.wallSeconds(), threshold: abandonCheckAfter),
           Self.peerHasHungUp(fcgi.ipcFd) {
            _ = cc_read_deadline_disarm()
            FCGX_Finish_r(&fcgi)
            status?.end(nowMillis: Clock.wallMillis())
            context.log.warning("client gone before the request started; skipped",
                                ["method": method, "path": path, "request_id": requestID])
            account(requestID: requestID, method: method, path: path, route: router.pattern(method: method, path: path),
                    status: 499, started: started, bytes: 0, remote: remote)
            return
        }
        let body = FastCGIExchange.readBody(fcgi.in, contentLength: headers["content-length"], limit: context.config.maxBody)
        // The rest of stdin is read before the handler runs, so the deadline
        // covers the whole request and nothing is left unread at close.
        FastCGIExchange.drain(fcgi.in)
        let deadlinePassed = cc_read_deadline_disarm() != 0
        let response: Response
        var route: String?
        switch body {
        case _ where deadlinePassed, .incomplete:
            drop(&fcgi, status: status, started: started, deadlinePassed: deadlinePassed, method: method, path: path,
                 requestID: requestID, remote: remote)
            return
        case .tooLarge:
            route = router.pattern(method: method, path: path)
            response = APIError(413, "payload_too_large", "Request body exceeds \(context.config.maxBody) bytes")
                .response(requestID: requestID)
        case .invalid:
            route = router.pattern(method: method, path: path)
            response = APIError.badRequest("Invalid Content-Length").response(requestID: requestID)
        case .ok(let bytes):
            var req = Request(method: method, path: path, rawQuery: query, headers: headers, body: bytes,
                              requestID: requestID, remoteAddress: remote)
            req.isHTTPS = FastCGIExchange.param("HTTPS", envp) == "on"
            (response, route) = router.route(req, context: context)
        }
        let bytes = FastCGIExchange.write(response, requestID: requestID, headOnly: method == "HEAD", to: fcgi.out)
        Self.finish(&fcgi)
        status?.end(nowMillis: Clock.wallMillis())
        account(requestID: requestID, method: method, path: path, route: route, status: response.status,
                errorCode: response.errorCode, started: started, bytes: bytes, remote: remote)
    }

    /// Gives up on a request that was not read whole: its peer stopped
    /// sending (SO_RCVTIMEO, EOF) or was still sending at the read deadline.
    /// nginx sends whole requests at once, so the peer is a direct client of
    /// the socket; it gets no answer, and the worker goes back to accept.
    private func drop(_ fcgi: inout FCGX_Request, status: WorkerStatusWriter?, started: UInt64, deadlinePassed: Bool,
                      method: String, path: String, requestID: String, remote: String) {
        if fcgi.ipcFd >= 0 { shutdown(fcgi.ipcFd, Int32(SHUT_RDWR)) }
        FCGX_Finish_r(&fcgi)
        status?.end(nowMillis: Clock.wallMillis())
        context.log.warning(deadlinePassed ? "request not read within the read deadline; connection dropped"
                                           : "request body incomplete; connection dropped",
                            ["method": method, "path": path, "request_id": requestID, "remote": remote,
                             "deadline_ms": String(readDeadlineMillis)])
        account(requestID: requestID, method: method, path: path, route: router.pattern(method: method, path: path),
                status: deadlinePassed ? 408 : 400, started: started, bytes: 0, remote: remote)
    }

    /// How long a worker reads one request (params, body, and the rest of
    /// stdin) before it drops the connection: half the request timeout, so a
    /// request that waited in the backlog behind a slow sender still gets a
    /// worker before nginx's own timeout (the same figure) answers it 504.
    /// nginx writes a whole request at once, so it never comes near this.
    var readDeadlineMillis: Int { max(1, Int(context.config.requestTimeout * 500)) }

    /// Ends a served request. libfcgi's close is shutdown + poll + read to
    /// EOF + close (its lingering close); a plain close() does as well once
    /// stdin has been read to its end, because nothing is left unread that
    /// would make the kernel reset the connection (ECONNRESET at nginx).
    /// Anything else (a read error, stdin not at its end, nginx asking to
    /// keep the connection, a failed write) stays on libfcgi's path.
    static func finish(_ fcgi: inout FCGX_Request) {
        let closeHere = fcgi.keepConnection == 0 && FCGX_HasSeenEOF(fcgi.in) != 0 && FCGX_GetError(fcgi.in) == 0
        if closeHere { fcgi.keepConnection = 1 }
        FCGX_Finish_r(&fcgi) // frees streams and params; closes only on error now
        if closeHere && fcgi.ipcFd >= 0 {
            close(fcgi.ipcFd)
            fcgi.ipcFd = -1
        }
    }

    /// Seconds a request must have waited since nginx sent it before it is
    /// worth asking the kernel whether nginx is still there.
    var abandonCheckAfter: Double { min(1.0, context.config.requestTimeout / 4) }

    /// `requestStart` is nginx's `$msec` (REQUEST_START) when it built the
    /// FastCGI request. Without it (another web server, an old nginx config)
    /// every request is checked, as before it existed.
    static func mayHaveBeenAbandoned(requestStart: UnsafePointer<CChar>?, now: Double, threshold: Double) -> Bool {
        guard let requestStart else { return true }
        var end: UnsafeMutablePointer<CChar>?
        let started = strtod(requestStart, &end)
        guard let end, end != UnsafeMutablePointer(mutating: requestStart), end.pointee == 0, started > 0 else {
            return true
        }
        return now - started >= threshold
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
