@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The supervisor's notice to `?wait=` workers: a watch taken before the
/// post sees it at once, however long it was asked to wait; without a post
/// it times out; without the file there is no watch (the worker polls).
final class ServiceActionNoticeTests: XCTestCase {
    func testAWatchSeesEachPostAtOnceAndTimesOutWithoutOne() throws {
        let state = NSTemporaryDirectory() + "cc-notice-\(getpid())"
        try FileManager.default.createDirectory(atPath: state + "/run", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let config = try Config(values: ["CC_STATE_DIR": state])
        XCTAssertNil(ServiceActionNotice.Watch(config), "no supervisor has made the file: nothing to watch")

        let fd = ServiceActionNotice.open(config)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var st = stat()
        XCTAssertEqual(stat(config.serviceActionNoticePath, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o640, "the workers' group reads it, whatever the umask")
        let watch = try XCTUnwrap(ServiceActionNotice.Watch(config))

        var t = Clock.monotonicSeconds()
        XCTAssertFalse(watch.wait(seconds: 0.05), "no post, no notice")
        XCTAssertGreaterThanOrEqual(Clock.monotonicSeconds() - t, 0.05)

        for _ in 0..<3 {
            ServiceActionNotice.post(fd)
            t = Clock.monotonicSeconds()
            XCTAssertTrue(watch.wait(seconds: 5), "a post made before the wait is not missed")
            XCTAssertLessThan(Clock.monotonicSeconds() - t, 1)
        }
        XCTAssertFalse(watch.wait(seconds: 0), "each notice is taken once")
        let again = ServiceActionNotice.open(config)
        defer { close(again) }
        ServiceActionNotice.post(again)
        XCTAssertTrue(watch.wait(seconds: 5), "a later supervisor's post reaches a watch taken before it")
    }
}
