import Foundation
import Glibc
import XCTest
@testable import ControlCenterCore

/// The files nginx sends itself (control-center-views.conf): written by the
/// refresher, byte-identical to the worker's default body, stamped with the
/// snapshot's time, absent when nginx must not serve them, and removed by
/// the master (ViewFiles) once older than CC_CACHE_MAX_STALE.
final class NginxViewTests: XCTestCase {
    func testRefreshPublishesTheDefaultViewsStampedWithTheirTime() throws {
        let h = try SystemHarness()
        for kind in ["processes", "stats", "network"] {
            let r = h.get("/api/system/\(kind)")
            XCTAssertEqual(r.status, 200)
            let path = h.context.config.viewsDir + "/\(kind).json"
            let view = try XCTUnwrap(FileManager.default.contents(atPath: path), "\(kind) view written")
            XCTAssertEqual(Array(view), r.body, "\(kind): the view is the worker's answer, byte for byte")

            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
            let takenAt = try XCTUnwrap((json["snapshot"] as? [String: Any])?["taken_at_ms"] as? Int)
            var st = stat()
            XCTAssertEqual(stat(path, &st), 0)
            XCTAssertEqual(Int(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1_000_000, takenAt,
                           "mtime is the snapshot's time, which nginx turns into the age")
            XCTAssertEqual(st.st_mode & 0o777, 0o644, "readable by nginx's workers")
        }
        _ = try h.cache.forceRefresh(.connections)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.context.config.viewsDir + "/connections.json"),
                       "lists cut per request have no nginx view")
    }

    func testNoViewsWithoutPublicReadsOrWhenTurnedOff() throws {
        for settings in [["CC_PUBLIC_READ": "false"], ["CC_NGINX_VIEWS": "false"]] {
            let h = try SystemHarness(settings)
            XCTAssertNil(h.cache.viewsDirectory)
            _ = try h.cache.forceRefresh(.processes)
            XCTAssertFalse(FileManager.default.fileExists(atPath: h.context.config.viewsDir + "/processes.json"),
                           "\(settings): nginx would send it without checking a token")
        }
    }

    func testTimestampsRoundToTheMillisecondTheyStandFor() {
        // 1795928055.001 is 1795928055.000999… as a Double.
        XCTAssertEqual(Clock.iso8601(Double(1_795_928_055_001) / 1000), "2026-11-29T04:54:15.001Z")
        XCTAssertEqual(Clock.iso8601(Double(1_795_928_055_999) / 1000), "2026-11-29T04:54:15.999Z")
        XCTAssertEqual(Clock.iso8601(1_795_928_055.9996), "2026-11-29T04:54:16.000Z")
    }
}

final class ViewFilesTests: XCTestCase {
    func testExpiredIsBeyondMaxStaleEitherWay() {
        let now: Int64 = 1_000_000
        let m: [SnapshotKind: Int64] = [.processes: now - 29_999, .stats: now - 30_000, .network: now + 30_000]
        XCTAssertEqual(ViewFiles.expired(mtimes: m, nowMillis: now, maxStaleMillis: 30_000), [.network, .stats])
        XCTAssertEqual(ViewFiles.expired(mtimes: [.processes: now], nowMillis: now, maxStaleMillis: 30_000), [])
        XCTAssertEqual(ViewFiles.expired(mtimes: [.connections: 0], nowMillis: now, maxStaleMillis: 1), [], "no view of its own")
    }

    func testRemoveExpiredAndRemoveAllOnRealFiles() throws {
        let h = try SystemHarness(["CC_CACHE_TTL_STATS": "60"])
        _ = try h.cache.forceRefresh(.stats)
        _ = try h.cache.forceRefresh(.processes)
        let dir = h.context.config.viewsDir
        var old = [timespec(tv_sec: time(nil) - 40, tv_nsec: 0), timespec(tv_sec: time(nil) - 40, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, dir + "/stats.json", &old, 0), 0)
        XCTAssertEqual(ViewFiles.removeExpired(directory: dir, maxStale: 30), [.stats])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/stats.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/processes.json"), "a fresh view stays")
        XCTAssertEqual(ViewFiles.removeAll(directory: dir), 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/processes.json"))
    }
}
