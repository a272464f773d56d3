@testable import ControlCenterCore
import Glibc
import XCTest

/// Which groups a configuration asks for, how a reload changes them, and the
/// `run/pool.state` file that shows them.
final class ChildGroupTests: XCTestCase {
    func testConfiguredGroupsAreTheRequestPoolsMainFirstThenTheCollector() throws {
        let c = try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_WORKERS": "3", "CC_STORAGE_WORKERS": "5",
                                    "CC_GRACEFUL_TIMEOUT": "7", "CC_REQUEST_TIMEOUT": "2",
                                    "CC_EMERGENCY_RESTART_THRESHOLD": "4"])
        let groups = ChildGroup.configured(c)
        XCTAssertEqual(groups.map(\.name), ["main", "storage", "collector", "supervisor"])
        XCTAssertEqual(groups.map(\.target), [3, 5, 1, 1])
        XCTAssertEqual(groups[0].arguments, ["worker", "--pool", "main"])
        XCTAssertEqual(groups[0].listen, c.listen)
        XCTAssertEqual(groups[1].listen, c.storageListen)
        XCTAssertEqual(groups[0].stop, .init(quitTimeout: 7, termTimeout: ChildGroup.termTimeout))
        XCTAssertEqual(groups[0].heartbeat, .init(requestTimeout: 2))
        XCTAssertEqual(groups[0].restart.threshold, 4)
        XCTAssertTrue(groups.prefix(3).allSatisfy(\.reloadOnHUP))
        XCTAssertEqual(groups.map(\.servesRequests), [true, true, false, false])
        XCTAssertEqual(groups[2].arguments, ["collector"])
        XCTAssertNil(groups[2].heartbeat, "the collector serves no requests, so nothing times it out")
        XCTAssertEqual(groups.map(\.publishesViews), [false, false, true, false], "the collector's exit removes the views")
        let supervisor = groups[3]
        XCTAssertEqual(supervisor.arguments, ["supervisor"])
        XCTAssertFalse(supervisor.reloadOnHUP, "HUP leaves the services alone")
        XCTAssertNil(supervisor.heartbeat)
        XCTAssertEqual(supervisor.stop.quitTimeout, ChildGroup.supervisorQuitTimeout)
        let noStorage = try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_STORAGE_WORKERS": "0", "CC_SUPERVISOR": "false"])
        XCTAssertEqual(ChildGroup.configured(noStorage).map(\.name), ["main", "collector"])
    }

    func testReloadKeepsSocketsAndGroupsAndAppliesTheRest() throws {
        let before = try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_WORKERS": "3"])
        var s = MasterState(groups: ChildGroup.configured(before))
        let moved = try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_WORKERS": "6", "CC_STORAGE_WORKERS": "0",
                                        "CC_LISTEN": "127.0.0.1:9000"])
        XCTAssertEqual(s.reconfigure(ChildGroup.configured(moved)), ["main", "storage"])
        XCTAssertEqual(s.groups.map(\.spec.name), ["main", "storage", "collector", "supervisor"], "groups change only on restart")
        XCTAssertEqual(s.groups[0].spec.target, 6, "the new target applies")
        XCTAssertEqual(s.groups[0].spec.listen, before.listen, "the bound socket stays")
    }

    func testPoolStateListsEveryGroupAndPoolsAreTheOnesWithASocket() throws {
        var s = MasterState(groups: [MasterDecisionTests.pool("main", target: 2), MasterDecisionTests.single()])
        s.started(pid: 11, group: 0, slot: 0, now: 0)
        s.started(pid: 12, group: 1, slot: 0, now: 0)
        _ = s.spawnFailed(group: 1, now: 0)
        _ = s.spawnFailed(group: 1, now: 0)
        _ = s.spawnFailed(group: 1, now: 0)
        let state = PoolState(s, masterPid: 10, startedAt: 1_700_000_000.5, now: 0.5)
        XCTAssertEqual(state.groups.map(\.name), ["main", "collector"])
        XCTAssertEqual(state.groups.map(\.live), [1, 1])
        XCTAssertEqual(state.groups.map(\.backoff), [false, true])
        XCTAssertEqual(state.groups[1].listen, nil)
        XCTAssertEqual(state.pools.map(\.name), ["main"])
        XCTAssertEqual(PoolState(decoding: state.encoded()), state, "written and parsed by the same type")

        let dir = NSTemporaryDirectory() + "pool-state-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertTrue(state.write(runDir: dir))
        XCTAssertEqual(PoolState.read(runDir: dir), state)
    }
}
