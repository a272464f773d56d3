@testable import ControlCenterCore
import Foundation
import XCTest

/// POST /api/events validation and GET /api/events filters and keyset paging.
class EventRouteTests: StorageTestCase {
    func testPostNeedsOperator() throws {
        let (_, viewer) = try h.makeUser("v", role: "viewer")
        let (_, op) = try h.makeUser("o", role: "operator")
        XCTAssertEqual(h.call("POST", "/api/events", json: ["message": "m"]).status, 401)
        XCTAssertEqual(h.call("POST", "/api/events", json: ["message": "m"], token: viewer).status, 403)
        let r = h.call("POST", "/api/events", json: ["message": "disk replaced", "level": "warning", "source": "ops-script",
                                                      "action": "hw.replace", "target": "sda", "data": ["slot": 3, "ok": true]],
                       token: op)
        XCTAssertEqual(r.status, 201)
        let e = try h.object(r)
        XCTAssertEqual(e["actor"] as? String, "o", "the actor is the token's user, not client-chosen")
        XCTAssertEqual(e["level"] as? String, "warning")
        XCTAssertEqual((e["data"] as? [String: Any])?["slot"] as? Int, 3)
        XCTAssertEqual(h.call("POST", "/api/events", json: ["message": "m"], token: h.adminToken).status, 201)
    }

    func testPostValidatesEveryField() throws {
        let (_, op) = try h.makeUser("o", role: "operator")
        let big = String(repeating: "x", count: 70_000)
        let cases: [([String: Any], Int)] = [
            ([:], 422),
            (["message": ""], 422),
            (["message": 5], 422),
            (["message": String(repeating: "m", count: 4097)], 422),
            (["message": "m", "level": "fatal"], 422),
            (["message": "m", "level": 3], 422),
            (["message": "m", "source": ""], 422),
            (["message": "m", "source": String(repeating: "s", count: 65)], 422),
            (["message": "m", "action": String(repeating: "a", count: 129)], 422),
            (["message": "m", "target": String(repeating: "t", count: 257)], 422),
            (["message": "m", "target": ["x"]], 422),
            (["message": "m", "data": "a string"], 422),
            (["message": "m", "data": 12], 422),
            (["message": "m", "data": ["blob": big]], 413),
        ]
        for (body, status) in cases {
            let r = h.call("POST", "/api/events", json: body, token: op)
            XCTAssertEqual(r.status, status, "\(body.keys.sorted()): \(String(decoding: r.body.prefix(200), as: UTF8.self))")
            XCTAssertNotNil(h.errorCode(r))
        }
        XCTAssertEqual(h.call("POST", "/api/events", body: "[1,2]", token: op, headers: ["content-type": "application/json"]).status, 400)
        XCTAssertEqual(h.call("POST", "/api/events", body: "{", token: op, headers: ["content-type": "application/json"]).status, 400)
        XCTAssertEqual(h.call("POST", "/api/events", body: "message=x", token: op,
                              headers: ["content-type": "application/x-www-form-urlencoded"]).status, 415)
        XCTAssertEqual(h.call("POST", "/api/events", json: ["message": "m", "data": ["blob": String(repeating: "y", count: 60_000)]],
                              token: op).status, 201, "just under 64 KiB is fine")
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE source <> 'audit'"), 1)
    }

    func testInjectionStringsAreStoredVerbatim() throws {
        let (_, op) = try h.makeUser("o", role: "operator")
        for s in injectionStrings {
            let r = h.call("POST", "/api/events", json: ["message": s, "source": String(s.prefix(64)), "action": s, "target": s,
                                                          "data": [s: s]], token: op)
            XCTAssertEqual(r.status, 201)
            let id = try XCTUnwrap(try h.object(r)["id"] as? Int)
            let row = try XCTUnwrap(try StorageService.shared(h.ctx).run {
                try $0.queryOne("SELECT message, action, target, source FROM events WHERE id = ?", [.int(Int64(id))])
            })
            XCTAssertEqual(row.string(0), s)
            XCTAssertEqual(row.string(1), s)
            XCTAssertEqual(row.string(2), s)
        }
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM users"), 2)
        // Searching for them finds exactly the stored rows, with LIKE wildcards taken literally.
        let found = try h.object(h.call("GET", "/api/events?source=\(pct(String(injectionStrings[5].prefix(64))))&q=\(pct("%_\\"))",
                                        token: op))
        XCTAssertEqual(found["count"] as? Int, 1)
        let none = try h.object(h.call("GET", "/api/events?q=\(pct("%%"))", token: op))
        XCTAssertEqual(none["count"] as? Int, 0)
    }

    func testListFiltersAndKeysetPaging() throws {
        let (_, op) = try h.makeUser("o", role: "operator")
        let (_, viewer) = try h.makeUser("v", role: "viewer")
        let repo = EventRepository(try StorageService.shared(h.ctx).database())
        let base: Int64 = 1_700_000_000_000
        for i in 0..<25 {
            try repo.insert(Event(ts: base + Int64(i / 2) * 1000, level: i % 5 == 0 ? .error : .info,
                                  source: i % 2 == 0 ? "cron" : "backup", actor: "o", action: nil, target: nil,
                                  message: i == 7 ? "Disk FULL on /var" : "routine \(i)"))
        }
        XCTAssertEqual(h.call("GET", "/api/events").status, 401, "the event log is not public")
        func page(_ q: String) throws -> [String: Any] {
            let r = h.call("GET", "/api/events?\(q)", token: viewer)
            XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
            return try h.object(r)
        }
        func ids(_ o: [String: Any]) -> [Int] { (o["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int } }
        let since = base / 1000
        var seen: [Int] = []
        var cursor: String?
        repeat {
            let o = try page("since=\(since)&until=\(since + 100)&limit=10" + (cursor.map { "&cursor=\($0)" } ?? ""))
            seen += ids(o)
            cursor = o["next_cursor"] as? String
        } while cursor != nil
        XCTAssertEqual(seen.count, 25)
        XCTAssertEqual(Set(seen).count, 25, "no repeats across pages")
        XCTAssertEqual(try page("since=\(since)&until=\(since + 100)&level=error")["count"] as? Int, 5)
        XCTAssertEqual(try page("since=\(since)&until=\(since + 100)&source=cron")["count"] as? Int, 13)
        XCTAssertEqual(try page("since=\(since)&until=\(since + 100)&level=error&source=cron")["count"] as? Int, 3)
        XCTAssertEqual(try page("q=disk%20full")["count"] as? Int, 1, "text search is case-insensitive")
        XCTAssertEqual(try page("since=\(since + 5)&until=\(since + 7)")["count"] as? Int, 4)
        XCTAssertEqual(try page("since=2023-11-14T22:13:25Z&until=2023-11-14T22:13:27.000Z")["count"] as? Int, 4)
        let newest = try page("until=\(since + 100)&limit=1")
        XCTAssertEqual((newest["events"] as? [[String: Any]])?.first?["message"] as? String, "routine 24")
        XCTAssertEqual(try page("limit=5000")["limit"] as? Int, 1000, "limit is capped")
        for bad in ["level=fatal", "limit=0", "limit=x", "cursor=abc", "cursor=1_x", "since=yesterday", "until=2024-13-01",
                    "source=\(String(repeating: "s", count: 65))", "q=\(String(repeating: "q", count: 257))"] {
            let r = h.call("GET", "/api/events?\(bad)", token: op)
            XCTAssertEqual(r.status, 400, bad)
            XCTAssertNotNil(h.errorCode(r))
        }
    }

    func testEveryMutationWritesItsAuditEventAtomically() throws {
        // A failing change leaves neither the change nor its audit event.
        let before = try h.count("SELECT COUNT(*) FROM events")
        XCTAssertEqual(h.call("DELETE", "/api/auth/users/\(h.adminID)", token: h.adminToken).status, 409)
        XCTAssertEqual(h.call("POST", "/api/auth/register", json: ["username": "admin", "password": "xxxxxxxxxxxx"],
                              token: h.adminToken).status, 409)
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events"), before)
        XCTAssertThrowsError(try Store.write(h.ctx) { db in
            try Audit.record(db, actor: "t", action: "test.rollback", target: nil, message: "must vanish")
            throw APIError.badRequest("abort")
        })
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM events WHERE action = 'test.rollback'"), 0)
    }
}

private func pct(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class EventRoutePostgresTests: EventRouteTests {
    override class var engine: TestEngine { .postgres }
    override func testPostNeedsOperator() throws { try super.testPostNeedsOperator() }
    override func testPostValidatesEveryField() throws { try super.testPostValidatesEveryField() }
    override func testInjectionStringsAreStoredVerbatim() throws { try super.testInjectionStringsAreStoredVerbatim() }
    override func testListFiltersAndKeysetPaging() throws { try super.testListFiltersAndKeysetPaging() }
    override func testEveryMutationWritesItsAuditEventAtomically() throws { try super.testEveryMutationWritesItsAuditEventAtomically() }
}
