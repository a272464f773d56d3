import Foundation
import Glibc
import XCTest

/// What becomes of managed services when Control Center stops (QUIT to the
/// master), under each value of CC_SERVICES_STOP_ON_EXIT. Each test runs a
/// stack of its own, stops it and starts it again on the same state directory.
final class ServiceStopOnExitTests: XCTestCase {
    func stack(stopOnExit: Bool) throws -> TestServer {
        try TestServer(env: ["CC_SUPERVISOR": "true", "CC_SERVICES_STOP_ON_EXIT": String(stopOnExit)])
    }

    func call(_ s: TestServer, _ method: String, _ path: String, _ json: Any? = nil) throws -> HTTPResponse {
        try SupervisorTests.call(s, method, path, json, token: try token(s))
    }

    /// The admin's token: first login changes the generated password, later ones use the new one.
    func token(_ s: TestServer) throws -> String {
        if let t = tokens[s.stateDir] { return t }
        let t = try SupervisorTests.adminToken(s)
        tokens[s.stateDir] = t
        return t
    }
    var tokens: [String: String] = [:]

    func pid(_ s: TestServer, _ name: String) throws -> Int32? {
        (try call(s, "GET", "/api/services/\(name)/status").json?["pid"] as? Int).map(Int32.init)
    }

    func testByDefaultServicesOutliveControlCenterAndAreReAdopted() throws {
        let s = try stack(stopOnExit: false)
        XCTAssertEqual(try call(s, "POST", "/api/services", ["name": "keeper", "command": SupervisorTests.ticker,
                                                             "start_timeout_seconds": 0.1]).status, 201)
        let started = try call(s, "POST", "/api/services/keeper/start?wait=5")
        let pid = Int32(try XCTUnwrap(started.json?["pid"] as? Int, started.text))
        defer { kill(pid, SIGKILL) }
        s.stop()
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertTrue(SupervisorTests.alive(pid), "still running with Control Center stopped")
        try s.start()
        XCTAssertTrue(waitUntil(5) { (try? self.pid(s, "keeper")) == pid }, "re-adopted by the next start")
        let logs = { ((try? self.call(s, "GET", "/api/services/keeper/logs?lines=1"))?.json?["logs"] as? [String])?.last ?? "" }
        let before = logs()
        XCTAssertTrue(waitUntil(3) { logs() != before }, "its output is read again")
        XCTAssertEqual(try call(s, "GET", "/api/services/keeper/status").json?["status"] as? String, "running")
        XCTAssertEqual(try call(s, "POST", "/api/services/keeper/stop?wait=5").json?["status"] as? String, "done")
        XCTAssertFalse(SupervisorTests.alive(pid))
    }

    func testWithStopOnExitServicesStopDependentsFirst() throws {
        let s = try stack(stopOnExit: true)
        for (name, deps) in [("base", [String]()), ("app", ["base"])] {
            XCTAssertEqual(try call(s, "POST", "/api/services", ["name": name, "command": ["/bin/sleep", "1000"],
                                                                 "start_timeout_seconds": 0.1, "depends_on": deps]).status, 201)
        }
        XCTAssertEqual(try call(s, "POST", "/api/services/app/start?wait=5").json?["status"] as? String, "done")
        let pids = try [pid(s, "base"), pid(s, "app")].map { try XCTUnwrap($0) }
        defer { for p in pids { kill(p, SIGKILL) } }
        s.stop()
        for p in pids { XCTAssertFalse(SupervisorTests.alive(p), "stopped with Control Center") }
        try s.start()
        let events = try call(s, "GET", "/api/events?source=supervisor&limit=100").json?["events"] as? [[String: Any]] ?? []
        func stoppedID(_ name: String) -> Int? {
            events.first { $0["action"] as? String == "service.stopped" && $0["target"] as? String == name }?["id"] as? Int
        }
        let app = try XCTUnwrap(stoppedID("app")), base = try XCTUnwrap(stoppedID("base"))
        XCTAssertLessThan(app, base, "the dependent stopped first")
        XCTAssertEqual(try call(s, "GET", "/api/services/app/status").json?["status"] as? String, "stopped", "not started again")
    }
}
