@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The default views nginx sends itself (nginx/control-center-views.conf):
/// the same answer as a worker's, with an exact age, and only while fresh.
final class NginxViewRouteTests: XCTestCase {
    /// The access-log line of one request, from either the workers or nginx.
    private func logLine(_ s: TestServer, _ requestID: String) throws -> [String: Any] {
        XCTAssertTrue(waitUntil(5) { s.accessLog().contains(requestID) }, "access line for \(requestID)")
        let line = try XCTUnwrap(s.accessLog().split(separator: "\n").first { $0.contains(requestID) })
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    private func refreshes(_ s: TestServer, _ kind: String) throws -> Int {
        let snaps = try XCTUnwrap(try s.get("/api/pool/status").json?["snapshots"] as? [String: Any])
        return try XCTUnwrap((snaps[kind] as? [String: Any])?["refreshes"] as? Int)
    }

    /// A view left by an older master (one that put command lines in it)
    /// must never be sent: the master removes every view as it starts.
    func testViewsOfAPreviousMasterAreNotServed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-oldview-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/views", withIntermediateDirectories: true)
        let planted = #"{"processes":[{"pid":1,"cmdline":"--password=left-behind"}],"snapshot":{"age_ms":"#
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/views/processes.json", contents: Data(planted.utf8)))
        let s = try TestServer(env: ["CC_STATE_DIR": dir, "CC_CACHE_TTL_PROCESSES": "60"])
        defer { s.stop() }
        let r = try s.get("/api/system/processes")
        XCTAssertEqual(r.status, 200)
        XCTAssertFalse(r.text.contains("left-behind"), "a previous master's view was sent")
        XCTAssertFalse(r.text.contains("\"cmdline\""))
    }

    /// The collector samples once as it starts and then not for an hour:
    /// these tests are about what requests do with a fresh or stale cache.
    static let idleCollector = ["CC_COLLECT_INTERVAL": "3600"]

    func testFreshDefaultViewsComeFromNginxWithTheirAge() throws {
        let s = try TestServer(env: Self.idleCollector.merging(["CC_CACHE_TTL_PROCESSES": "30", "CC_CACHE_TTL_STATS": "30",
                                                                "CC_CACHE_TTL_NETWORK": "30"]) { $1 })
        defer { s.stop() }
        for kind in ["processes", "stats", "network"] {
            let path = "/api/system/\(kind)"
            // The collector's first sample made the snapshot; a worker or nginx sends it.
            let first = try s.get(path)
            XCTAssertEqual(first.status, 200)
            let before = try refreshes(s, kind)
            usleep(30_000)
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

            let j = try XCTUnwrap(r.json, r.text)
            let snap = try XCTUnwrap(j["snapshot"] as? [String: Any])
            let age = try XCTUnwrap(snap["age_ms"] as? Int)
            XCTAssertEqual(r.headers["x-snapshot-age-ms"], String(age), "header and body agree")
            XCTAssertGreaterThanOrEqual(age, 25, "the age grows while the file waits")
            XCTAssertEqual(r.headers["x-snapshot-taken-at"], snap["taken_at"] as? String)
            XCTAssertEqual(snap["taken_at"] as? String, (first.json?["snapshot"] as? [String: Any])?["taken_at"] as? String,
                           "same snapshot as the worker served")
            XCTAssertEqual(r.headers["content-type"], "application/json")
            XCTAssertEqual(r.headers["x-content-type-options"], "nosniff")
            XCTAssertEqual(r.headers["cache-control"], "no-store")
            XCTAssertEqual(try refreshes(s, kind), before, "nginx sends the file; nothing is rebuilt")
        }
        // A query, another method or HEAD keep their usual answers.
        let limited = try s.get("/api/system/processes?limit=3")
        XCTAssertEqual((limited.json?["processes"] as? [Any])?.count, 3)
        XCTAssertNil(try logLine(s, try XCTUnwrap(limited.headers["x-request-id"]))["served_by"])
        let post = try s.request("POST", "/api/system/processes")
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.errorCode, "method_not_allowed")
        let head = try s.request("HEAD", "/api/system/stats")
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)

        // nginx-sent answers carry their own request ids (cc_views.lua), in
        // the form of nginx's: 32 hex digits, never repeated.
        var ids = Set<String>()
        for _ in 0..<20 {
            let r = try s.get("/api/system/stats")
            let id = try XCTUnwrap(r.headers["x-request-id"])
            XCTAssertNotNil(id.range(of: "^[0-9a-f]{32}$", options: .regularExpression), id)
            ids.insert(id)
        }
        XCTAssertEqual(ids.count, 20, "every answer has its own id")
        XCTAssertEqual(try logLine(s, try XCTUnwrap(ids.first))["served_by"] as? String, "nginx-view",
                       "the id names the nginx access line")
    }

    func testStaleOrMissingViewsGoToTheWorkers() throws {
        let s = try TestServer(env: Self.idleCollector.merging(["CC_CACHE_TTL_PROCESSES": "0.3"]) { $1 })
        defer { s.stop() }
        XCTAssertEqual(try s.get("/api/system/processes").status, 200)
        usleep(400_000)
        let before = try refreshes(s, "processes")
        let r = try s.get("/api/system/processes")
        XCTAssertEqual(r.status, 200)
        XCTAssertNil(try logLine(s, try XCTUnwrap(r.headers["x-request-id"]))["served_by"], "stale view: a worker")
        if geteuid() == 0 {
            // Workers run as CC_USER: they serve the collector's copy, stale
            // and saying so, and never scan /proc themselves.
            XCTAssertEqual(try refreshes(s, "processes"), before, "a worker that dropped root never refreshes")
            XCTAssertGreaterThanOrEqual(Int(r.headers["x-snapshot-age-ms"] ?? "") ?? 0, 300, "the stale copy, with its age")
        } else {
            XCTAssertEqual(try refreshes(s, "processes"), before + 1, "and that worker refreshed it")
        }

        // A refresh under way (its marker newer than the view): nginx sends
        // the previous copy, as the workers would, instead of queueing on them.
        usleep(400_000)
        let marker = s.stateDir + "/views/processes.refreshing"
        XCTAssertTrue(FileManager.default.createFile(atPath: marker, contents: nil))
        let during = try s.get("/api/system/processes")
        XCTAssertEqual(try logLine(s, try XCTUnwrap(during.headers["x-request-id"]))["served_by"] as? String,
                       "nginx-view")
        XCTAssertGreaterThanOrEqual(Int(during.headers["x-snapshot-age-ms"] ?? "") ?? 0, 300, "honestly stale")
        // A marker older than the 2 s grace is a refresher that died: workers again.
        var old = [timespec(tv_sec: time(nil) - 3, tv_nsec: 0), timespec(tv_sec: time(nil) - 3, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, marker, &old, 0), 0)
        let dead = try s.get("/api/system/processes")
        XCTAssertNil(try logLine(s, try XCTUnwrap(dead.headers["x-request-id"]))["served_by"])

        unlink(s.stateDir + "/views/processes.json")
        let missing = try s.get("/api/system/processes")
        XCTAssertEqual(missing.status, 200)
        XCTAssertNotNil(missing.json?["snapshot"] as? [String: Any])
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
