@testable import ControlCenterCore
import XCTest

final class FastCGIWorkerTests: XCTestCase {
    func check(_ start: String?, now: Double, threshold: Double = 1) -> Bool {
        guard let start else { return FastCGIWorker.mayHaveBeenAbandoned(requestStart: nil, now: now, threshold: threshold) }
        return start.withCString { FastCGIWorker.mayHaveBeenAbandoned(requestStart: $0, now: now, threshold: threshold) }
    }

    func testFreshRequestSkipsTheHungUpCheck() {
        XCTAssertFalse(check("1700000000.123", now: 1_700_000_000.200))
        XCTAssertFalse(check("1700000000.123", now: 1_700_000_001.100), "0.977 s is under the threshold")
    }

    func testRequestThatWaitedIsChecked() {
        XCTAssertTrue(check("1700000000.123", now: 1_700_000_001.123))
        XCTAssertTrue(check("1700000000.000", now: 1_700_000_000.300, threshold: 0.25))
    }

    func testMissingOrBrokenStartTimeIsAlwaysChecked() {
        XCTAssertTrue(check(nil, now: 1_700_000_000))
        XCTAssertTrue(check("", now: 1_700_000_000))
        XCTAssertTrue(check("soon", now: 1_700_000_000))
        XCTAssertTrue(check("1700000000.1x", now: 1_700_000_000))
        XCTAssertTrue(check("-5", now: 1_700_000_000))
    }
}
