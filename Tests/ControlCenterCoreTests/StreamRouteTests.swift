@testable import ControlCenterCore
import Foundation
import XCTest

/// The live channels' handshake checks (StreamRoutes), stream tickets and
/// the session cookie, in-process on a real database (nginx passes the
/// subscriber's path, headers and `?ticket=` to these routes).
class StreamRouteTests: StorageTestCase {
    func testTicketAdmitsOneHandshakeOnceAndNeverAnAPIRequest() throws {
        let issued = h.call("POST", "/api/stream/ticket", token: h.adminToken)
        XCTAssertEqual(issued.status, 201)
        let body = try h.object(issued)
        let ticket = try XCTUnwrap(body["ticket"] as? String)
        XCTAssertEqual(ticket.count, 64)
        XCTAssertEqual(body["expires_in"] as? Int, 60)
        XCTAssertEqual(h.call("POST", "/api/stream/ticket").status, 401, "a ticket needs a token")
        XCTAssertEqual(h.call("GET", "/api/auth/me", token: ticket).status, 401, "a ticket is not a token")
        let check = ["x-cc-stream-ticket": ticket]
        XCTAssertEqual(h.call("GET", "/api/stream/events", headers: check).status, 204)
        let again = h.call("GET", "/api/stream/events", headers: check)
        XCTAssertEqual(again.status, 401, "single use")
        XCTAssertEqual(h.errorCode(again), "invalid_ticket")
        for garbage in ["", "x", String(repeating: "g", count: 64), String(repeating: "A", count: 64), "' OR 1=1 --"] {
            let r = h.call("GET", "/api/stream/events", headers: ["x-cc-stream-ticket": garbage])
            XCTAssertEqual(r.status, 401, garbage)
        }
    }

    func testTicketExpiresAfterSixtySeconds() throws {
        let db = try h.openConnection()
        defer { db.close() }
        let repo = StreamTicketRepository(db)
        let t0: Int64 = 1_800_000_000_000
        let a = try repo.issue(userID: h.adminID, now: t0)
        XCTAssertEqual(a.expiresAt, t0 + 60_000)
        XCTAssertNil(try repo.redeem(a.ticket, now: t0 + 60_001), "expired")
        XCTAssertNil(try repo.redeem(a.ticket, now: t0), "and gone")
        let b = try repo.issue(userID: h.adminID, now: t0)
        XCTAssertEqual(try repo.redeem(b.ticket, now: t0 + 59_000), h.adminID)
        let stored = try db.query("SELECT ticket_hash FROM stream_tickets", []).compactMap { $0.string(0) }
        XCTAssertFalse(stored.contains(b.ticket), "only hashes are stored")
    }

    func testEventsHandshakeNeedsAViewerAndTheCookieOnlyFromAnAllowedOrigin() throws {
        XCTAssertEqual(h.call("GET", "/api/stream/events").status, 401)
        XCTAssertEqual(h.call("GET", "/api/stream/events", token: h.adminToken).status, 204)
        XCTAssertEqual(h.call("GET", "/api/stream/system").status, 204, "public by default")
        let cookie = ["cookie": "a=b; cc_session=\(h.adminToken)", "host": "cc.example:8080"]
        XCTAssertEqual(h.call("GET", "/api/stream/events", headers: cookie).status, 204, "no Origin: not a browser page")
        for (origin, status) in [("http://cc.example:8080", 204), ("HTTP://CC.EXAMPLE:8080", 204),
                                 ("https://cc.example:8080", 403), ("http://evil.example", 403), ("null", 403)] {
            var headers = cookie
            headers["origin"] = origin
            let r = h.call("GET", "/api/stream/events", headers: headers)
            XCTAssertEqual(r.status, status, origin)
            if status == 403 { XCTAssertEqual(h.errorCode(r), "origin_not_allowed") }
        }
        // A bearer header is no ambient credential: its Origin does not matter.
        XCTAssertEqual(h.call("GET", "/api/stream/events", token: h.adminToken, headers: ["origin": "http://evil.example"]).status, 204)
    }

    func testCookieWritesNeedACSRFHeader() throws {
        let cookie = "cc_session=\(h.adminToken)"
        let json = ["message": "x"]
        let forged = h.call("POST", "/api/events", json: json, headers: ["cookie": cookie])
        XCTAssertEqual(forged.status, 403)
        XCTAssertEqual(h.errorCode(forged), "csrf_header_required")
        for header in ["x-requested-with", "x-csrf-token"] {
            XCTAssertEqual(h.call("POST", "/api/events", json: json, headers: ["cookie": cookie, header: "1"]).status, 201, header)
        }
        XCTAssertEqual(h.call("GET", "/api/events", headers: ["cookie": cookie]).status, 200, "reads need none")
        XCTAssertEqual(h.call("GET", "/api/events", headers: ["cookie": "cc_session="]).status, 401, "an empty cookie is none")
    }
}

final class StreamRoutePostgresTests: StreamRouteTests {
    override class var engine: TestEngine { .postgres }
    override func testTicketAdmitsOneHandshakeOnceAndNeverAnAPIRequest() throws { try super.testTicketAdmitsOneHandshakeOnceAndNeverAnAPIRequest() }
    override func testTicketExpiresAfterSixtySeconds() throws { try super.testTicketExpiresAfterSixtySeconds() }
    override func testEventsHandshakeNeedsAViewerAndTheCookieOnlyFromAnAllowedOrigin() throws {
        try super.testEventsHandshakeNeedsAViewerAndTheCookieOnlyFromAnAllowedOrigin()
    }
    override func testCookieWritesNeedACSRFHeader() throws { try super.testCookieWritesNeedACSRFHeader() }
}
