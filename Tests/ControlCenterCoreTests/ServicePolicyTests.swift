@testable import ControlCenterCore
import XCTest

/// The supervisor's pure decisions: backoff, exits under each policy, start order.
final class ServicePolicyTests: XCTestCase {
    func def(_ extra: [String: Any] = [:]) throws -> ServiceDefinition {
        var o: [String: Any] = ["name": "s", "command": ["/bin/true"], "backoff_initial_seconds": 1,
                                "backoff_max_seconds": 8, "max_retries": 3, "start_timeout_seconds": 1]
        for (k, v) in extra { o[k] = v }
        return try ServiceDefinition.parse(o)
    }

    func running(since: Double) -> ServicePolicy.Runtime {
        var r = ServicePolicy.Runtime()
        r.wanted = true
        r.status = .running
        r.pid = 42
        r.startedAt = since
        return r
    }

    func testBackoffDoublesUpToTheCapWithJitter() throws {
        let d = try def()
        XCTAssertEqual((1...6).map { ServicePolicy.backoff(d, failures: $0, jitter: 1) }, [1, 2, 4, 8, 8, 8])
        XCTAssertEqual(ServicePolicy.backoff(d, failures: 2, jitter: 1.1), 2.2, accuracy: 1e-9)
        XCTAssertEqual(ServicePolicy.backoff(d, failures: 9, jitter: 1.1), 8, "jitter never passes the cap")
    }

    func testCrashUnderOnFailureBacksOffThenFailsThenCoolsDown() throws {
        let d = try def()
        var r = running(since: 100)
        r = ServicePolicy.afterExit(d, r, .init(signal: 9), now: 110, jitter: 1)
        XCTAssertEqual(r.status, .backoff)
        XCTAssertEqual(r.failures, 1)
        XCTAssertEqual(r.nextRetryAt, 111)
        XCTAssertFalse(ServicePolicy.mayStart(r, now: 110.5))
        XCTAssertTrue(ServicePolicy.mayStart(r, now: 111))
        for (i, wait) in [2.0, 4.0].enumerated() {
            var again = r
            again.status = .starting
            again.pid = 43
            again.startedAt = 120
            r = ServicePolicy.afterExit(d, again, .init(code: 1), now: 120.1, jitter: 1)
            XCTAssertEqual(r.status, .backoff)
            XCTAssertEqual(r.failures, i + 2)
            XCTAssertEqual(r.nextRetryAt!, 120.1 + wait, accuracy: 1e-9)
        }
        r.status = .starting
        r.startedAt = 130
        r = ServicePolicy.afterExit(d, r, .init(code: 1), now: 130.1, jitter: 1)
        XCTAssertEqual(r.status, .failed, "more than max_retries")
        XCTAssertEqual(r.nextRetryAt!, 130.1 + d.retryCooldownSeconds, accuracy: 1e-9)
        XCTAssertTrue(ServicePolicy.mayStart(r, now: 130.1 + d.retryCooldownSeconds))
    }

    func testALongHealthyRunClearsTheFailureCount() throws {
        let d = try def()
        var r = running(since: 0)
        r.failures = 3
        r = ServicePolicy.afterExit(d, r, .init(code: 1), now: 100, jitter: 1)
        XCTAssertEqual(r.failures, 1)
        XCTAssertEqual(r.status, .backoff)
        var short = running(since: 0)
        short.status = .starting
        short.failures = 3
        short = ServicePolicy.afterExit(d, short, .init(code: 1), now: 100, jitter: 1)
        XCTAssertEqual(short.status, .failed, "a run that never reached running does not clear it")
    }

    func testPolicies() throws {
        let clean = ServicePolicy.Exit(code: 0)
        XCTAssertEqual(ServicePolicy.afterExit(try def(), running(since: 0), clean, now: 10, jitter: 1).status, .stopped,
                       "on-failure: a clean exit stays down")
        XCTAssertEqual(ServicePolicy.afterExit(try def(["restart_policy": "always"]), running(since: 0), clean, now: 10, jitter: 1).status,
                       .backoff)
        let no = ServicePolicy.afterExit(try def(["restart_policy": "no"]), running(since: 0), .init(code: 3), now: 10, jitter: 1)
        XCTAssertEqual(no.status, .failed)
        XCTAssertFalse(no.wanted)
        var stopping = running(since: 0)
        stopping.status = .stopping
        XCTAssertEqual(ServicePolicy.afterExit(try def(), stopping, .init(signal: 15), now: 10, jitter: 1).status, .stopped)
        let quick = ServicePolicy.afterExit(try def(), running(since: 9.5), clean, now: 10, jitter: 1)
        XCTAssertEqual(quick.status, .backoff, "exit 0 before the start timeout is a failed start")
    }

    func testStartedAfterTheStartTimeout() throws {
        var r = running(since: 10)
        r.status = .starting
        XCTAssertFalse(ServicePolicy.isStarted(try def(), r, now: 10.5))
        XCTAssertTrue(ServicePolicy.isStarted(try def(), r, now: 11))
    }

    func testStartOrder() {
        XCTAssertEqual(ServicePolicy.startOrder(["web": ["api", "db"], "api": ["db"], "db": [], "solo": []]),
                       ["db", "api", "solo", "web"])
    }
}
