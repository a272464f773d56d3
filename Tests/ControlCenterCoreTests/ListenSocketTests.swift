@testable import ControlCenterCore
import CSupport
import Foundation
import Glibc
import XCTest

final class ListenSocketTests: XCTestCase {
    func testUnixSocketBindsReplacesStaleAndRefusesLive() throws {
        let dir = NSTemporaryDirectory() + "cc-ls-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s.sock"
        // A stale socket file: bound once, then its owner went away.
        let stale = try ListenSocket.bind(.unix(path), backlog: 8)
        close(stale)
        XCTAssertFalse(ListenSocket.isUnixSocketLive(path))
        let fd = try ListenSocket.bind(.unix(path), backlog: 8)
        defer { close(fd) }
        XCTAssertTrue(ListenSocket.isUnixSocketLive(path))
        XCTAssertThrowsError(try ListenSocket.bind(.unix(path), backlog: 8), "a live socket is never taken over")
        // The probe above left one connection waiting in the backlog.
        XCTAssertGreaterThanOrEqual(cc_listen_queue_length(fd), 0)
    }

    func testListenQueueCountsWaitingConnections() throws {
        let path = NSTemporaryDirectory() + "cc-q-\(UUID().uuidString.prefix(8)).sock"
        let fd = try ListenSocket.bind(.unix(path), backlog: 16)
        defer { close(fd); unlink(path) }
        XCTAssertEqual(cc_listen_queue_length(fd), 0)
        var clients: [Int32] = []
        for _ in 0..<3 {
            let c = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = ListenSocket.unixAddress(path)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            clients.append(c)
        }
        defer { clients.forEach { close($0) } }
        XCTAssertEqual(cc_listen_queue_length(fd), 3)
    }

    func testTCPBindAndQueue() throws {
        let fd = try ListenSocket.bind(.tcp(host: "127.0.0.1", port: 0), backlog: 8)
        defer { close(fd) }
        XCTAssertEqual(cc_listen_queue_length(fd), 0)
        XCTAssertThrowsError(try ListenSocket.bind(.tcp(host: "no.such.host.invalid", port: 1), backlog: 8))
    }

    func testPidFileLocksAndReportsOwner() throws {
        let path = NSTemporaryDirectory() + "cc-pid-\(UUID().uuidString.prefix(8))"
        let first = try PidFile(path: path)
        XCTAssertEqual(PidFile.readPid(path), getpid())
        // flock is per open file description: a second open in this process conflicts too.
        XCTAssertThrowsError(try PidFile(path: path)) { error in
            XCTAssertTrue("\(error)".contains("\(getpid())"))
        }
        first.remove()
        XCTAssertNil(PidFile.readPid(path))
    }

    func testExitStatusDecoding() {
        XCTAssertEqual(ExitStatus(waitStatus: 0), .exited(0))
        XCTAssertEqual(ExitStatus(waitStatus: 3 << 8), .exited(3))
        XCTAssertEqual(ExitStatus(waitStatus: SIGKILL), .signaled(SIGKILL))
        XCTAssertEqual(ExitStatus.signaled(SIGILL).description, "signal 4 (ILL)")
        XCTAssertTrue(ExitStatus.exited(0).isClean)
    }

    func testSpawnRunsChildWithStdin() throws {
        let pid = try Spawner.spawn(executable: "/bin/sh", arguments: ["-c", "exit 7"], environment: [:], stdinFD: nil)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        XCTAssertEqual(ExitStatus(waitStatus: status), .exited(7))
        XCTAssertThrowsError(try Spawner.spawn(executable: "/nonexistent", arguments: [], environment: [:], stdinFD: nil))
        XCTAssertTrue(Spawner.currentExecutable().hasPrefix("/"))
    }

    func testAtomicFileReadsProcFiles() throws {
        let stat = try XCTUnwrap(AtomicFile.read("/proc/self/stat"))
        XCTAssertFalse(stat.isEmpty, "/proc files report size 0 but have content")
        let path = NSTemporaryDirectory() + "cc-af-\(UUID().uuidString.prefix(8))"
        XCTAssertTrue(AtomicFile.write(Array("hello".utf8), to: path, sync: true))
        XCTAssertEqual(AtomicFile.read(path), Array("hello".utf8))
        XCTAssertNil(AtomicFile.read(path, limit: 2))
        unlink(path)
        XCTAssertFalse(AtomicFile.write([1], to: "/nonexistent/dir/file"))
    }

    func testHostFigures() throws {
        let mem = try XCTUnwrap(HostFigures.memory())
        XCTAssertGreaterThan(mem.total, mem.available)
        let disk = try XCTUnwrap(HostFigures.disk(path: "/"))
        XCTAssertGreaterThan(disk.total, 0)
        _ = HostFigures.cpuPercent()
        let cpu = try XCTUnwrap(HostFigures.cpuPercent())
        XCTAssert((0...100).contains(cpu))
        XCTAssertNil(HostFigures.disk(path: "/nonexistent"))
    }

    func testLogWritesJSONLinesAndReopens() throws {
        let path = NSTemporaryDirectory() + "cc-log-\(UUID().uuidString.prefix(8))"
        defer { unlink(path); unlink(path + ".1") }
        let log = Log(path: path, level: .info, fields: ["role": "test"])
        log.debug("hidden")
        log.info("hello", ["k": "v"])
        rename(path, path + ".1")
        log.reopen()
        log.error("after")
        let first = try String(contentsOfFile: path + ".1", encoding: .utf8)
        let second = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertFalse(first.contains("hidden"))
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        XCTAssertEqual(j["msg"] as? String, "hello")
        XCTAssertEqual(j["k"] as? String, "v")
        XCTAssertEqual(j["role"] as? String, "test")
        XCTAssertTrue(second.contains("\"after\""))
        XCTAssertFalse(Log(path: "off").isEnabled)
    }
}
