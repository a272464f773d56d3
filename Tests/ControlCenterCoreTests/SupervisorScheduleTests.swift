@testable import ControlCenterCore
import XCTest

/// When the supervisor's loop wakes with no event: each deadline it knows,
/// and the earliest of them, without processes.
final class SupervisorScheduleTests: XCTestCase {
    func rt(_ status: ServicePolicy.Status, wanted: Bool = true, pid: Int32? = 42, startedAt: Double? = nil,
            killAt: Double? = nil, nextRetryAt: Double? = nil) -> ServicePolicy.Runtime {
        var r = ServicePolicy.Runtime()
        r.status = status
        r.wanted = wanted
        r.pid = pid
        r.startedAt = startedAt
        r.killAt = killAt
        r.nextRetryAt = nextRetryAt
        return r
    }

    func testEachStatusHasItsOwnDeadline() {
        XCTAssertEqual(SupervisorSchedule.deadline(rt(.starting, startedAt: 100), startTimeout: 0.1, now: 100.02)!, 100.1, accuracy: 1e-9,
                       "a start timeout's end makes it running")
        XCTAssertEqual(SupervisorSchedule.deadline(rt(.stopping, killAt: 110), startTimeout: 1, now: 100),
                       100 + SupervisorSchedule.stopRecheck, "a stopping tree is looked at again before its SIGKILL")
        XCTAssertEqual(SupervisorSchedule.deadline(rt(.stopping, killAt: 100.05), startTimeout: 1, now: 100), 100.05, "SIGKILL time")
        XCTAssertEqual(SupervisorSchedule.deadline(rt(.backoff, pid: nil, nextRetryAt: 103), startTimeout: 1, now: 100), 103)
        XCTAssertEqual(SupervisorSchedule.deadline(rt(.failed, pid: nil, nextRetryAt: 400), startTimeout: 1, now: 100), 400, "cool-down")
        XCTAssertNil(SupervisorSchedule.deadline(rt(.failed, wanted: false, pid: nil, nextRetryAt: 400), startTimeout: 1, now: 100),
                     "nothing retries a service no one wants")
        XCTAssertNil(SupervisorSchedule.deadline(rt(.running, startedAt: 0), startTimeout: 1, now: 100), "only an exit changes it")
        XCTAssertNil(SupervisorSchedule.deadline(rt(.stopped, pid: nil), startTimeout: 1, now: 100), "only an action changes it")
    }

    func testTheEarliestDeadlineWins() {
        let wall = 1_000.0, mono = 50.0
        func due(_ services: [ServicePolicy.Runtime], probes: [Double] = [], lastRound: Double = mono, lastLoad: Double = wall) -> Double {
            SupervisorSchedule.secondsUntilDue(services: services.map { ($0, 0.1) }, probesDue: probes, wallNow: wall, monoNow: mono,
                                               lastRound: lastRound, lastLoad: lastLoad)
        }
        XCTAssertEqual(due([]), SupervisorSchedule.roundInterval, "idle: the safety round")
        XCTAssertEqual(due([], lastLoad: wall - SupervisorSchedule.reloadInterval + 0.3), 0.3, accuracy: 1e-9, "the next re-read")
        XCTAssertEqual(due([rt(.running, startedAt: 0), rt(.starting, startedAt: wall - 0.04)]), 0.06, accuracy: 1e-9,
                       "a start timeout ends in 60 ms, not at the next round")
        XCTAssertEqual(due([rt(.backoff, pid: nil, nextRetryAt: wall + 0.5)], probes: [mono + 0.25]), 0.25, accuracy: 1e-9,
                       "a probe due sooner than a retry")
        XCTAssertEqual(due([rt(.starting, startedAt: wall - 5)]), 0, "a deadline passed is due now, never negative")
    }

    func testPollTimeoutsRoundUpSoTheLoopNeverWakesEarly() {
        XCTAssertEqual(SupervisorSchedule.pollMillis(0.0601), 61)
        XCTAssertEqual(SupervisorSchedule.pollMillis(0), 0)
        XCTAssertEqual(SupervisorSchedule.pollMillis(-1), 0)
        XCTAssertEqual(SupervisorSchedule.pollMillis(1e12), Int32.max)
    }
}
