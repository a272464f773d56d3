import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The master under systemd's protocols, with a real master and pools: the
/// sd_notify messages at the moments `Type=notify` relies on, a HUP that
/// refuses a binary whose schema differs from the database's, and the unit
/// file as systemd-analyze reads it.
final class SystemdUnitTests: XCTestCase {
    func testNotifyReadyReloadRefusedReloadsAndStopping() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-notify-\(getpid())").path
        let notify = NotifySocket(statusDir: dir + "/run/workers")
        defer { notify.finish() }
        let s = try TestServer(env: ["CC_STATE_DIR": dir, "NOTIFY_SOCKET": notify.path])

        // READY=1 once every worker of both pools is accepting.
        let ready = try XCTUnwrap(notify.message(0), "READY=1 at start")
        XCTAssertTrue(ready.text.hasPrefix("READY=1\n"), ready.text)
        XCTAssertTrue(ready.text.contains("STATUS=serving: main 2, storage 2 workers"), ready.text)
        XCTAssertGreaterThanOrEqual(ready.statusPids.count, 4, "every worker had reached accept() at READY=1")
        let workers = s.poolWorkers("main").union(s.poolWorkers("storage"))
        for pid in workers {
            let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
            XCTAssertFalse(String(decoding: environ, as: UTF8.self).contains("NOTIFY_SOCKET="),
                           "only the master speaks to systemd")
        }

        // HUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 once the new generation accepts.
        s.signalMaster(SIGHUP)
        let reloading = try XCTUnwrap(notify.message(1))
        XCTAssertTrue(reloading.text.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), reloading.text)
        let usec = reloading.text.split(separator: "\n")[1].split(separator: "=")[1]
        let now = Double(Clock.monotonicNanos()) / 1e3
        XCTAssertLessThan(abs(now - (Double(usec) ?? 0)), 10e6, "CLOCK_MONOTONIC in µs")
        let reloaded = try XCTUnwrap(notify.message(2))
        XCTAssertTrue(reloaded.text.hasPrefix("READY=1\n"), reloaded.text)
        XCTAssertGreaterThanOrEqual(reloaded.statusPids.subtracting(workers).count, 4,
                                    "the whole new generation accepted before READY=1")
        XCTAssertTrue(waitUntil(10) { s.poolWorkers("main").union(s.poolWorkers("storage")).isDisjoint(with: workers) })

        // A binary whose schema is newer than the database's (the database
        // lacks the newest migration): HUP is refused, the workers stay.
        let db = try SQLiteDatabase(path: dir + "/control-center.db", timeout: 5)
        defer { db.close() }
        let latest = Migrations.latest
        let row = try XCTUnwrap(try db.queryOne("SELECT name, applied_at FROM schema_migrations WHERE version = ?", [.int(Int64(latest))]))
        _ = try db.execute("DELETE FROM schema_migrations WHERE version = ?", [.int(Int64(latest))])
        let serving = s.poolWorkers("main").union(s.poolWorkers("storage"))
        s.signalMaster(SIGHUP)
        XCTAssertTrue(try XCTUnwrap(notify.message(3)).text.hasPrefix("RELOADING=1\n"))
        XCTAssertTrue(try XCTUnwrap(notify.message(4)).text.hasPrefix("READY=1\n"), "ready again on the old generation")
        XCTAssertTrue(s.log().contains("reload refused: keeping the running generation"), s.log())
        XCTAssertTrue(s.log().contains("newer than the database: restart to migrate"))
        XCTAssertEqual(s.poolWorkers("main").union(s.poolWorkers("storage")), serving, "no worker replaced")
        XCTAssertEqual(try s.get("/health").status, 200)

        // The database migrated by a newer binary (a rollback by HUP): refused too.
        _ = try db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                           [.int(Int64(latest)), .text(row.string(0) ?? ""), .int(row.int64(1) ?? 0)])
        _ = try db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from a newer binary', 0)",
                           [.int(Int64(latest + 1))])
        s.signalMaster(SIGHUP)
        XCTAssertTrue(try XCTUnwrap(notify.message(6)).text.hasPrefix("READY=1\n"))
        XCTAssertTrue(s.log().contains("the database's schema is newer than the new binary"), s.log())
        XCTAssertEqual(s.poolWorkers("main").union(s.poolWorkers("storage")), serving, "no worker replaced")

        // QUIT: STOPPING=1.
        s.stop()
        let stopping = try XCTUnwrap(notify.message(7))
        XCTAssertTrue(stopping.text.hasPrefix("STOPPING=1\n"), stopping.text)
        XCTAssertEqual(notify.messages.count, 8, notify.messages.map(\.text).joined(separator: " | "))
    }

    /// `systemd-analyze verify` on the shipped unit, with ExecStart pointed
    /// at the binary under test (verify wants the executable to exist).
    func testUnitPassesSystemdAnalyzeVerify() throws {
        let analyze = "/usr/bin/systemd-analyze"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze missing (Debian's systemd package)")
        let unit = try String(contentsOfFile: TestServer.repoRoot + "/deploy/control-center.service", encoding: .utf8)
        let installed = "/usr/local/lib/control-center/control-center"
        XCTAssertTrue(unit.contains("ExecStart=\(installed) serve"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-unit-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/control-center.service"
        try unit.replacingOccurrences(of: installed, with: TestServer.binary).write(toFile: path, atomically: true, encoding: .utf8)
        let (status, text) = try ExternalTool.capture(analyze, ["verify", "--man=no", path])
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(text.trimmingCharacters(in: .whitespacesAndNewlines), "", "no warnings: \(text)")
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGQUIT", "KillMode=mixed",
                     "Delegate=yes", "Restart=on-failure", "StateDirectory=control-center", "TimeoutStopSec=60"] {
            XCTAssertTrue(unit.contains("\n" + line + "\n"), line)
        }
        XCTAssertFalse(unit.contains("\nUser="), "the master runs as root")
    }

    /// deploy/logrotate parsed and run by logrotate itself (forced), on a
    /// stand-in access log: the file is renamed and the postrotate script
    /// succeeds even where systemd and nginx are not running.
    func testLogrotateSnippetRotates() throws {
        let logrotate = "/usr/sbin/logrotate"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: logrotate), "logrotate missing (Debian's logrotate package)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-logrotate-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let snippet = try String(contentsOfFile: TestServer.repoRoot + "/deploy/logrotate", encoding: .utf8)
        XCTAssertTrue(snippet.contains("/var/log/control-center/access.log {"))
        XCTAssertFalse(snippet.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "copytruncate" },
                       "rename, then USR1: no line is lost")
        try snippet.replacingOccurrences(of: "/var/log/control-center/access.log", with: dir + "/access.log")
            .write(toFile: dir + "/conf", atomically: true, encoding: .utf8)
        try "{\"request_id\":\"x\"}\n".write(toFile: dir + "/access.log", atomically: true, encoding: .utf8)
        let (status, text) = try ExternalTool.capture(logrotate, ["-f", "-s", dir + "/state", dir + "/conf"])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/access.log.1"), "renamed (compressed a day later)")
    }
}
