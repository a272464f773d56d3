@testable import ControlCenterCore
import Foundation
import XCTest

/// Issue 9 §3, first item: with CC_PUBLIC_READ=true an anonymous client gets
/// the old dashboard's process fields and the host summary, never command
/// lines, exe, cwd, io, fds, cgroup or per-connection details; a viewer token
/// gets them; with CC_PUBLIC_READ=false everything needs a token.
class PublicReadTests: StorageTestCase {
    static let secret = "hunter2-in-argv"
    static let privateKeys = ["cmdline", "exe", "cwd", "io", "fd_count", "cgroup"]

    /// A process with a secret on its command line, as `--password=…` would be.
    func secretHolder() throws -> Child {
        let c = try Child("exec python3 -c 'import time; time.sleep(60)' --password=\(Self.secret)")
        usleep(200_000)
        return c
    }

    func text(_ r: Response) -> String { String(decoding: r.body, as: UTF8.self) }

    /// What the collector does: workers only serve its snapshots.
    func collect() throws {
        for kind in SnapshotKind.allCases { try SystemRoutes.cache(h.ctx).forceRefresh(kind) }
    }

    func testAnonymousReadsLackPrivateFieldsAndViewerGetsThem() throws {
        let holder = try secretHolder()
        let pid = Int(holder.pid)
        try collect()
        let viewer = try h.makeUser("watcher", role: "viewer").token

        for query in ["", "limit=10000&sort=pid"] {
            let anon = h.call("GET", "/api/system/processes?\(query)")
            XCTAssertEqual(anon.status, 200)
            XCTAssertFalse(text(anon).contains(Self.secret), "anonymous list (\(query)) holds the secret")
            let rows = try XCTUnwrap(try h.object(anon)["processes"] as? [[String: Any]])
            XCTAssertFalse(rows.isEmpty)
            XCTAssertTrue(rows.allSatisfy { $0["cmdline"] == nil && $0["name"] != nil && $0["cpu_percent"] != nil })
            let full = try XCTUnwrap(try h.object(h.call("GET", "/api/system/processes?\(query)", token: viewer))["processes"] as? [[String: Any]])
            XCTAssertTrue(full.allSatisfy { $0["cmdline"] is String }, "a viewer gets command lines (\(query))")
            if !query.isEmpty {
                XCTAssertTrue((full.first { $0["pid"] as? Int == pid }?["cmdline"] as? String ?? "").contains(Self.secret))
            }
        }

        let anonDetail = try h.object(h.call("GET", "/api/system/processes/\(pid)"))
        XCTAssertEqual(anonDetail["pid"] as? Int, pid)
        for k in ["name", "user", "status", "cpu_percent", "memory_percent", "rss_bytes"] { XCTAssertNotNil(anonDetail[k], k) }
        for k in Self.privateKeys { XCTAssertNil(anonDetail[k], "anonymous detail has \(k)") }
        let detail = try h.object(h.call("GET", "/api/system/processes/\(pid)", token: viewer))
        for k in Self.privateKeys { XCTAssertNotNil(detail[k], "viewer detail lacks \(k)") }
        XCTAssertTrue((detail["cmdline"] as? String ?? "").contains(Self.secret))

        // Connections are per-connection details; ports show ports only.
        XCTAssertEqual(h.call("GET", "/api/system/connections").status, 401)
        XCTAssertEqual(h.call("GET", "/api/system/connections", token: viewer).status, 200)
        let ports = try XCTUnwrap(try h.object(h.call("GET", "/api/system/ports?limit=10000"))["ports"] as? [[String: Any]])
        for p in ports { XCTAssertEqual(Set(p.keys), ["port", "proto", "address", "status"]) }
        let viewerPorts = try XCTUnwrap(try h.object(h.call("GET", "/api/system/ports?limit=10000", token: viewer))["ports"] as? [[String: Any]])
        XCTAssertEqual(viewerPorts.count, ports.count)
        for p in viewerPorts { XCTAssertNotNil(p["pids"] as? [Any]) }

        // The host summary stays public; a bad token is refused, not downgraded.
        for path in ["/api/system/stats", "/api/system/network", "/api/system/info"] {
            XCTAssertEqual(h.call("GET", path).status, 200, path)
        }
        XCTAssertEqual(h.call("GET", "/api/system/processes", token: "not-a-token").status, 401)

        // The view nginx sends itself is the anonymous form.
        let view = try String(contentsOfFile: h.config.viewsDir + "/processes.json", encoding: .utf8)
        XCTAssertFalse(view.contains("\"cmdline\""), "the nginx view has no command lines")
        XCTAssertFalse(view.contains(Self.secret))
        _ = holder
    }

    func testWithoutPublicReadEveryRouteNeedsAToken() throws {
        h = try StorageHarness(Self.engine, settings: ["CC_PUBLIC_READ": "false"])
        let viewer = try h.makeUser("watcher", role: "viewer").token
        try collect()
        for path in ["/api/system/stats", "/api/system/network", "/api/system/info", "/api/system/processes",
                     "/api/system/processes/1", "/api/system/connections", "/api/system/ports"] {
            XCTAssertEqual(h.call("GET", path).status, 401, path)
            XCTAssertEqual(h.call("GET", path, token: viewer).status, 200, path)
        }
        let rows = try XCTUnwrap(try h.object(h.call("GET", "/api/system/processes", token: viewer))["processes"] as? [[String: Any]])
        XCTAssertTrue(rows.allSatisfy { $0["cmdline"] is String })
    }
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class PublicReadPostgresTests: PublicReadTests {
    override class var engine: TestEngine { .postgres }
    override func testAnonymousReadsLackPrivateFieldsAndViewerGetsThem() throws {
        try super.testAnonymousReadsLackPrivateFieldsAndViewerGetsThem()
    }
    override func testWithoutPublicReadEveryRouteNeedsAToken() throws { try super.testWithoutPublicReadEveryRouteNeedsAToken() }
}
