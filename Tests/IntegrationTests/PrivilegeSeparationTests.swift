@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// A master started as root: request workers run as CC_USER, the collector
/// and the supervisor keep root, the shared files have the group and modes
/// StatePermissions gives them, and requests that read and write through
/// those files still work.
final class PrivilegeSeparationTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "privilege separation needs a master started as root; this run is not root")
        let user = try Config.load().user
        try XCTSkipUnless(getpwnam(user) != nil,
                          "CC_USER \(user) does not exist (Scripts/test creates it: Scripts/lib/common.sh cc_ensure_worker_user)")
    }

    /// Uid and Gid lines of /proc/<pid>/status: real, effective, saved, filesystem.
    static func ids(_ pid: pid_t) throws -> (uid: [UInt32], gid: [UInt32], groups: [UInt32]) {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> [UInt32] {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return [] }
            return line.dropFirst(name.count + 1).split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) }
        }
        return (field("Uid"), field("Gid"), field("Groups"))
    }

    static func role(_ pid: pid_t) -> String {
        let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        return cmd.split(separator: "\0").dropFirst().first.map(String.init) ?? "?"
    }

    static func mode(_ path: String) throws -> (mode: mode_t, uid: uid_t, gid: gid_t) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TestServerError.setup("stat \(path): errno \(errno)") }
        return (st.st_mode & 0o7777, st.st_uid, st.st_gid)
    }

    func testWorkersRunAsTheUserAndRootKeepsOnlyTheCollectorAndSupervisor() throws {
        let server = try TestServer(env: ["CC_SUPERVISOR": "true"])
        defer { server.stop() }
        let user = try XCTUnwrap(getpwnam(try Config.load().user)).pointee
        let children = server.workerPids()
        var roles: [String: Int] = [:]
        for pid in children {
            let role = Self.role(pid)
            roles[role, default: 0] += 1
            let ids = try Self.ids(pid)
            switch role {
            case "worker":
                XCTAssertEqual(ids.uid, Array(repeating: user.pw_uid, count: 4), "worker \(pid): every uid is CC_USER's")
                XCTAssertEqual(ids.gid, Array(repeating: user.pw_gid, count: 4), "worker \(pid): every gid is CC_USER's")
                XCTAssertEqual(ids.groups, [user.pw_gid], "worker \(pid): no supplementary group but its own")
                let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                XCTAssertTrue(status.contains("NoNewPrivs:\t1"), "worker \(pid): no exec may regain privileges")
                // Root's capabilities went with the uid: nothing to setuid(0) with.
                for cap in ["CapPrm", "CapEff", "CapAmb"] {
                    XCTAssertTrue(status.contains("\(cap):\t0000000000000000"), "worker \(pid): \(cap) is empty")
                }
            case "collector", "supervisor":
                XCTAssertEqual(ids.uid, [0, 0, 0, 0], "\(role) keeps root")
            default:
                XCTFail("unexpected child \(pid): \(role)")
            }
        }
        XCTAssertEqual(roles["worker"], 4, "both pools' workers: \(roles)")
        XCTAssertEqual(roles["collector"], 1)
        XCTAssertEqual(roles["supervisor"], 1)
        XCTAssertEqual(try Self.ids(server.masterPid).uid, [0, 0, 0, 0], "the master keeps root")

        // Requests still work through the shared files: login and a write
        // (SQLite and its -wal, the JWT secret), the collector's snapshots.
        let token = try SupervisorTests.adminToken(server)
        let event = try SupervisorTests.call(server, "POST", "/api/events", ["message": "written by CC_USER"], token: token)
        XCTAssertEqual(event.status, 201, event.text)
        let listed = try SupervisorTests.call(server, "GET", "/api/events?limit=5", token: token)
        XCTAssertEqual(listed.status, 200, listed.text)
        XCTAssertTrue(listed.text.contains("written by CC_USER"))
        let procs = try server.get("/api/system/processes?limit=500")
        XCTAssertEqual(procs.status, 200, procs.text)
        let rows = try XCTUnwrap(procs.json?["processes"] as? [[String: Any]])
        XCTAssertTrue(rows.contains { $0["pid"] as? Int == Int(server.masterPid) },
                      "the collector's view, not CC_USER's: root's master is listed")
        for path in ["/api/system/stats", "/api/system/network", "/api/system/ports"] {
            XCTAssertEqual(try server.get(path).status, 200, path)
        }
        // Root's process, read live by a worker as CC_USER: the privileged
        // fields are null and say why.
        let master = try SupervisorTests.call(server, "GET", "/api/system/processes/\(server.masterPid)", token: token)
        XCTAssertEqual(master.status, 200, master.text)
        XCTAssertTrue(master.json?["exe"] is NSNull, master.text)
        XCTAssertEqual(master.json?["unreadable"] as? [String: String],
                       ["exe": "permission", "cwd": "permission", "fd_count": "permission", "io": "permission"], master.text)
        let services = try SupervisorTests.call(server, "GET", "/api/services", token: token)
        XCTAssertEqual(services.status, 200, services.text)
        let ready = try server.get("/health/ready")
        XCTAssertEqual(ready.status, 200, ready.text)

        // The files workers share with root's children.
        let gid = user.pw_gid
        let state = server.stateDir
        let expected: [(String, mode_t)] = [
            (state, 0o3771), (state + "/run", 0o2751), (state + "/run/workers", 0o2770),
            (state + "/run/metrics", 0o2770), (state + "/run/action-wait", 0o2770), (state + "/cache", 0o2750),
            (state + "/jwt.secret", 0o640), (state + "/control-center.db", 0o660),
            (state + "/master.log", 0o660), (state + "/access.log", 0o660),
            (state + "/run/collector.wake", 0o660), (state + "/run/supervisor.wake", 0o660),
            (state + "/run/service-actions.notice", 0o640),
        ]
        for (path, mode) in expected {
            let m = try Self.mode(path)
            XCTAssertEqual(String(m.mode, radix: 8), String(mode, radix: 8), path)
            XCTAssertEqual(m.gid, gid, "\(path) has CC_USER's group")
        }
        XCTAssertEqual(try Self.mode(state + "/jwt.secret").mode & 0o007, 0, "the secret is never world-readable")
        let wal = state + "/control-center.db-wal"
        if FileManager.default.fileExists(atPath: wal) {
            XCTAssertEqual(try Self.mode(wal).mode & 0o060, 0o060, "-wal is read-write for the workers' group")
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: state + "/cache") where name.hasSuffix(".snap") {
            let m = try Self.mode(state + "/cache/" + name)
            XCTAssertEqual(m.uid, 0, "\(name) is written by the collector")
            XCTAssertEqual(m.mode, 0o640, name)
            XCTAssertEqual(m.gid, gid, name)
        }
    }

    func testAHUPThatChangesTheUserKeepsWorkersOnTheUserTheFilesWereGiven() throws {
        let file = NSTemporaryDirectory() + "cc-privsep-conf-\(getpid())"
        let user = try Config.load().user
        try "CC_USER=\(user)\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let server = try TestServer(env: ["CC_CONFIG_FILE": file])
        defer { server.stop() }
        let uid = try XCTUnwrap(getpwnam(user)).pointee.pw_uid
        let before = server.workerPids()
        try "CC_USER=nobody\n".write(toFile: file, atomically: true, encoding: .utf8)
        server.signalMaster(SIGHUP)
        XCTAssertTrue(waitUntil(15) { server.workerPids().isDisjoint(with: before) && server.poolIsFull() }, "reloaded")
        for pid in server.workerPids() where Self.role(pid) == "worker" {
            XCTAssertEqual(try Self.ids(pid).uid.first, uid, "worker \(pid) still runs as \(user)")
        }
        XCTAssertTrue(server.log().contains("CC_USER changes only on restart"), "and the master says so")
        XCTAssertEqual(try server.get("/api/system/stats").status, 200)
    }

    func testAMissingUserStopsTheMasterWithAClearMessage() throws {
        let name = "cc-no-such-user-\(getpid())"
        let state = NSTemporaryDirectory() + "cc-privsep-\(getpid())"
        var env = ProcessInfo.processInfo.environment
        env["CC_USER"] = name
        env["CC_STATE_DIR"] = state
        env["CC_LOG_FILE"] = nil
        let run = try ExternalTool.capture(TestServer.binary, ["serve"], environment: env)
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.output.contains("CC_USER \(name) is not a user on this host"), run.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: state), "refused before touching the state directory")
    }
}
