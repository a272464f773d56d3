@testable import ControlCenterCore
import Glibc
import XCTest

/// When the master tells systemd READY=1 (`MasterState.isReady`), decided
/// without processes as the rest of the master's decisions are.
final class MasterReadinessTests: XCTestCase {
    typealias D = MasterDecisionTests

    /// Ticks and starts every spawn asked for, numbering pids from `first`.
    func fill(_ s: inout MasterState, at now: Double, first: pid_t) -> [pid_t] {
        var pid = first
        var started: [pid_t] = []
        for case .spawn(let g, let slot) in s.tick(now: now, heartbeats: Heartbeats(nowMillis: 0)) {
            s.started(pid: pid, group: g, slot: slot, now: now)
            started.append(pid)
            pid += 1
        }
        return started
    }

    func beats(_ pids: [pid_t]) -> Heartbeats { Heartbeats(nowMillis: 0, reporting: Set(pids)) }

    func testReadyOnlyOnceEveryGroupHasItsTargetAccepting() {
        var s = MasterState(groups: [D.pool("main", target: 2), D.pool("storage", target: 1), D.single()])
        XCTAssertFalse(s.isReady(heartbeats: beats([])), "nothing spawned yet")
        let pids = fill(&s, at: 0, first: 100)
        XCTAssertEqual(pids.count, 4)
        XCTAssertFalse(s.isReady(heartbeats: beats([])), "spawned, but no worker has reached accept()")
        XCTAssertFalse(s.isReady(heartbeats: beats([100, 101])), "the storage pool is not accepting yet")
        XCTAssertTrue(s.isReady(heartbeats: beats([100, 101, 102])),
                      "every pool accepting; the collector (no heartbeat) counts once spawned")
    }

    func testAReloadIsNotReadyUntilTheNewGenerationAcceptsAndTheOldIsRetired() {
        var s = MasterState(groups: [D.pool("main", target: 1)])
        let old = fill(&s, at: 0, first: 100)
        XCTAssertTrue(s.isReady(heartbeats: beats(old)))
        s.beginReload(now: 10)
        XCTAssertFalse(s.isReady(heartbeats: beats(old)), "RELOADING until the new generation is up")
        let new = fill(&s, at: 10, first: 200)
        XCTAssertFalse(s.isReady(heartbeats: beats(old)), "the new worker has not reached accept()")
        _ = s.tick(now: 10.1, heartbeats: beats(old + new))
        XCTAssertTrue(s.isReady(heartbeats: beats(old + new)), "the new generation accepts; the old one was told to finish")
    }

    func testAGroupBackingOffIsNotReady() {
        var s = MasterState(groups: [D.pool("main", target: 1, threshold: 1)])
        let first = fill(&s, at: 0, first: 100)
        XCTAssertTrue(s.isReady(heartbeats: beats(first)))
        _ = s.reaped(pid: first[0], status: .signaled(SIGSEGV), served: 0, now: 1)
        XCTAssertEqual(fill(&s, at: 1.1, first: 200), [], "backing off: nothing respawned")
        XCTAssertFalse(s.isReady(heartbeats: beats(first)))
    }

    func testStoppingIsNeverReady() {
        var s = MasterState(groups: [D.pool("main", target: 1)])
        let pids = fill(&s, at: 0, first: 100)
        s.beginStop(graceful: true)
        XCTAssertFalse(s.isReady(heartbeats: beats(pids)))
    }
}

/// `migrate --check`'s verdict and exit status, which the master reads.
final class SchemaCheckTests: XCTestCase {
    func testVerdictsAndExitCodes() {
        XCTAssertEqual(SchemaCheck(binary: 4, database: 4), .current(4))
        XCTAssertEqual(SchemaCheck(binary: 5, database: 4).exitCode, 3)
        XCTAssertEqual(SchemaCheck(binary: 4, database: 5).exitCode, 4)
        XCTAssertEqual(SchemaCheck(binary: 4, database: 4).exitCode, 0)
        XCTAssertTrue(SchemaCheck.explain(exitCode: 3).contains("newer than the database"))
        XCTAssertTrue(SchemaCheck.explain(exitCode: 4).contains("newer than the new binary"))
    }
}

/// The datagram sd_notify(3) sends, read from a socket standing in for systemd's.
final class SystemdNotifyTests: XCTestCase {
    func receiver(_ name: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        XCTAssertEqual(rc, 0, String(cString: strerror(errno)))
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func receive(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        return n > 0 ? String(decoding: buf.prefix(n), as: UTF8.self) : ""
    }

    func testMessagesReachAPathSocketAndAnAbstractOne() throws {
        let path = NSTemporaryDirectory() + "cc-notify-\(getpid()).sock"
        unlink(path)
        defer { unlink(path) }
        let fd = try receiver(path)
        defer { close(fd) }
        let n = SystemdNotify(environment: ["NOTIFY_SOCKET": path])
        n.ready(status: "serving")
        XCTAssertEqual(receive(fd), "READY=1\nSTATUS=serving\n")
        n.reloading(monotonicMicros: 1234)
        XCTAssertEqual(receive(fd), "RELOADING=1\nMONOTONIC_USEC=1234\nSTATUS=reloading: starting a new generation\n")

        let abstract = "@cc-notify-test-\(getpid())"
        let afd = try receiver(abstract)
        defer { close(afd) }
        SystemdNotify(environment: ["NOTIFY_SOCKET": abstract]).stopping(status: "bye")
        XCTAssertEqual(receive(afd), "STOPPING=1\nSTATUS=bye\n")
    }

    func testWithoutTheVariableNothingIsSent() {
        let n = SystemdNotify(environment: [:])
        XCTAssertFalse(n.isEnabled)
        XCTAssertFalse(n.send(["READY=1"]))
    }
}
