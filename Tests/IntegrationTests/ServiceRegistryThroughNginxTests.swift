import Foundation
import Glibc
import XCTest

/// The service registry through the real stack: `control-center services
/// import` against the master's database, then the routes through nginx,
/// served by the storage pool.
final class ServiceRegistryThroughNginxTests: XCTestCase {
    func run(_ server: TestServer, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestServer.binary)
        p.arguments = args
        p.environment = server.env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func adminToken(_ s: TestServer) throws -> String {
        let generated = try String(contentsOfFile: s.stateDir + "/first-admin-password", encoding: .utf8)
            .trimmingCharacters(in: .newlines)
        let login = try post(s, "/api/auth/login", ["username": "admin", "password": generated])
        let first = try XCTUnwrap(login.json?["access_token"] as? String, login.text)
        let changed = try post(s, "/api/auth/change-password",
                               ["current_password": generated, "new_password": "services-admin-password"], token: first)
        return try XCTUnwrap(changed.json?["access_token"] as? String, changed.text)
    }

    func post(_ s: TestServer, _ path: String, _ json: Any, token: String? = nil) throws -> HTTPResponse {
        var h = ["Content-Type": "application/json"]
        if let token { h["Authorization"] = "Bearer \(token)" }
        return try s.request("POST", path, headers: h, body: Array(try JSONSerialization.data(withJSONObject: json)))
    }

    func testImportThenListThroughTheStoragePool() throws {
        let s = try TestServer()
        defer { s.stop() }
        let file = s.stateDir + "/services.json"
        let services: [[String: Any]] = [
            ["name": "db", "command": ["/bin/sleep", "1000"], "port": 5432],
            ["name": "web", "command": ["/usr/bin/python3", "-m", "http.server"], "depends_on": ["db"],
             "health_check": ["type": "http", "url": "http://127.0.0.1:8000/"]],
        ]
        try JSONSerialization.data(withJSONObject: services).write(to: URL(fileURLWithPath: file))
        let first = try run(s, ["services", "import", file])
        XCTAssertEqual(first.status, 0, first.err)
        XCTAssertTrue(first.out.contains("2 created, 0 updated, 0 unchanged"), first.out)
        let again = try run(s, ["services", "import", file])
        XCTAssertTrue(again.out.contains("0 created, 0 updated, 2 unchanged"), again.out)

        let bad = s.stateDir + "/bad.json"
        try Data(#"[{"name": "evil", "command": "sh -c 'rm -rf /'"}]"#.utf8).write(to: URL(fileURLWithPath: bad))
        let refused = try run(s, ["services", "import", bad])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.contains("services[0] (evil): command"), refused.err)

        let token = try adminToken(s)
        XCTAssertEqual(try s.get("/api/services").status, 401)
        let list = try s.get("/api/services", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(list.status, 200, list.text)
        XCTAssertEqual(list.json?["count"] as? Int, 2)
        let names = (list.json?["services"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        XCTAssertEqual(names, ["db", "web"])

        let id = try XCTUnwrap(list.headers["x-request-id"])
        XCTAssertTrue(waitUntil(3) { s.accessLog().contains(id) })
        let line = try XCTUnwrap(s.accessLog().split(separator: "\n").first { $0.contains(id) })
        let pid = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["pid"] as? Int)
        XCTAssertTrue(s.poolWorkers("storage").contains(pid_t(pid)), "served by the storage pool")

        let created = try post(s, "/api/services", ["name": "extra", "command": ["/bin/true"]], token: token)
        XCTAssertEqual(created.status, 201, created.text)
        let cycle = try s.request("PUT", "/api/services/db", headers: ["Authorization": "Bearer \(token)", "Content-Type": "application/json"],
                                  body: Array(#"{"command": ["/bin/true"], "depends_on": ["web"]}"#.utf8))
        XCTAssertEqual(cycle.status, 400, cycle.text)
    }
}
