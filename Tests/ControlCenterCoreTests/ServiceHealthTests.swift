@testable import ControlCenterCore
import XCTest

/// The probe verdicts: healthy after one success, unhealthy after the threshold, one interval between probes.
final class ServiceHealthTests: XCTestCase {
    func check(threshold: Int = 3, interval: Double = 10) throws -> ServiceDefinition.HealthCheck {
        try XCTUnwrap(try ServiceDefinition.parse([
            "name": "s", "command": ["/bin/true"],
            "health_check": ["type": "tcp", "port": 80, "interval_seconds": interval, "failure_threshold": threshold],
        ]).healthCheck)
    }

    func testUnknownUntilTheFirstProbeWhichComesOneIntervalAfterTheStart() throws {
        let s = ServiceHealth.State(check: try check(), since: 100)
        XCTAssertEqual(s.health, .unknown)
        XCTAssertEqual(s.nextProbeAt, 110)
    }

    func testOneSuccessIsHealthyAndFailuresCountUpToTheThreshold() throws {
        let c = try check(threshold: 3)
        var s = ServiceHealth.after(c, .init(check: c, since: 0), error: nil, now: 10)
        XCTAssertEqual(s.health, .healthy)
        XCTAssertEqual(s.nextProbeAt, 20)
        s = ServiceHealth.after(c, s, error: "HTTP 500, expected 200", now: 20)
        s = ServiceHealth.after(c, s, error: "HTTP 500, expected 200", now: 30)
        XCTAssertEqual(s.health, .healthy, "two failures of three")
        XCTAssertEqual(s.failures, 2)
        s = ServiceHealth.after(c, s, error: "timed out after 2 s", now: 40)
        XCTAssertEqual(s.health, .unhealthy)
        XCTAssertEqual(s.lastError, "timed out after 2 s")
        s = ServiceHealth.after(c, s, error: "timed out after 2 s", now: 50)
        XCTAssertEqual(s.health, .unhealthy)
        s = ServiceHealth.after(c, s, error: nil, now: 60)
        XCTAssertEqual(s.health, .healthy, "one success recovers")
        XCTAssertEqual(s.failures, 0)
        XCTAssertNil(s.lastError)
    }

    func testAFailureBeforeAnySuccessCanMakeItUnhealthy() throws {
        let c = try check(threshold: 1)
        XCTAssertEqual(ServiceHealth.after(c, .init(check: c, since: 0), error: "Couldn't connect to server", now: 10).health, .unhealthy)
    }

    func testOnlyRunningServicesAreProbed() {
        XCTAssertEqual(ServicePolicy.Status.allCases.filter(ServiceHealth.isProbed), [.running])
    }
}
