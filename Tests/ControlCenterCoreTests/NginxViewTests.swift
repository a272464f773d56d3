import Foundation
import Glibc
import XCTest
@testable import ControlCenterCore

/// The files nginx sends itself (nginx/control-center-views.conf): written
/// by the refresher, byte-identical to the worker's default body up to the
/// age, stamped with the snapshot's time, and absent when nginx must not
/// serve them.
final class NginxViewTests: XCTestCase {
    func testRefreshPublishesTheDefaultViewsStampedWithTheirTime() throws {
        let h = try SystemHarness()
        for kind in ["processes", "stats", "network"] {
            let r = h.get("/api/system/\(kind)")
            XCTAssertEqual(r.status, 200)
            let path = h.context.config.viewsDir + "/\(kind).json"
            let view = try XCTUnwrap(FileManager.default.contents(atPath: path), "\(kind) view written")
            // The worker's body is the view plus `AGE}}`.
            let body = String(decoding: r.body, as: UTF8.self)
            let prefix = String(decoding: view, as: UTF8.self)
            XCTAssertTrue(prefix.hasSuffix("\"age_ms\":"), String(prefix.suffix(40)))
            XCTAssertTrue(body.hasPrefix(prefix), "\(kind): view is the worker's body up to the age")
            let rest = body.dropFirst(prefix.count)
            XCTAssertTrue(rest.hasSuffix("}}"))
            XCTAssertNotNil(Int(rest.dropLast(2)), String(rest))

            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
            let takenAt = try XCTUnwrap((json["snapshot"] as? [String: Any])?["taken_at_ms"] as? Int)
            var st = stat()
            XCTAssertEqual(stat(path, &st), 0)
            XCTAssertEqual(Int(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1_000_000, takenAt,
                           "mtime is the snapshot's time, which nginx turns into the age")
            XCTAssertEqual(st.st_mode & 0o777, 0o644, "readable by nginx's workers")
        }
        _ = try h.cache.snapshot(.connections)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.context.config.viewsDir + "/connections.json"),
                       "lists cut per request have no nginx view")
    }

    func testNoViewsWithoutPublicReadsOrWhenTurnedOff() throws {
        for settings in [["CC_PUBLIC_READ": "false"], ["CC_NGINX_VIEWS": "false"]] {
            let h = try SystemHarness(settings)
            XCTAssertNil(h.cache.viewsDirectory)
            _ = try h.cache.snapshot(.processes)
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

final class NginxViewMarkerTests: XCTestCase {
    func testRefreshMarksItsStartBeforeTheViewItPublishes() throws {
        let h = try SystemHarness()
        let before = Clock.wallMillis()
        _ = try h.cache.forceRefresh(.processes)
        let dir = try XCTUnwrap(h.cache.viewsDirectory)
        func mtimeMillis(_ p: String) throws -> Int {
            var st = stat()
            XCTAssertEqual(stat(p, &st), 0, p)
            return Int(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1_000_000
        }
        let marker = try mtimeMillis(dir + "/processes.refreshing")
        let view = try mtimeMillis(dir + "/processes.json")
        XCTAssertGreaterThanOrEqual(marker, Int(before))
        // nginx reads "marker newer than view" as "a refresh is under way".
        XCTAssertLessThanOrEqual(marker, view, "a finished refresh leaves its view at least as new as its marker")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/connections.refreshing"))
    }
}
