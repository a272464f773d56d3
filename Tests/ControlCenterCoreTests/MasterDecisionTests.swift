@testable import ControlCenterCore
import Glibc
import XCTest

/// The master's decisions, driven without processes: the test plays the
/// syscall layer, feeding `MasterState` spawned pids, exits, heartbeats and
/// the time, and checks the actions it asks for.
final class MasterDecisionTests: XCTestCase {
    static func pool(_ name: String, target: Int, threshold: Int = 3, quit: Double = 30) -> ChildGroup {
        ChildGroup(name: name, arguments: ["worker", "--pool", name], listen: .unix("/tmp/\(name).sock"),
                   target: target, restart: .init(threshold: threshold, interval: 60),
                   stop: .init(quitTimeout: quit, termTimeout: 5), heartbeat: .init(requestTimeout: 10),
                   reloadOnHUP: true)
    }

    /// A one-child group with no socket and no status file, as the collector
    /// will be: the same code must manage it with no special case.
    static func single(reloadOnHUP: Bool = false, threshold: Int = 3) -> ChildGroup {
        ChildGroup(name: "collector", arguments: ["collector"], listen: nil, target: 1,
                   restart: .init(threshold: threshold, interval: 60), stop: .init(quitTimeout: 2, termTimeout: 1),
                   heartbeat: nil, reloadOnHUP: reloadOnHUP)
    }

    var nextPid: pid_t = 1000
    let quiet = Heartbeats(nowMillis: 0)

    /// Ticks once and starts every child the tick asks for; returns the other actions.
    @discardableResult
    func tick(_ s: inout MasterState, at now: Double, _ beats: Heartbeats? = nil) -> [MasterAction] {
        let actions = s.tick(now: now, heartbeats: beats ?? quiet)
        var rest: [MasterAction] = []
        for a in actions {
            if case .spawn(let g, let slot) = a {
                nextPid += 1
                s.started(pid: nextPid, group: g, slot: slot, now: now)
            } else {
                rest.append(a)
            }
        }
        return rest
    }

    func pids(_ s: MasterState, group: Int) -> [pid_t] { s.children(of: group).map(\.pid) }

    /// The actions without the repeated QUITs.
    func decisive(_ actions: [MasterAction]) -> [MasterAction] {
        actions.filter { if case .signal(_, _, .repeatQuit) = $0 { false } else { true } }
    }

    func signals(_ actions: [MasterAction]) -> [(pid_t, Int32)] {
        actions.compactMap { if case .signal(let p, let sig, _) = $0 { (p, sig) } else { nil } }
    }

    // MARK: respawn

    func testEveryGroupIsFilledToItsTargetIncludingAOneChildGroupWithoutSocket() {
        var s = MasterState(groups: [Self.pool("main", target: 3), Self.single()])
        let actions = s.tick(now: 0, heartbeats: quiet)
        XCTAssertEqual(actions, [.spawn(group: 0, slot: 0), .spawn(group: 0, slot: 1), .spawn(group: 0, slot: 2),
                                 .spawn(group: 1, slot: 0)])
        for case .spawn(let g, let slot) in actions { nextPid += 1; s.started(pid: nextPid, group: g, slot: slot, now: 0) }
        XCTAssertEqual(s.tick(now: 0.1, heartbeats: quiet), [], "nothing more to do once every target is met")
    }

    func testADeadChildIsRespawnedInItsSlotAndCounted() {
        var s = MasterState(groups: [Self.pool("main", target: 3), Self.single()])
        tick(&s, at: 0)
        let victim = s.children(of: 0)[1]
        let reaped = s.reaped(pid: victim.pid, status: .signaled(SIGKILL), served: 7, now: 1)
        XCTAssertEqual(reaped, .child(victim, .died(backoffDelay: nil)))
        XCTAssertEqual(s.tick(now: 1, heartbeats: quiet), [.spawn(group: 0, slot: 1)])
        s.started(pid: 5000, group: 0, slot: 1, now: 1)
        XCTAssertEqual(s.groups[0].restarts, 1)
        XCTAssertEqual(s.groups[0].servedByExited, 7)

        let collector = s.children(of: 1)[0]
        XCTAssertEqual(s.reaped(pid: collector.pid, status: .exited(1), served: 0, now: 2),
                       .child(collector, .died(backoffDelay: nil)))
        XCTAssertEqual(s.tick(now: 2, heartbeats: quiet), [.spawn(group: 1, slot: 0)])
    }

    func testACleanExitIsRespawnedWithoutCountingTowardsBackoff() {
        var s = MasterState(groups: [Self.pool("main", target: 1, threshold: 2)])
        for i in 0..<5 {
            tick(&s, at: Double(i))
            let pid = pids(s, group: 0)[0]
            guard case .child(_, .expected) = s.reaped(pid: pid, status: .exited(0), served: 20, now: Double(i)) else {
                return XCTFail("max-requests exit is expected")
            }
        }
        XCTAssertEqual(s.tick(now: 5, heartbeats: quiet), [.spawn(group: 0, slot: 0)], "no backoff for clean exits")
        XCTAssertEqual(s.groups[0].restarts, 5)
    }

    // MARK: backoff

    func testThresholdDeathsBackOffWithDoublingDelayForEachGroup() {
        for group in [Self.pool("storage", target: 1, threshold: 3), Self.single(threshold: 3)] {
            var s = MasterState(groups: [group])
            var now = 0.0
            func crash() -> MasterState.Reaped {
                tick(&s, at: now)
                let pid = pids(s, group: 0)[0]
                return s.reaped(pid: pid, status: .signaled(SIGILL), served: 0, now: now)
            }
            for _ in 0..<2 {
                guard case .child(_, .died(let delay)) = crash(), delay == nil else { return XCTFail("\(group.name)") }
            }
            now = 0.2
            guard case .child(_, .died(let delay)) = crash() else { return XCTFail() }
            XCTAssertEqual(delay, 1, "\(group.name): the third death within the interval backs off 1 s")
            XCTAssertEqual(s.tick(now: 0.5, heartbeats: quiet), [], "no respawn while backing off")
            XCTAssertEqual(s.tick(now: 1.2, heartbeats: quiet), [.spawn(group: 0, slot: 0)], "respawn after it")
            now = 1.2
            s.started(pid: 99, group: 0, slot: 0, now: now)
            _ = s.reaped(pid: 99, status: .signaled(SIGILL), served: 0, now: now)
            _ = crash()
            guard case .child(_, .died(let second)) = crash() else { return XCTFail() }
            XCTAssertEqual(second, 2, "\(group.name): the next backoff doubles")
        }
    }

    func testDeathsOutsideTheIntervalDoNotAddUp() {
        var s = MasterState(groups: [Self.pool("main", target: 1, threshold: 2)])
        for now in [0.0, 61.0, 122.0] {
            tick(&s, at: now)
            let pid = pids(s, group: 0)[0]
            XCTAssertEqual(s.reaped(pid: pid, status: .signaled(SIGSEGV), served: 0, now: now),
                           .child(MasterState.Child(pid: pid, group: 0, slot: 0, generation: 0, startedAt: now),
                                  .died(backoffDelay: nil)))
        }
    }

    func testAFailedSpawnCountsAsADeath() {
        var s = MasterState(groups: [Self.single(threshold: 2)])
        XCTAssertNil(s.spawnFailed(group: 0, now: 0))
        XCTAssertEqual(s.spawnFailed(group: 0, now: 0.1), 1)
        XCTAssertEqual(s.tick(now: 0.5, heartbeats: quiet), [])
        XCTAssertEqual(s.tick(now: 1.2, heartbeats: quiet), [.spawn(group: 0, slot: 0)])
    }

    // MARK: request timeouts

    func testAChildBusyPastTheTimeoutIsKilledOnceAndNotCountedAsADeath() {
        var s = MasterState(groups: [Self.pool("main", target: 2), Self.single()])
        tick(&s, at: 0)
        let stuck = pids(s, group: 0)[0]
        let collector = pids(s, group: 1)[0]
        // 10 s timeout + 0.5 s: 10.4 s busy is still allowed, 10.6 s is not.
        let early = Heartbeats(nowMillis: 20_400, reporting: [stuck], busySince: [stuck: 10_000, collector: 0])
        XCTAssertEqual(tick(&s, at: 1, early), [], "the collector has no heartbeat and is never timed out")
        let late = Heartbeats(nowMillis: 20_600, reporting: [stuck], busySince: [stuck: 10_000, collector: 0])
        XCTAssertEqual(tick(&s, at: 2, late),
                       [.signal(pid: stuck, signal: SIGKILL, reason: .requestTimeout(elapsedMillis: 10_600))])
        XCTAssertEqual(tick(&s, at: 2.1, late), [], "killed once")
        XCTAssertEqual(s.groups[0].timeoutKills, 1)
        guard case .child(_, .timedOut) = s.reaped(pid: stuck, status: .signaled(SIGKILL), served: 3, now: 2.2) else {
            return XCTFail("reaped as timed out")
        }
        XCTAssertEqual(s.tick(now: 2.2, heartbeats: quiet), [.spawn(group: 0, slot: 0)])
    }

    // MARK: reload

    func testReloadStartsANewGenerationAndRetiresTheOldOnceItReports() {
        var s = MasterState(groups: [Self.pool("main", target: 2), Self.single(reloadOnHUP: false)])
        tick(&s, at: 0)
        let old = pids(s, group: 0)
        let collector = pids(s, group: 1)
        s.beginReload(now: 10)
        XCTAssertEqual(s.tick(now: 10, heartbeats: quiet), [.spawn(group: 0, slot: 0), .spawn(group: 0, slot: 1)],
                       "a full new generation beside the old one; the collector is not reloaded")
        s.started(pid: 2001, group: 0, slot: 0, now: 10)
        s.started(pid: 2002, group: 0, slot: 1, now: 10)
        XCTAssertEqual(tick(&s, at: 10.5, Heartbeats(nowMillis: 0, reporting: Set(old).union([2001]))), [],
                       "the old generation serves until the whole new one accepts")
        let actions = tick(&s, at: 10.6, Heartbeats(nowMillis: 0, reporting: Set(old).union([2001, 2002])))
        XCTAssertEqual(actions, old.map { .signal(pid: $0, signal: SIGQUIT, reason: .reload) })
        XCTAssertEqual(s.groups[0].generation, 1)
        XCTAssertEqual(s.groups[1].generation, 0)
        XCTAssertEqual(pids(s, group: 1), collector)
        for pid in old { guard case .child(_, .expected) = s.reaped(pid: pid, status: .exited(0), served: 1, now: 11) else { return XCTFail() } }
        XCTAssertEqual(s.tick(now: 11, heartbeats: quiet), [], "no respawn for retired children")
        XCTAssertEqual(s.groups[0].restarts, 0)
        XCTAssertEqual(s.reloads, 1)
    }

    func testReloadRetiresTheOldGenerationAfterThreeSecondsEvenIfTheNewOneNeverReports() {
        var s = MasterState(groups: [Self.pool("main", target: 1)])
        tick(&s, at: 0)
        let old = pids(s, group: 0)[0]
        s.beginReload(now: 10)
        tick(&s, at: 10)
        XCTAssertEqual(tick(&s, at: 12.9), [])
        XCTAssertEqual(tick(&s, at: 13.1), [.signal(pid: old, signal: SIGQUIT, reason: .reload)])
    }

    func testAOneChildGroupWithoutHeartbeatIsReadyOnceSpawned() {
        var s = MasterState(groups: [Self.single(reloadOnHUP: true)])
        tick(&s, at: 0)
        let old = pids(s, group: 0)[0]
        s.beginReload(now: 5)
        XCTAssertEqual(tick(&s, at: 5), [])
        XCTAssertEqual(tick(&s, at: 5.1), [.signal(pid: old, signal: SIGQUIT, reason: .reload)])
        XCTAssertEqual(s.children(of: 0).count, 2)
    }

    // MARK: stopping

    func testGracefulStopEscalatesQuitThenTermThenKillPerStopPolicy() {
        var s = MasterState(groups: [Self.pool("main", target: 2, quit: 30), Self.single()])
        tick(&s, at: 0)
        let workers = pids(s, group: 0)
        let collector = pids(s, group: 1)[0]
        s.beginStop(graceful: true)
        XCTAssertEqual(signals(tick(&s, at: 100)).map { $0.1 }, [SIGQUIT, SIGQUIT, SIGQUIT], "QUIT first, no respawn")
        XCTAssertEqual(tick(&s, at: 100.6), (workers + [collector]).sorted().map {
            .signal(pid: $0, signal: SIGQUIT, reason: .repeatQuit) }, "QUIT repeated while waiting")
        // The collector's policy: TERM after 2 s, KILL 1 s later.
        XCTAssertEqual(decisive(tick(&s, at: 102)), [.signal(pid: collector, signal: SIGTERM, reason: .escalate)])
        XCTAssertEqual(decisive(tick(&s, at: 103)), [.signal(pid: collector, signal: SIGKILL, reason: .escalate)])
        _ = s.reaped(pid: collector, status: .signaled(SIGKILL), served: 0, now: 103.1)
        _ = s.reaped(pid: workers[0], status: .exited(0), served: 0, now: 104)
        XCTAssertEqual(decisive(tick(&s, at: 130)), [.signal(pid: workers[1], signal: SIGTERM, reason: .escalate)],
                       "TERM at the quit timeout (CC_GRACEFUL_TIMEOUT)")
        XCTAssertEqual(tick(&s, at: 134.9), [])
        XCTAssertEqual(tick(&s, at: 135), [.signal(pid: workers[1], signal: SIGKILL, reason: .escalate)])
        XCTAssertEqual(tick(&s, at: 136), [], "KILL once")
        XCTAssertFalse(s.isFinished)
        guard case .child(_, .expected) = s.reaped(pid: workers[1], status: .signaled(SIGKILL), served: 0, now: 136) else {
            return XCTFail("a stop the master asked for is expected")
        }
        XCTAssertTrue(s.isFinished)
        XCTAssertEqual(s.groups[0].restarts, 0)
    }

    func testFastStopStartsAtTermAndOvertakesAGracefulOne() {
        var s = MasterState(groups: [Self.pool("main", target: 2)])
        tick(&s, at: 0)
        let workers = pids(s, group: 0)
        s.beginStop(graceful: true)
        tick(&s, at: 1)
        s.beginStop(graceful: false)
        XCTAssertEqual(tick(&s, at: 1.1), workers.map { .signal(pid: $0, signal: SIGTERM, reason: .stop) })
        s.beginStop(graceful: true)
        XCTAssertEqual(s.phase, .stopping(graceful: false), "a graceful stop never overrides a fast one")
        XCTAssertEqual(tick(&s, at: 6.2), workers.map { .signal(pid: $0, signal: SIGKILL, reason: .escalate) })
    }

    func testTtouRetiresTheHighestSlotAndNeverGoesBelowOne() {
        var s = MasterState(groups: [Self.pool("main", target: 3)])
        tick(&s, at: 0)
        let highest = s.children(of: 0)[2].pid
        XCTAssertEqual(s.resize(group: 0, by: -1).to, 2)
        XCTAssertEqual(tick(&s, at: 1), [.signal(pid: highest, signal: SIGQUIT, reason: .resize)])
        guard case .child(_, .expected) = s.reaped(pid: highest, status: .exited(0), served: 0, now: 1.2) else { return XCTFail() }
        XCTAssertEqual(tick(&s, at: 1.3), [])
        XCTAssertEqual(s.resize(group: 0, by: -1).to, 1)
        XCTAssertEqual(s.resize(group: 0, by: -1).to, 1)
        XCTAssertEqual(s.resize(group: 0, by: 1).to, 2)
    }

    // MARK: reaping

    func testAnUnknownChildIsReapedAndLogged() {
        var s = MasterState(groups: [Self.pool("main", target: 1)])
        tick(&s, at: 0)
        let before = s.children
        s.changed = false
        let reaped = s.reaped(pid: 4242, status: .exited(3), served: 0, now: 1)
        XCTAssertEqual(reaped, .unknown)
        XCTAssertEqual(s.children, before)
        XCTAssertFalse(s.changed)
        XCTAssertEqual(s.groups[0].restarts, 0)
        let entry = ReapLog.entry(pid: 4242, status: .exited(3), reaped: reaped, group: nil, last: nil)
        XCTAssertEqual(entry, ReapLog.Entry(level: .warning, message: "unknown child reaped",
                                            fields: ["pid": "4242", "status": "exit 3"]))
    }

    func testReapLogNamesTheGroupAndTheRequestInFlight() {
        let child = MasterState.Child(pid: 7, group: 0, slot: 2, generation: 0, startedAt: 0)
        let last = WorkerStatusRecord(pid: 7, pool: "storage", slot: 2, startedMillis: 0, served: 5, busy: true,
                                      sinceMillis: 0, method: "GET", path: "/api/test/crash")
        let died = ReapLog.entry(pid: 7, status: .signaled(SIGILL), reaped: .child(child, .died(backoffDelay: nil)),
                                 group: "storage", last: last)
        XCTAssertEqual(died.level, .error)
        XCTAssertEqual(died.message, "worker died")
        XCTAssertEqual(died.fields["pool"], "storage")
        XCTAssertEqual(died.fields["in_flight"], "GET /api/test/crash")
        XCTAssertEqual(died.fields["status"], "signal 4 (ILL)")
        XCTAssertEqual(ReapLog.entry(pid: 7, status: .signaled(SIGKILL), reaped: .child(child, .timedOut),
                                     group: "storage", last: last).message, "worker killed after request timeout")
    }
}
