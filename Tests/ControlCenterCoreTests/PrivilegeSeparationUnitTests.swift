import Foundation
import Glibc
import XCTest
@testable import ControlCenterCore

/// The decisions of privilege separation, without dropping this process:
/// whom to drop to, which modes the shared files get, and what a worker that
/// may not refresh snapshots serves. The drop itself is tested on real
/// workers (IntegrationTests/PrivilegeSeparationTests).
final class PrivilegeSeparationUnitTests: XCTestCase {
    func testNoUserToDropToWhenNotRoot() throws {
        let config = try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_USER": "no-such-user-at-all"])
        XCTAssertNil(try WorkerUser.resolve(config, isRoot: false), "not root: nothing changes, the user is not even looked up")
    }

    func testRootNeedsAnExistingUserThatIsNotRoot() throws {
        let missing = try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_USER": "no-such-user-at-all"])
        XCTAssertThrowsError(try WorkerUser.resolve(missing, isRoot: true)) { error in
            XCTAssertTrue("\(error)".contains("CC_USER no-such-user-at-all is not a user on this host"), "\(error)")
            XCTAssertTrue("\(error)".contains("useradd --system"), "says how to create it: \(error)")
        }
        let root = try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_USER": "root"])
        XCTAssertThrowsError(try WorkerUser.resolve(root, isRoot: true)) { error in
            XCTAssertTrue("\(error)".contains("uid or gid 0"), "\(error)")
        }
        let nobody = try XCTUnwrap(try WorkerUser.resolve(try Config(values: ["CC_STATE_DIR": "/tmp/x", "CC_USER": "nobody"]),
                                                          isRoot: true))
        XCTAssertEqual(nobody.uid, getpwnam("nobody").pointee.pw_uid)
        XCTAssertEqual(nobody.gid, getpwnam("nobody").pointee.pw_gid)
    }

    func testTheDefaultUserIsControlCenter() throws {
        XCTAssertEqual(try Config(values: [:]).user, "control-center")
    }

    func testPlanGivesEachSharedPathItsMode() throws {
        let config = try Config(values: ["CC_STATE_DIR": "/s", "CC_LOG_FILE": "/var/log/cc/master.log",
                                         "CC_ACCESS_LOG": "/dev/stdout", "CC_NGINX_USER": "www-data"])
        let plan = Dictionary(uniqueKeysWithValues: StatePermissions.plan(config).map { ($0.path, $0.mode) })
        XCTAssertEqual(plan["/s"], 0o3771, "SQLite in the state dir: group-writable for -wal/-shm, sticky; nginx searches")
        XCTAssertEqual(plan["/s/run"], 0o2751)
        XCTAssertEqual(plan["/s/run/workers"], 0o2770)
        XCTAssertEqual(plan["/s/run/metrics"], 0o2770)
        XCTAssertEqual(plan["/s/run/action-wait"], 0o2770)
        XCTAssertEqual(plan["/s/cache"], 0o2750)
        XCTAssertEqual(plan["/s/services"], 0o2750)
        XCTAssertEqual(plan["/s/jwt.secret"], 0o640)
        for f in ["/s/control-center.db", "/s/control-center.db-wal", "/s/control-center.db-shm"] {
            XCTAssertEqual(plan[f], 0o660, f)
        }
        XCTAssertEqual(plan["/var/log/cc/master.log"], 0o660)
        XCTAssertNil(plan["/dev/stdout"], "a device is never chmod'ed")
        XCTAssertNil(plan["/s/run/publish"], "the publisher socket's directory stays root's alone")
        XCTAssertTrue(plan.values.allSatisfy { $0 & 0o006 == 0 }, "nothing world-readable or -writable: \(plan)")
    }

    func testPlanWithoutSQLiteInTheStateDirOrAGeneratedSecret() throws {
        let config = try Config(values: ["CC_STATE_DIR": "/s", "CC_DATABASE_URL": "postgres://cc@localhost/cc",
                                         "CC_JWT_SECRET": String(repeating: "k", count: 32)])
        let plan = Dictionary(uniqueKeysWithValues: StatePermissions.plan(config).map { ($0.path, $0.mode) })
        XCTAssertEqual(try XCTUnwrap(plan["/s"]) & ~0o001, 0o2750, "no SQLite beside: the state dir is not writable by the workers")
        XCTAssertNil(plan["/s/jwt.secret"])
        XCTAssertFalse(plan.keys.contains { $0.hasSuffix(".db") })
    }

    func testApplySetsGroupAndModeOfExistingPathsOnly() throws {
        let dir = NSTemporaryDirectory() + "cc-perm-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/f"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        let group = getgid()
        let failed = StatePermissions.apply([.init(file, 0o640), .init(dir, 0o2750), .init(dir + "/absent", 0o660)],
                                            group: group)
        XCTAssertEqual(failed, [])
        var st = stat()
        XCTAssertEqual(stat(file, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        XCTAssertEqual(st.st_gid, group)
        XCTAssertEqual(stat(dir, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o2750)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/absent"), "nothing is created")
    }

    // MARK: a worker's cache, which never refreshes (with or without root)

    func testAWorkersCacheServesTheCollectorsCopyUntilMaxStaleThen503() throws {
        let h = try SystemHarness(["CC_CACHE_TTL_STATS": "0.05", "CC_CACHE_MAX_STALE": "0.3"])
        let collector = h.cache
        let written = try collector.forceRefresh(.stats)
        let worker = SnapshotCache(config: h.context.config)
        usleep(100_000)
        let stale = try worker.snapshot(.stats)
        XCTAssertEqual(stale.takenAtMillis, written.takenAtMillis, "stale but younger than max stale: served as is")
        XCTAssertGreaterThanOrEqual(Clock.wallMillis() - stale.takenAtMillis, 100, "with its time")
        XCTAssertEqual(collector.counters(.stats).refreshes, 1, "the worker did not refresh")
        usleep(300_000)
        XCTAssertThrowsError(try worker.snapshot(.stats)) { error in
            XCTAssertEqual((error as? APIError)?.status, 503, "\(error)")
            XCTAssertTrue("\(error)".contains("beyond CC_CACHE_MAX_STALE"), "\(error)")
        }
        XCTAssertEqual(collector.counters(.stats).refreshes, 1, "never a refresh of its own")
    }

    func testAWorkersCacheWaitsBrieflyForTheFirstCopy() throws {
        let h = try SystemHarness(["CC_REQUEST_TIMEOUT": "0.4"])
        let worker = SnapshotCache(config: h.context.config)
        let t0 = Clock.monotonicSeconds()
        XCTAssertThrowsError(try worker.snapshot(.processes)) { error in
            XCTAssertEqual((error as? APIError)?.status, 503, "\(error)")
        }
        let waited = Clock.monotonicSeconds() - t0
        XCTAssertGreaterThanOrEqual(waited, 0.15, "waits for the collector's first copy")
        XCTAssertLessThan(waited, 1, "but at most half the request timeout")
        XCTAssertFalse(FileManager.default.fileExists(atPath: SnapshotKind.processes.snapPath(h.cache.directory)),
                       "and writes nothing")
    }
}
