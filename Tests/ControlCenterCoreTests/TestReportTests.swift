import Foundation
import XCTest

/// Scripts/test's summary step (Scripts/lib/test-report) fed canned output:
/// CI counts tests from runners' closing lines, so stdout may hold XCTest's
/// last `Executed` line and our plain line, and nothing else a runner prints.
final class TestReportTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "cc-report-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/lib/test-report").path
    }

    /// Closing lines of the runners CI knows; only ours may pass.
    private static let runnerLines = [
        #"^=+ .* =+$"#, #"^Ran \d+ tests? in"#, #"Executed \d+ tests?"#, #"^(\w+: )?\d+ passed, \d+ failed"#,
        #"^test result:"#, #"^Tests run: \d+"#, #"\d+ examples?, \d+ failures?"#,
    ]

    @discardableResult
    private func run(_ args: [String]) throws -> (out: [String], status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.script] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        return (text.split(separator: "\n").map(String.init), p.terminationStatus)
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func runnerLines(in lines: [String]) -> [String] {
        lines.filter { line in Self.runnerLines.contains { line.range(of: $0, options: .regularExpression) != nil } }
    }

    private let xctestLog = """
        Test Suite 'All tests' started at 2026-11-29 08:00:00.000
        Test Case 'A.testOne' started at 2026-11-29 08:00:00.001
        Test Case 'A.testOne' passed (0.001 seconds)
        Test Case 'A.testTwo' skipped (0.002 seconds)
        Test Case 'B.testThree' passed (0.003 seconds)
        Test Case 'B.testFour' failed (0.004 seconds)
        /x/B.swift:12: error: B.testFour : XCTAssertEqual failed: ("1") is not equal to ("2")
        Test Suite 'A' passed at 2026-11-29 08:00:01.000
        \t Executed 2 tests, with 1 test skipped and 0 failures (0 unexpected) in 0.003 (0.003) seconds
        Test Suite 'All tests' failed at 2026-11-29 08:00:02.000
        \t Executed 4 tests, with 1 test skipped and 1 failure (0 unexpected) in 0.010 (0.010) seconds
        """

    private let schemathesisLog = """
        Schemathesis v4.32.5
        =================================== WARNINGS ===================================
        =================================== SUMMARY ====================================
        ============================= 1 warning in 18.54s ==============================
        """

    private let junit = """
        <?xml version="1.0" encoding="utf-8"?>
        <testsuites><testsuite name="schemathesis" tests="3">
        <testcase name="GET /health"/><testcase name="GET /api/events"/>
        <testcase name="POST /api/events"><failure message="Server error">1. Server error
        [500] Internal Server Error
        curl -X POST http://127.0.0.1/api/events</failure></testcase>
        </testsuite></testsuites>
        """

    func testOnlyXCTestsLastTotalAndThePlainLineReachStdout() throws {
        let tally = dir + "/tally.tsv"
        var out = try run(["xctest", tally, try write("swift-test.log", xctestLog)]).out
        XCTAssertTrue(out.contains("FAILED: B.testFour"), "\(out)")
        let log = try write("schemathesis.log", schemathesisLog)
        out += try run(["junit", tally, "schemathesis", try write("st.xml", junit), log]).out
        XCTAssertTrue(out.contains("    [500] Internal Server Error"), "a failure says why on stdout: \(out)")
        XCTAssertTrue(out.contains("    curl -X POST http://127.0.0.1/api/events"), "\(out)")
        out += try run(["check", tally, "loadtest-smoke", "0", log, "burst and chaos"]).out
        out += try run(["check", tally, "coverage", "1", log]).out
        let closing = try run(["close", tally])
        out += closing.out

        XCTAssertEqual(closing.status, 1, "a failed part fails the run")
        XCTAssertEqual(out.last, "tests: 5 passed, 3 failed, 1 skipped", "\(out)")
        let runnerish = runnerLines(in: out)
        XCTAssertEqual(runnerish.count, 2, "only XCTest's last total and ours: \(runnerish)")
        XCTAssertTrue(runnerish[0].contains("Executed 4 tests"), "\(runnerish)")
        XCTAssertEqual(runnerish[1], out.last)
    }

    func testAReportWithNoCaseAndACrashedRunnerCountAsFailures() throws {
        let tally = dir + "/tally.tsv"
        let crashed = "Test Case 'A.testOne' passed (0.001 seconds)\nFatal error: boom\n"
        let out = try run(["xctest", tally, try write("crash.log", crashed)]).out
        XCTAssertTrue(out.contains { $0.contains("no total line") }, "\(out)")
        try run(["junit", tally, "schemathesis", try write("empty.xml", "<testsuites/>"), "/dev/null"])
        try run(["junit", tally, "browser", dir + "/missing.xml", "/dev/null"])
        let closing = try run(["close", tally])
        XCTAssertEqual(closing.out.last, "tests: 1 passed, 3 failed, 0 skipped")
        XCTAssertEqual(closing.status, 1)
        XCTAssertTrue(runnerLines(in: closing.out.dropLast()).isEmpty)
    }

    func testAllPassingClosesWithStatusZeroAndNothingRunIsAFailure() throws {
        let tally = dir + "/tally.tsv"
        try run(["check", tally, "coverage", "0", "/dev/null"])
        let ok = try run(["close", tally])
        XCTAssertEqual(ok.out.last, "tests: 1 passed, 0 failed, 0 skipped")
        XCTAssertEqual(ok.status, 0)
        let none = try run(["close", dir + "/no-such-tally.tsv"])
        XCTAssertEqual(none.out.last, "tests: 0 passed, 0 failed, 0 skipped")
        XCTAssertEqual(none.status, 1, "a run that executed nothing must not pass")
    }
}
