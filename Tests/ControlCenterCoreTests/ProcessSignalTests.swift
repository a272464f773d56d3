@testable import ControlCenterCore
import Foundation
import XCTest

/// Which processes the signal route refuses, without processes.
final class ProcessSignalTests: XCTestCase {
    let master: Int32 = 500

    func target(pid: Int32 = 4321, ppid: Int32 = 4000, flags: UInt32 = 0x0040_0100, start: Int64 = 1_700_000_000_120,
                name: String = "sleep") -> ProcessSignal.Target {
        .init(pid: pid, ppid: ppid, flags: flags, startMillis: start, name: name)
    }

    func outcome(_ t: ProcessSignal.Target?, start: Int64? = nil) -> ProcessSignal.Outcome {
        ProcessSignal.decide(t, requestedStartMillis: start, master: master).0
    }

    func testAnOrdinaryProcessMayBeSignalled() {
        XCTAssertEqual(outcome(target()), .sent)
        XCTAssertEqual(outcome(target(), start: 1_700_000_000_120), .sent)
        XCTAssertEqual(outcome(target(), start: 1_700_000_000_130), .sent, "the listing shows 10 ms steps")
        XCTAssertEqual(outcome(target(ppid: 1)), .sent, "a daemon")
    }

    func testGoneOrReusedPids() {
        XCTAssertEqual(outcome(nil), .notFound)
        XCTAssertEqual(outcome(target(), start: 1_700_000_000_000), .conflict, "another process now has the pid")
        XCTAssertEqual(outcome(target(pid: 1, ppid: 0, name: "init"), start: 5), .conflict, "a mismatch says so even for pid 1")
    }

    func testProtectedProcesses() {
        XCTAssertEqual(outcome(target(pid: 1, ppid: 0, name: "systemd")), .forbidden)
        XCTAssertEqual(outcome(target(pid: 2, ppid: 0, name: "kthreadd")), .forbidden)
        XCTAssertEqual(outcome(target(pid: 90, ppid: 2, name: "kworker/0:1")), .forbidden)
        XCTAssertEqual(outcome(target(pid: 91, ppid: 7, flags: 0x0020_8040, name: "odd")), .forbidden, "PF_KTHREAD")
        XCTAssertEqual(outcome(target(pid: master, ppid: 1, name: "control-center")), .forbidden)
        XCTAssertEqual(outcome(target(pid: 501, ppid: master, name: "control-center")), .forbidden, "a worker or the supervisor")
        XCTAssertEqual(outcome(target(pid: 700, ppid: 1, name: "nginx")), .forbidden, "nginx's master")
        XCTAssertEqual(outcome(target(pid: 701, ppid: 700, name: "nginx")), .forbidden, "an nginx worker")
        XCTAssertEqual(outcome(target(pid: 702, ppid: 501, name: "python3")), .sent, "a managed service (the supervisor's child)")
    }

    func testSignalNumbersAreLinuxs() {
        XCTAssertEqual(ProcessSignal.Name.allCases.map(\.number), [SIGTERM, SIGKILL, SIGHUP, SIGINT, SIGSTOP, SIGCONT, SIGUSR1, SIGUSR2])
    }
}

/// The route on each engine: input, roles, audit, and the supervisor's
/// answers mapped to statuses (a thread plays the supervisor).
class ProcessSignalRouteTests: StorageTestCase {
    func rows() throws -> Int { try h.count("SELECT COUNT(*) FROM process_signals") }

    func testBadInputIs400AndWritesNothing() throws {
        let bad: [(String, Any)] = [
            ("/api/system/processes/123/signal", ["signal": "TERMINATE"]),
            ("/api/system/processes/123/signal", ["signal": "SIGTERM"]),
            ("/api/system/processes/123/signal", ["signal": 15]),
            ("/api/system/processes/123/signal", [String: Any]()),
            ("/api/system/processes/123/signal", ["signal": "TERM", "force": true]),
            ("/api/system/processes/123/signal", ["signal": "TERM", "start_time": "yesterday"]),
            ("/api/system/processes/123/signal", ["signal": "TERM", "start_time": -1]),
            ("/api/system/processes/123/signal", ["signal": "TERM", "start_time": true]),
            ("/api/system/processes/123/signal", ["TERM"]),
            ("/api/system/processes/0/signal", ["signal": "TERM"]),
            ("/api/system/processes/-5/signal", ["signal": "TERM"]),
            ("/api/system/processes/abc/signal", ["signal": "TERM"]),
            ("/api/system/processes/99999999999/signal", ["signal": "TERM"]),
        ]
        for (path, body) in bad {
            let r = h.call("POST", path, json: body, token: h.adminToken)
            XCTAssertEqual(r.status, 400, "\(path) \(body): \(String(decoding: r.body, as: UTF8.self))")
        }
        XCTAssertEqual(h.call("POST", "/api/system/processes/123/signal", body: "{\"signal\":", token: h.adminToken,
                              headers: ["content-type": "application/json"]).status, 400)
        XCTAssertEqual(h.call("POST", "/api/system/processes/123/signal", body: "signal=TERM", token: h.adminToken,
                              headers: ["content-type": "application/x-www-form-urlencoded"]).status, 415)
        XCTAssertEqual(try rows(), 0, "nothing queued")
    }

    func testOnlyAdminsMaySignal() throws {
        let (_, op) = try h.makeUser("opal", role: "operator")
        let (_, viewer) = try h.makeUser("vik", role: "viewer")
        XCTAssertEqual(h.call("POST", "/api/system/processes/123/signal", json: ["signal": "TERM"]).status, 401)
        XCTAssertEqual(h.call("POST", "/api/system/processes/123/signal", json: ["signal": "TERM"], token: viewer).status, 403)
        XCTAssertEqual(h.call("POST", "/api/system/processes/123/signal", json: ["signal": "TERM"], token: op).status, 403)
        XCTAssertEqual(try rows(), 0)
    }

    func testWithoutASupervisorItIsRefusedAndNothingIsQueued() throws {
        let off = try StorageHarness(Self.engine, settings: ["CC_SUPERVISOR": "false"])
        let r = off.call("POST", "/api/system/processes/123/signal", json: ["signal": "TERM"], token: off.adminToken)
        XCTAssertEqual(r.status, 403)
        XCTAssertEqual(off.errorCode(r), "supervisor_disabled")
        XCTAssertEqual(try off.count("SELECT COUNT(*) FROM process_signals"), 0)
    }

    /// Answers the next pending request with `outcome`, from another connection.
    func answerNext(_ outcome: ProcessSignal.Outcome, _ message: String) throws -> Thread {
        nonisolated(unsafe) let db = try h.openConnection()
        let t = Thread {
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                if let r = try? ProcessSignalRepository(db).pending().first {
                    try? ProcessSignalRepository(db).answer(r.id, outcome, message: message)
                    break
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
            db.close()
        }
        t.start()
        return t
    }

    func testTheSupervisorsAnswerIsTheStatus() throws {
        let cases: [(ProcessSignal.Outcome, Int, String?)] = [
            (.sent, 200, nil), (.notFound, 404, "not_found"), (.conflict, 409, "start_time_mismatch"),
            (.forbidden, 403, "protected_process"), (.failed, 503, "service_unavailable"),
        ]
        for (outcome, status, code) in cases {
            _ = try answerNext(outcome, "answer \(outcome.rawValue)")
            let r = h.call("POST", "/api/system/processes/4242/signal", json: ["signal": "HUP", "start_time": 1_700_000_000.12],
                           token: h.adminToken)
            XCTAssertEqual(r.status, status, String(decoding: r.body, as: UTF8.self))
            XCTAssertEqual(h.errorCode(r), code)
            XCTAssertTrue(String(decoding: r.body, as: UTF8.self).contains("answer \(outcome.rawValue)"))
        }
        let stored = try XCTUnwrap(try ProcessSignalRepository(h.openConnection()).find(1))
        XCTAssertEqual(stored.startMillis, 1_700_000_000_120)
        XCTAssertEqual(stored.signal, .HUP)
        XCTAssertEqual(stored.actor, "admin")
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE source = 'audit' AND action = 'process.signal' AND actor = 'admin' AND target = 'pid 4242' AND data LIKE '%\"role\":\"admin\"%'"), 5)
    }
}

final class ProcessSignalRoutePostgresTests: ProcessSignalRouteTests {
    override class var engine: TestEngine { .postgres }
    override func testBadInputIs400AndWritesNothing() throws { try super.testBadInputIs400AndWritesNothing() }
    override func testOnlyAdminsMaySignal() throws { try super.testOnlyAdminsMaySignal() }
    override func testTheSupervisorsAnswerIsTheStatus() throws { try super.testTheSupervisorsAnswerIsTheStatus() }
    override func testWithoutASupervisorItIsRefusedAndNothingIsQueued() throws {
        try super.testWithoutASupervisorItIsRefusedAndNothingIsQueued()
    }
}
