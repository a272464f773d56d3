import Glibc
import XCTest
@testable import ControlCenterCore

final class ProcFSTests: XCTestCase {
    func testBootTimeMatchesProcStat() throws {
        let r = ProcReader()
        let boot = try XCTUnwrap(HostConstants.bootTime(r))
        let text = try String(contentsOfFile: "/proc/stat", encoding: .utf8)
        let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("btime ") })
        XCTAssertEqual(boot, Double(line.split(separator: " ")[1]))
    }
}
