@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The system routes through real nginx and a real pool: separate worker
/// processes sharing nothing but the snapshot files.
final class SystemRouteTests: XCTestCase {
    func testColdStartAcrossWorkersScansOnceThenServesEverything() throws {
        let server = try TestServer(env: ["CC_WORKERS": "4", "CC_CACHE_TTL_PROCESSES": "30"])
        defer { server.stop() }
        // Many clients at once on a cold cache: every worker must wait for
        // the collector's first copy rather than scan /proc itself.
        let group = DispatchGroup()
        let failures = LockedList()
        let port = server.port
        for _ in 0..<16 {
            group.enter()
            Thread.detachNewThread {
                do {
                    let r = try HTTPClient.request(port: port, path: "/api/system/processes")
                    if r.status != 200 { failures.add("status \(r.status)") }
                } catch { failures.add("\(error)") }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(failures.all, [])
        let status = try XCTUnwrap(try server.get("/api/pool/status").json)
        let snaps = try XCTUnwrap(status["snapshots"] as? [String: Any])
        let procs = try XCTUnwrap(snaps["processes"] as? [String: Any])
        XCTAssertEqual(procs["refreshes"] as? Int, 1, "one scan for a cold start across workers: the collector's")
        XCTAssertGreaterThan(try XCTUnwrap(procs["last_duration_ms"] as? Double), 0)
        XCTAssertNotNil(procs["last_taken_at"] as? String)
        for kind in ["connections", "network", "stats"] { XCTAssertNotNil(snaps[kind] as? [String: Any], kind) }
    }

    func testEveryRouteAnswersJSONWithSnapshotTime() throws {
        let server = try TestServer()
        defer { server.stop() }
        for path in ["/api/system/stats", "/api/system/info", "/api/system/processes",
                     "/api/system/processes?sort=memory&limit=5", "/api/system/processes/1",
                     "/api/system/network", "/api/system/ports?from=1&to=65535"] {
            let r = try server.get(path)
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.headers["content-type"], "application/json", path)
            XCTAssertNotNil(r.json, path)
            if path.hasPrefix("/api/system/info") || path.hasPrefix("/api/system/processes/") { continue }
            let taken = try XCTUnwrap((r.json?["snapshot"] as? [String: Any])?["taken_at_ms"] as? Int, path)
            XCTAssertEqual(r.headers["x-snapshot-taken-at"], Clock.httpDate(seconds: taken / 1000), path)
        }
        // The master's own pid is a process the pool can see.
        let master = try server.get("/api/system/processes/\(server.masterPid)")
        XCTAssertEqual(master.json?["name"] as? String, "control-center")
        let ports = try server.get("/api/system/ports?from=\(server.port)&to=\(server.port)")
        let nginx = try XCTUnwrap((ports.json?["ports"] as? [[String: Any]])?.first, "nginx's listening port is listed")
        XCTAssertNil(nginx["process_name"], "an anonymous client sees ports only, not their owners")
        let conns = try server.get("/api/system/connections?proto=tcp")
        XCTAssertEqual(conns.status, 401, "connections need a viewer token")
        XCTAssertEqual(conns.errorCode, "unauthorized")
    }

    func testBadParametersAre400JSON() throws {
        let server = try TestServer()
        defer { server.stop() }
        for path in ["/api/system/processes?limit=-1", "/api/system/processes?offset=abc", "/api/system/processes?sort=x",
                     "/api/system/processes?order=sideways", "/api/system/processes/abc", "/api/system/ports?from=9&to=1"] {
            let r = try server.get(path)
            XCTAssertEqual(r.status, 400, path)
            XCTAssertEqual(r.errorCode, "invalid_parameter", path)
        }
        let missing = try server.get("/api/system/processes/2147483646")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.errorCode, "not_found")
    }

    /// The real refresher (the CLI's timed refresh loop) SIGKILLed at
    /// arbitrary points: the published file stays valid every time.
    func testRefresherKilledAtRandomLeavesAValidSnapshot() throws {
        let dir = NSTemporaryDirectory() + "cc-kill-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ProcessInfo.processInfo.environment
        env["CC_STATE_DIR"] = dir
        let config = try Config(values: ["CC_STATE_DIR": dir])
        let cache = SnapshotCache(config: config)
        _ = try cache.forceRefresh(.processes)
        let path = SnapshotKind.processes.snapPath(cache.directory)
        for i in 0..<12 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: TestServer.binary)
            p.arguments = ["snapshot", "processes", "--repeat", "100000"]
            p.environment = env
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            usleep(useconds_t(30_000 + (i * 17_000) % 90_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTAssertNotNil(LoadedSnapshot.read(path: path, kind: .processes), "valid after kill \(i)")
        }
        // Its lock died with it: a refresh goes through at once.
        let t0 = Clock.monotonicSeconds()
        XCTAssertNoThrow(try cache.forceRefresh(.processes))
        XCTAssertLessThan(Clock.monotonicSeconds() - t0, 5)
    }
}

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}
