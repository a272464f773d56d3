@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// Service output files: whole lines through rotation, tail from the end,
/// cursors across rotations, truncation.
final class ServiceLogTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "cc-svclog-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// Feeds `text` through a real pipe in odd-sized writes, as a service would.
    func feed(_ text: [UInt8], maxBytes: UInt64, maxFiles: Int) throws {
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        let writer = ServiceLogWriter(root: root, name: "svc", maxBytes: maxBytes, maxFiles: maxFiles)
        let output = ServiceOutputPipe(fd: ends[0], writer: writer)
        var offset = 0, step = 1
        while offset < text.count {
            let n = min(text.count - offset, 1 + (step * 7919) % 30_000)
            step += 1
            let written = text[offset..<(offset + n)].withUnsafeBytes { write(ends[1], $0.baseAddress, n) }
            XCTAssertEqual(written, n)
            offset += n
            XCTAssertTrue(output.pump())
        }
        close(ends[1])
        XCTAssertFalse(output.pump(), "EOF")
        close(ends[0])
    }

    func testTenMegabytesRotateWithNoLineLostOrSplit() throws {
        let lines = (0..<120_000).map { "line \($0) " + String(repeating: "x", count: $0 % 150) }
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        XCTAssertGreaterThan(text.count, 10_000_000)
        try feed(text, maxBytes: 1 << 20, maxFiles: 100)
        let dir = ServiceLogFiles.directory(root, "svc")
        XCTAssertGreaterThanOrEqual(ServiceLogFiles.segments(dir).count, 10, "rotated")
        for seg in ServiceLogFiles.segments(dir) {
            XCTAssertLessThanOrEqual(ServiceLogFiles.size(seg.path), 1 << 20)
            XCTAssertEqual(ServiceLogReader.read(seg.path, at: ServiceLogFiles.size(seg.path) - 1, count: 1), [0x0A], "files end at a line end")
        }
        var got: [String] = []
        var cursor: UInt64 = 0
        while true {
            let page = ServiceLogReader.since(dir, cursor: cursor, lines: 10_000)
            XCTAssertFalse(page.truncated)
            if page.lines.isEmpty { break }
            got += page.lines
            cursor = page.next
        }
        XCTAssertEqual(got.count, lines.count)
        XCTAssertTrue(got == lines, "every line, whole and in order")
        XCTAssertEqual(cursor, UInt64(text.count))
        let tail = ServiceLogReader.tail(dir, lines: 3)
        XCTAssertEqual(tail.lines, Array(lines.suffix(3)))
        XCTAssertEqual(tail.next, UInt64(text.count))
        XCTAssertEqual(ServiceLogReader.tail(dir, lines: 10_000).lines, Array(lines.suffix(10_000)), "a tail across files")
    }

    func testOldCursorIsTruncatedAndLongLinesAreCut() throws {
        let lines = (0..<5_000).map { "entry \($0) " + String(repeating: "y", count: 80) }
        let long = String(repeating: "z", count: ServiceOutputPipe.maxLine * 2 + 5)
        try feed(Array((lines.joined(separator: "\n") + "\n" + long + "\nlast without newline").utf8), maxBytes: 65_536, maxFiles: 2)
        let dir = ServiceLogFiles.directory(root, "svc")
        XCTAssertEqual(ServiceLogFiles.segments(dir).count, 2, "only the newest files are kept")
        let page = ServiceLogReader.since(dir, cursor: 0, lines: 10)
        XCTAssertTrue(page.truncated)
        XCTAssertTrue(page.lines[0].hasPrefix("entry "), "starts at a whole line of the oldest file")
        let tail = ServiceLogReader.tail(dir, lines: 4)
        XCTAssertEqual(tail.lines.map(\.count), [ServiceOutputPipe.maxLine, ServiceOutputPipe.maxLine, 5, 20])
        XCTAssertEqual(tail.lines.last, "last without newline")
        XCTAssertEqual(ServiceLogReader.since(dir, cursor: tail.next, lines: 10).lines, [], "nothing after next")
    }

    func testNoFilesYet() {
        let dir = ServiceLogFiles.directory(root, "none")
        XCTAssertEqual(ServiceLogReader.tail(dir, lines: 5), .init(lines: [], next: 0, truncated: false))
        XCTAssertEqual(ServiceLogReader.since(dir, cursor: 7, lines: 5), .init(lines: [], next: 7, truncated: false))
    }
}
