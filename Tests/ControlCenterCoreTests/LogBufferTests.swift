@testable import ControlCenterCore
import Foundation
import XCTest

final class LogBufferTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-logbuf-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func contents(_ name: String = "access.log") -> String {
        (try? String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8)) ?? ""
    }

    /// 19 bytes including the newline.
    func line(_ n: Int) -> [UInt8] { Array(String(format: "{\"line\":%09d}\n", n).utf8) }

    func testUnbufferedWritesEachLine() {
        let log = Log(path: "\(dir)/access.log", bufferSize: 0)
        XCTAssertFalse(log.isBuffered)
        log.write(line: line(1))
        XCTAssertEqual(contents(), String(decoding: line(1), as: UTF8.self))
    }

    func testFlushesWholeLinesWhenTheNextWouldNotFit() {
        let log = Log(path: "\(dir)/access.log", bufferSize: 50)
        log.write(line: line(1))
        log.write(line: line(2))
        XCTAssertEqual(contents(), "", "two lines (38 bytes) fit in 50")
        XCTAssertEqual(log.bufferedBytes, 38)
        log.write(line: line(3))
        XCTAssertEqual(contents(), String(decoding: line(1) + line(2), as: UTF8.self), "whole lines only, in order")
        XCTAssertEqual(log.bufferedBytes, 19)
        log.flush()
        XCTAssertEqual(contents().split(separator: "\n").count, 3)
    }

    func testLineLongerThanTheBufferGoesOutAfterWhatWasBuffered() {
        let log = Log(path: "\(dir)/access.log", bufferSize: 30)
        log.write(line: line(1))
        let long = Array("{\"long\":\"\(String(repeating: "x", count: 40))\"}\n".utf8)
        log.write(line: long)
        XCTAssertEqual(contents(), String(decoding: line(1) + long, as: UTF8.self))
        XCTAssertEqual(log.bufferedBytes, 0)
    }

    func testFlushesWhenTheOldestLineIsDue() {
        let log = Log(path: "\(dir)/access.log", bufferSize: 32768, flushInterval: 1)
        log.write(line: line(1), nowNanos: 1_000_000_000)
        log.write(line: line(2), nowNanos: 1_900_000_000)
        log.flushIfDue(nowNanos: 1_999_999_999)
        XCTAssertEqual(contents(), "", "the oldest line has waited 0.99 s")
        log.flushIfDue(nowNanos: 2_000_000_000)
        XCTAssertEqual(contents().split(separator: "\n").count, 2, "both lines out once the oldest is due")
        log.write(line: line(3), nowNanos: 2_100_000_000)
        log.flushIfDue(nowNanos: 2_500_000_000)
        XCTAssertEqual(contents().split(separator: "\n").count, 2, "age counts from the first line after a flush")
        log.flushIfDue(nowNanos: 3_100_000_000)
        XCTAssertEqual(contents().split(separator: "\n").count, 3)
    }

    func testReopenFlushesToTheOldFileFirst() throws {
        let log = Log(path: "\(dir)/access.log", bufferSize: 32768)
        log.write(line: line(1))
        // logrotate: rename, then USR1
        try FileManager.default.moveItem(atPath: "\(dir)/access.log", toPath: "\(dir)/access.log.1")
        log.reopen()
        XCTAssertEqual(contents("access.log.1"), String(decoding: line(1), as: UTF8.self))
        log.write(line: line(2))
        log.flush()
        XCTAssertEqual(contents(), String(decoding: line(2), as: UTF8.self))
        XCTAssertEqual(contents("access.log.1"), String(decoding: line(1), as: UTF8.self))
    }

    func testOffIsNeitherEnabledNorBuffered() {
        let log = Log(path: "off", bufferSize: 32768)
        XCTAssertFalse(log.isEnabled)
        XCTAssertFalse(log.isBuffered)
        log.write(line: line(1))
        log.flush()
    }

    func testLinesFromManyProcessesStayWhole() throws {
        // Several children append buffered lines to one O_APPEND file at once;
        // every line must come out whole.
        let path = "\(dir)/shared.log"
        // Built before fork: a child of a threaded process does no more than
        // the Log under test (malloc, write).
        let lines = (0..<4).map { child in
            (0..<2000).map { i in
                Array("{\"child\":\(child),\"i\":\(i),\"pad\":\"\(String(repeating: "p", count: i % 50))\"}\n".utf8)
            }
        }
        var pids: [pid_t] = []
        for child in 0..<4 {
            let pid = fork()
            if pid == 0 {
                let log = Log(path: path, bufferSize: 4096)
                for l in lines[child] { log.write(line: l, nowNanos: 0) }
                log.flush()
                _exit(0)
            }
            pids.append(pid)
        }
        for pid in pids { var st: Int32 = 0; waitpid(pid, &st, 0) }
        let written = contents("shared.log").split(separator: "\n")
        XCTAssertEqual(written.count, 8000)
        for l in written {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(l.utf8)), "torn line: \(l.prefix(80))")
        }
    }
}
