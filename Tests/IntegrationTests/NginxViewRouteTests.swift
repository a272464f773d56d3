@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The default views nginx sends itself (control-center-views.conf): the
/// same bytes as a worker's answer, sent as a static file while the
/// collector keeps it, and never older than CC_CACHE_MAX_STALE (the master
/// removes it when the collector dies or stops writing).
final class NginxViewRouteTests: XCTestCase {
    /// The access-log line of one request, from either the workers or nginx.
    private func logLine(_ s: TestServer, _ requestID: String) throws -> [String: Any] {
        XCTAssertTrue(waitUntil(5) { s.accessLog().contains("\"\(requestID)\"") }, "access line for \(requestID)")
        let line = try XCTUnwrap(s.accessLog().split(separator: "\n").first { $0.contains("\"\(requestID)\"") })
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    private func servedBy(_ s: TestServer, _ r: HTTPResponse) throws -> String? {
        try logLine(s, try XCTUnwrap(r.headers["x-request-id"]))["served_by"] as? String
    }

    private func takenAtMillis(_ r: HTTPResponse) throws -> Int {
        try XCTUnwrap((r.json?["snapshot"] as? [String: Any])?["taken_at_ms"] as? Int, r.text)
    }

    private func collectorPid(_ s: TestServer) -> pid_t? {
        TestServer.children(of: s.masterPid).first { pid in
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return cmd.split(separator: "\0").dropFirst().first == "collector"
        }
    }

    /// A view left by an older master (one that put command lines in it)
    /// must never be sent: the master removes every view as it starts.
    func testViewsOfAPreviousMasterAreNotServed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-oldview-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/views", withIntermediateDirectories: true)
        let planted = #"{"processes":[{"pid":1,"cmdline":"--password=left-behind"}],"snapshot":{"taken_at_ms":1}}"#
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/views/processes.json", contents: Data(planted.utf8)))
        let s = try TestServer(env: ["CC_STATE_DIR": dir, "CC_CACHE_TTL_PROCESSES": "60"])
        defer { s.stop() }
        let r = try s.get("/api/system/processes")
        XCTAssertEqual(r.status, 200)
        XCTAssertFalse(r.text.contains("left-behind"), "a previous master's view was sent")
        XCTAssertFalse(r.text.contains("\"cmdline\""))
    }

    func testFreshDefaultViewsAreStaticFilesSentByNginx() throws {
        let s = try TestServer(env: ["CC_CACHE_TTL_PROCESSES": "30", "CC_CACHE_TTL_NETWORK": "30"])
        defer { s.stop() }
        for kind in ["processes", "stats", "network"] {
            let path = "/api/system/\(kind)"
            let file = s.stateDir + "/views/\(kind).json"
            XCTAssertTrue(waitUntil(10) { FileManager.default.fileExists(atPath: file) }, "the collector wrote \(kind)")
            let r = try s.get(path)
            XCTAssertEqual(r.status, 200)
            let line = try logLine(s, try XCTUnwrap(r.headers["x-request-id"]))
            XCTAssertEqual(line["served_by"] as? String, "nginx-view", "\(kind): fresh view sent by nginx")
            XCTAssertEqual(line["path"] as? String, path)
            XCTAssertEqual(line["status"] as? Int, 200)
            XCTAssertNotNil(line["duration_ms"] as? Double)
            let time = try XCTUnwrap(line["time"] as? String)
            XCTAssertNotNil(time.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression),
                            "the workers' time format: \(time)")

            // The file as it was when sent (the collector may have replaced it since:
            // compare with whichever copy has the same snapshot time).
            let taken = try takenAtMillis(r)
            if let now = FileManager.default.contents(atPath: file),
               (try? JSONSerialization.jsonObject(with: now) as? [String: Any])
                .flatMap({ ($0["snapshot"] as? [String: Any])?["taken_at_ms"] as? Int }) == taken {
                XCTAssertEqual(Array(now), r.body, "\(kind): the file's bytes, sent as they are")
            }
            let snap = try XCTUnwrap(r.json?["snapshot"] as? [String: Any])
            XCTAssertEqual(Set(snap.keys), ["taken_at", "taken_at_ms"], "the same shape as a worker's answer")
            XCTAssertEqual(r.headers["x-snapshot-taken-at"], Clock.httpDate(seconds: taken / 1000))
            XCTAssertEqual(r.headers["last-modified"], r.headers["x-snapshot-taken-at"], "the file's mtime is the snapshot's time")
            XCTAssertNil(r.headers["etag"], "no validators, as from a worker")
            XCTAssertEqual(r.headers["content-type"], "application/json")
            XCTAssertEqual(r.headers["x-content-type-options"], "nosniff")
            XCTAssertEqual(r.headers["cache-control"], "no-store")
        }
        // A query, another method, a token or a session cookie go to the workers.
        let limited = try s.get("/api/system/processes?limit=3")
        XCTAssertEqual((limited.json?["processes"] as? [Any])?.count, 3)
        XCTAssertNil(try servedBy(s, limited))
        for headers in [["Authorization": "Bearer x"], ["Cookie": "cc_session=x"]] {
            let r = try s.get("/api/system/processes", headers: headers)
            XCTAssertNil(try servedBy(s, r), "\(headers): the workers answer by role")
        }
        let post = try s.request("POST", "/api/system/processes")
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.errorCode, "method_not_allowed")
        let head = try s.request("HEAD", "/api/system/stats")
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)
        XCTAssertEqual(try servedBy(s, head), "nginx-view")

        // nginx-sent answers carry their own request ids, never repeated, the
        // same in the header and the access line.
        var ids = Set<String>()
        for _ in 0..<20 {
            let r = try s.get("/api/system/stats")
            let id = try XCTUnwrap(r.headers["x-request-id"])
            XCTAssertNotNil(id.range(of: #"^\d+-\d+-\d+-\d+\.\d{3}$"#, options: .regularExpression), id)
            ids.insert(id)
        }
        XCTAssertEqual(ids.count, 20, "every answer has its own id")
        XCTAssertEqual(try logLine(s, try XCTUnwrap(ids.first))["served_by"] as? String, "nginx-view")
    }

    /// The collector SIGKILLed: the master removes the views as it reaps it,
    /// the workers answer meanwhile, and the restarted collector writes them
    /// again. SIGSTOPped for longer than CC_CACHE_MAX_STALE: no answer, from
    /// nginx or a worker, is ever older than that, and no worker scans /proc
    /// (the snapshot's time stops moving; then 503).
    func testViewsNeverOutliveTheirCollector() throws {
        let maxStale = 2.0
        let s = try TestServer(env: ["CC_CACHE_TTL_PROCESSES": "0.5", "CC_CACHE_TTL_STATS": "0.5",
                                     "CC_CACHE_TTL_NETWORK": "0.5", "CC_CACHE_MAX_STALE": String(maxStale)])
        defer { s.stop() }
        let view = s.stateDir + "/views/processes.json"
        XCTAssertTrue(waitUntil(10) { FileManager.default.fileExists(atPath: view) })
        XCTAssertEqual(try servedBy(s, try s.get("/api/system/processes")), "nginx-view")

        let first = try XCTUnwrap(collectorPid(s))
        kill(first, SIGKILL)
        XCTAssertTrue(waitUntil(2) { !FileManager.default.fileExists(atPath: view) }, "removed as the collector is reaped")
        XCTAssertTrue(waitUntil(10) { (self.collectorPid(s) ?? first) != first }, "the master restarts it")
        XCTAssertTrue(waitUntil(10) { FileManager.default.fileExists(atPath: view) }, "and the new one writes it again")
        XCTAssertTrue(s.log().contains("removed the nginx-sent views"), "the removal is logged")

        let collector = try XCTUnwrap(collectorPid(s))
        kill(collector, SIGSTOP)
        defer { kill(collector, SIGCONT) }
        let stoppedAt = Clock.wallMillis()
        var nginxAnswers = 0, unavailable = 0
        var newestTaken = 0
        while Double(Clock.wallMillis() - stoppedAt) < (maxStale + 1.5) * 1000 {
            let r = try s.get("/api/system/processes")
            // nginx's ids are pid-connection-request-time; the workers' 32 hex digits
            // (the access log is buffered for a second, too slow to ask here).
            let byNginx = r.headers["x-request-id"]?.contains("-") ?? false
            if r.status == 503 {
                unavailable += 1
                XCTAssertFalse(byNginx)
                XCTAssertEqual(r.errorCode, "service_unavailable")
                XCTAssertGreaterThan(Clock.wallMillis() - Int64(newestTaken), Int64(maxStale * 1000) - 150,
                                     "503 only once the newest copy is past CC_CACHE_MAX_STALE")
            } else {
                XCTAssertEqual(r.status, 200, r.text)
                let taken = try takenAtMillis(r)
                // One master tick (0.1 s) and the file time's millisecond of slack.
                XCTAssertLessThan(Clock.wallMillis() - Int64(taken), Int64(maxStale * 1000) + 250,
                                  "never older than CC_CACHE_MAX_STALE (\(byNginx ? "nginx" : "a worker"))")
                XCTAssertLessThan(Int64(taken), stoppedAt, "no worker scanned /proc: the snapshot's time stopped moving")
                newestTaken = max(newestTaken, taken)
                if byNginx { nginxAnswers += 1 }
            }
            usleep(50_000)
        }
        XCTAssertGreaterThan(nginxAnswers, 0, "nginx sent the stale view while it was young enough")
        XCTAssertGreaterThan(unavailable, 0, "then the workers said 503")
        XCTAssertFalse(FileManager.default.fileExists(atPath: view), "the master removed the view")
        XCTAssertTrue(waitUntil(2) { s.log().contains("older than CC_CACHE_MAX_STALE") }, s.log())
        kill(collector, SIGCONT)
        XCTAssertTrue(waitUntil(10) { FileManager.default.fileExists(atPath: view) }, "fresh again once it resumes")
        XCTAssertEqual(try s.get("/api/system/processes").status, 200)
    }

    func testWithoutPublicReadsNginxSendsNothingItself() throws {
        let s = try TestServer(env: ["CC_PUBLIC_READ": "false"])
        defer { s.stop() }
        let r = try s.get("/api/system/processes")
        XCTAssertEqual(r.status, 401, "the token check stays with the workers")
        XCTAssertEqual(r.headers["www-authenticate"]?.hasPrefix("Bearer"), true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.stateDir + "/views/processes.json"))
    }
}
