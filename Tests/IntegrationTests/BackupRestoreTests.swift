import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// `control-center backup` against a live server under write load, then
/// `restore` into a fresh state directory and a new server there.
final class BackupRestoreTests: XCTestCase {
    func run(_ args: [String], env: [String: String]) throws -> (status: Int32, output: String) {
        try ExternalTool.capture(TestServer.binary, args, environment: env)
    }

    func json(_ s: TestServer, _ method: String, _ path: String, _ body: [String: Any], token: String? = nil) throws -> HTTPResponse {
        var h = ["Content-Type": "application/json"]
        if let token { h["Authorization"] = "Bearer \(token)" }
        return try s.request(method, path, headers: h, body: Array(try JSONSerialization.data(withJSONObject: body)))
    }

    func mode(_ path: String) -> mode_t {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o777 : 0
    }

    func testBackupWhileServingRestoresUsersTokensAndEventsIntoAFreshStateDirectory() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-backup-\(getpid())").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let password = "backup-operator-password"
        try (password + "\n").write(toFile: scratch + "/pw", atomically: true, encoding: .utf8)

        let s = try TestServer(env: ["CC_LOGIN_RATE_LIMIT": "600"])
        let added = try run(["user", "add", "backup-op", "--role", "operator", "--password-file", scratch + "/pw"], env: s.env)
        XCTAssertEqual(added.status, 0, added.output)
        let login = try json(s, "POST", "/api/auth/login", ["username": "backup-op", "password": password])
        XCTAssertEqual(login.status, 200, login.text)
        let token = try XCTUnwrap(login.json?["access_token"] as? String)
        for i in 0..<20 {
            XCTAssertEqual(try json(s, "POST", "/api/events", ["message": "before backup \(i)", "source": "backup-it"], token: token).status, 201)
        }

        // Writers keep going while the backup runs.
        let port = s.port
        let load = LoadDriver(clients: 4, { () throws -> HTTPResponse in
            try HTTPClient.request(port: port, method: "POST", path: "/api/events",
                                   headers: ["Content-Type": "application/json", "Authorization": "Bearer \(token)"],
                                   body: Array(#"{"message":"during backup","source":"backup-load"}"#.utf8), timeout: 10)
        }, accept: { $0.status == 201 })
        usleep(200_000)
        let target = scratch + "/backup"
        let backup = try run(["backup", target], env: s.env)
        usleep(200_000)
        load.finish()
        XCTAssertEqual(backup.status, 0, backup.output)
        XCTAssertTrue(backup.output.contains("schema \(Migrations.latest)"), backup.output)
        XCTAssertEqual(load.failures.count, 0, "writers never blocked by the backup: \(load.failures.prefix(3))")
        XCTAssertGreaterThan(load.ok, 0)
        XCTAssertEqual(mode(target), 0o700)
        XCTAssertEqual(mode(target + "/control-center.db"), 0o600)
        XCTAssertEqual(mode(target + "/jwt.secret"), 0o600)
        XCTAssertEqual(mode(target + "/first-admin-password"), 0o600, "the first admin has not changed its password yet")

        let again = try run(["backup", target], env: s.env)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.output.contains("already exists"), again.output)
        s.stop()

        // Restore refuses a state directory that is not empty, and changes nothing there.
        let fresh = scratch + "/restored"
        var restoreEnv = s.env
        restoreEnv["CC_STATE_DIR"] = fresh
        restoreEnv["CC_LOG_FILE"] = fresh + "/master.log"
        restoreEnv["CC_ACCESS_LOG"] = fresh + "/access.log"
        try FileManager.default.createDirectory(atPath: fresh, withIntermediateDirectories: true)
        try "x".write(toFile: fresh + "/stray", atomically: true, encoding: .utf8)
        let refused = try run(["restore", target], env: restoreEnv)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.output.contains("is not empty"), refused.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fresh), ["stray"])
        unlink(fresh + "/stray")
        let notABackup = try run(["restore", scratch], env: restoreEnv)
        XCTAssertEqual(notABackup.status, 1)
        XCTAssertTrue(notABackup.output.contains("not a backup"), notABackup.output)

        let restored = try run(["restore", target], env: restoreEnv)
        XCTAssertEqual(restored.status, 0, restored.output)
        XCTAssertEqual(mode(fresh + "/control-center.db"), 0o600)
        XCTAssertEqual(mode(fresh + "/jwt.secret"), 0o600)

        let r = try TestServer(env: ["CC_STATE_DIR": fresh, "CC_LOGIN_RATE_LIMIT": "600"])
        XCTAssertFalse(r.log().contains("created the first admin"), "the restored admin is kept, not created anew")
        let me = try r.get("/api/auth/me", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(me.status, 200, "a token issued before the backup stays valid: \(me.text)")
        XCTAssertEqual(me.json?["username"] as? String, "backup-op")
        let relogin = try json(r, "POST", "/api/auth/login", ["username": "backup-op", "password": password])
        XCTAssertEqual(relogin.status, 200, relogin.text)
        let before = try r.get("/api/events?source=backup-it&limit=100", headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(before.json?["count"] as? Int, 20, before.text)
        // Events written during the backup: a consistent prefix, never half a row.
        let during = try r.get("/api/events?source=backup-load&limit=1000", headers: ["Authorization": "Bearer \(token)"])
        let items = try XCTUnwrap(during.json?["events"] as? [[String: Any]], during.text)
        XCTAssertLessThanOrEqual(items.count, load.ok)
        XCTAssertTrue(items.allSatisfy { $0["message"] as? String == "during backup" })
        print("backup: \(load.ok) events written during the backup, \(items.count) in it")
    }

    func testBackupOnPostgresSaysToUsePgDump() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-pgbackup-\(getpid())").path
        var env = ProcessInfo.processInfo.environment
        env["CC_STATE_DIR"] = dir
        env["CC_DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for command in ["backup", "restore"] {
            let r = try run([command, dir + "/b"], env: env)
            XCTAssertEqual(r.status, 1, r.output)
            XCTAssertTrue(r.output.contains("pg_dump"), r.output)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/b"))
    }
}
