import Foundation
import Glibc
import XCTest

/// The metric history through the real stack: the collector child writing
/// samples into a real SQLite file, nginx sending `/api/system/history` to
/// the storage pool. (Both engines: HistoryStoreTests, in-process.)
final class HistoryThroughNginxTests: XCTestCase {
    func testCollectorSamplesAreReadableAndARestartLeavesOnlyItsDowntimeAsAGap() throws {
        let s = try TestServer(env: ["CC_COLLECT_INTERVAL": "0.25"])
        defer { s.stop() }
        XCTAssertTrue(waitUntil(10) { ((try? series(s, "cpu&from=-20s&step=1"))?.first?.filled ?? 0) >= 3 },
                      "the collector writes samples")
        let all = try series(s, "cpu,cpu_core,load1,memory,memory_used,swap,disk,disk_used,net_rx,net_tx,processes&from=-20s&step=1")
        let names = Set(all.map(\.name))
        for n in ["cpu", "cpu_core:0", "load1", "memory", "memory_used", "swap", "disk:/", "processes"] {
            XCTAssertTrue(names.contains(n), "series \(n) in \(names.sorted())")
        }
        XCTAssertTrue(all.contains { $0.name.hasPrefix("net_rx:") && $0.filled > 0 }, "per-interface rates")
        let procs = try XCTUnwrap(all.first { $0.name == "processes" }?.data.compactMap { $0[1] }.last)
        XCTAssertGreaterThan(procs, 1)

        // Stop the collector for 3 s, then kill it: the master starts a new one.
        let old = try XCTUnwrap(collectorPid(s))
        kill(old, SIGSTOP)
        Thread.sleep(forTimeInterval: 3)
        kill(old, SIGKILL)
        XCTAssertTrue(waitUntil(10) { (collectorPid(s) ?? old) != old }, "a new collector")
        Thread.sleep(forTimeInterval: 2)
        let cpu = try XCTUnwrap(try series(s, "cpu&from=-15s&step=1").first)
        // After the first sample (the window may start before the server did):
        // filled 1-s buckets, a run of empty ones (the downtime), filled again
        // to the end; nothing in the gap is interpolated.
        let marks = cpu.data.map { $0[1] != nil }
        let filled = Array(marks[try XCTUnwrap(marks.firstIndex(of: true), "\(marks)")...])
        let firstGap = try XCTUnwrap(filled.firstIndex(of: false), "\(marks)")
        let afterGap = try XCTUnwrap(filled[firstGap...].firstIndex(of: true), "\(marks)")
        XCTAssertGreaterThanOrEqual(afterGap - firstGap, 2, "the downtime is a gap: \(marks)")
        XCTAssertGreaterThanOrEqual(firstGap, 2, "samples before the stop: \(marks)")
        // Every second after the restart has samples (one empty second tolerated: a
        // loaded CI machine may stall the new collector once; the last bucket is still open).
        let after = filled[afterGap...].dropLast()
        XCTAssertGreaterThanOrEqual(after.filter { $0 }.count, after.count - 1, "samples after the restart: \(marks)")
        for row in cpu.data where row[1] != nil {
            XCTAssertTrue(row[2]! <= row[1]! && row[1]! <= row[3]!, "min <= avg <= max: \(row)")
        }

        // nginx sent it to the storage pool (the access log's pid is one of its workers).
        let storage = s.poolWorkers("storage")
        XCTAssertTrue(waitUntil(3) {
            s.accessLog().split(separator: "\n").contains { line in
                guard line.contains("\"path\":\"/api/system/history\""),
                      let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let pid = o["pid"] as? Int else { return false }
                return storage.contains(pid_t(pid))
            }
        }, "served by the storage pool \(storage)")

        let bad = try s.get("/api/system/history?metrics=cpu&from=-1h&to=-2h")
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.errorCode, "invalid_parameter")
    }

    /// The state directory on a small loop-mounted ext4 that fills up: the
    /// collector keeps sampling and publishing (the snapshot files cannot be
    /// written; it says so once), history writes are skipped, and when space
    /// returns they resume and one `disk_full` event says how long history
    /// was lost. Root only (a loop mount); sqlite3 reads the rows.
    func testAFullDiskSkipsHistoryWritesAndRecordsOneDiskFullEventWhenSpaceReturns() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root (a loop-mounted state directory)")
        let base = NSTemporaryDirectory() + "cc-it-diskfull-\(getpid())-\(UUID().uuidString.prefix(8))"
        let mnt = base + "/mnt"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        func sh(_ cmd: String) throws -> (status: Int32, output: String) { try ExternalTool.capture("/bin/sh", ["-c", cmd]) }
        let made = try sh("truncate -s 40M '\(base)/state.img' && mkfs.ext4 -q -F -m 0 '\(base)/state.img' && mount -o loop '\(base)/state.img' '\(mnt)'")
        XCTAssertEqual(made.status, 0, made.output)
        defer { _ = try? sh("umount -l '\(mnt)'; rm -rf '\(base)'") }
        // The log outside the full file system, so that what the collector says meanwhile is kept.
        let s = try TestServer(env: ["CC_STATE_DIR": mnt + "/state", "CC_COLLECT_INTERVAL": "0.25", "CC_LOG_FILE": base + "/master.log"])
        defer { s.stop() }
        let token = try LiveChannelTests.adminTokenUncached(s)
        XCTAssertTrue(waitUntil(10) { ((try? self.series(s, "cpu&from=-20s&step=1"))?.first?.filled ?? 0) >= 3 }, "samples before")
        func rawRows() throws -> Int {
            let r = try ExternalTool.capture("/usr/bin/sqlite3", [mnt + "/state/control-center.db", "SELECT COUNT(*) FROM history_raw"])
            return Int(r.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }

        // Fill the file system (-m 0: no blocks kept for root, so the root collector is refused too).
        // Big blocks, then small ones for the last kilobytes.
        _ = try sh("for bs in 1M 4k 1k; do dd if=/dev/zero of='\(mnt)'/filler-$bs bs=$bs 2>/dev/null; sync; done")
        XCTAssertEqual(try sh("df --output=avail -k '\(mnt)' | tail -1").output.trimmingCharacters(in: .whitespacesAndNewlines), "0")
        Thread.sleep(forTimeInterval: 1)
        let whileFull = try rawRows()
        Thread.sleep(forTimeInterval: 2)
        XCTAssertLessThanOrEqual(try rawRows() - whileFull, 1, "history writes are skipped while the disk is full")
        let live = try LiveClient.start(.ws, port: s.port, path: "/ws", count: 4).finish()
        XCTAssertEqual(live.count, 4, "the collector samples and publishes while the disk is full")
        XCTAssertTrue(waitUntil(3) { ((try? String(contentsOfFile: base + "/master.log", encoding: .utf8)) ?? "").contains("cannot write the stats snapshot") }, "and says once that the snapshot is not written")

        // Space returns: writes resume and one disk_full event tells the span lost.
        for bs in ["1M", "4k", "1k"] { unlink(mnt + "/filler-" + bs) }
        XCTAssertTrue(waitUntil(10) {
            ((try? s.get("/api/events?source=collector&q=disk_full", headers: ["Authorization": "Bearer \(token)"]).json?["count"] as? Int) ?? 0) >= 1
        }, "a disk_full event once space returned")
        let events = try XCTUnwrap(try s.get("/api/events?source=collector&q=disk_full", headers: ["Authorization": "Bearer \(token)"])
            .json?["events"] as? [[String: Any]])
        XCTAssertEqual(events.filter { $0["action"] as? String == "disk_full" }.count, 1, "one event: \(events)")
        XCTAssertTrue(waitUntil(5) { ((try? rawRows()) ?? 0) > whileFull + 2 }, "history writes resume")
    }

    struct Series {
        var name: String
        var data: [[Double?]]
        var filled: Int { data.filter { $0[1] != nil }.count }
    }

    func series(_ s: TestServer, _ query: String) throws -> [Series] {
        let r = try s.get("/api/system/history?metrics=" + query)
        XCTAssertEqual(r.status, 200, String(r.text.prefix(300)))
        let list = try XCTUnwrap(r.json?["series"] as? [[String: Any]], String(r.text.prefix(300)))
        return list.map { o in
            Series(name: o["name"] as? String ?? "",
                   data: (o["data"] as? [[Any]] ?? []).map { $0.map { ($0 as? NSNumber)?.doubleValue } })
        }
    }

    func collectorPid(_ s: TestServer) -> pid_t? {
        TestServer.children(of: s.masterPid).first { pid in
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return cmd.split(separator: "\0").dropFirst().first == "collector"
        }
    }
}
