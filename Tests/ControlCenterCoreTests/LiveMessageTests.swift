@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The live messages (LiveMessage), the network rates beside them, and the
/// collector's wake socket, without nginx or a collector.
final class LiveMessageTests: XCTestCase {
    func testSystemStatsIsTheSnapshotBodyWithTheLiveFieldsBefore() throws {
        var w = JSONWriter()
        w.beginObject()
        w.beginObject("cpu")
        w.field("usage", 12.5, places: 1)
        w.field("usage_percent", 12.5, places: 1)
        w.endObject()
        w.field("timestamp", "2026-01-01T00:00:00.000Z")
        SnapshotTail.close(&w, takenAtMillis: 1_000)
        let bytes = LiveMessage.systemStats(statsBody: w.bytes[...], epoch: 500, seq: 7,
                                            publishedAtMillis: 1_250,
                                            network: .init(rxBytesPerSecond: 10, txBytesPerSecond: 20.5))
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], String(decoding: bytes, as: UTF8.self))
        XCTAssertEqual(o["type"] as? String, "system_stats")
        XCTAssertEqual(o["seq"] as? Int, 7)
        XCTAssertEqual(o["epoch"] as? Int, 500)
        XCTAssertEqual(o["published_at_ms"] as? Int, 1_250)
        XCTAssertEqual(o["published_at"] as? String, "1970-01-01T00:00:01.250Z")
        XCTAssertEqual((o["cpu"] as? [String: Any])?["usage"] as? Double, 12.5)
        XCTAssertEqual((o["network"] as? [String: Any])?["tx_bytes_per_sec"] as? Double, 20.5)
        XCTAssertEqual((o["snapshot"] as? [String: Any])?["taken_at_ms"] as? Int, 1_000, "the stats body's snapshot")
        let first = LiveMessage.systemStats(statsBody: w.bytes[...], epoch: 500, seq: 1,
                                            publishedAtMillis: 900, network: nil)
        let f = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first)) as? [String: Any])
        XCTAssertTrue((f["network"] as? [String: Any])?["rx_bytes_per_sec"] is NSNull, "no rate before a second reading")
    }

    func testResetAndEventMessages() throws {
        let reset = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(LiveMessage.reset(epoch: 9, publishedAtMillis: 10, reason: "collector_started"))) as? [String: Any])
        XCTAssertEqual(reset["type"] as? String, "reset")
        XCTAssertEqual(reset["seq"] as? Int, 0)
        XCTAssertEqual(reset["reason"] as? String, "collector_started")
        var e = Event(ts: 5_000, level: .warning, source: "api", actor: "ann", action: nil, target: nil,
                      message: "disk \"full\"", data: #"{"a":1}"#)
        e.id = 42
        let ev = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(LiveMessage.event(e, epoch: 9, seq: 3, publishedAtMillis: 10))) as? [String: Any])
        XCTAssertEqual(ev["type"] as? String, "event")
        XCTAssertEqual(ev["seq"] as? Int, 3)
        let row = try XCTUnwrap(ev["event"] as? [String: Any])
        XCTAssertEqual(row["id"] as? Int, 42)
        XCTAssertEqual(row["message"] as? String, "disk \"full\"")
        XCTAssertEqual((row["data"] as? [String: Any])?["a"] as? Int, 1)
    }

    func testNetworkRatesSumIncreasesAndSkipVanishedOrResetCounters() {
        let a = NetworkRates.Reading(rx: ["eth0": 1_000, "eth1": 500, "gone": 7], tx: ["eth0": 0, "eth1": 900],
                                     monoNanos: 1_000_000_000)
        let b = NetworkRates.Reading(rx: ["eth0": 3_000, "eth1": 100, "new": 50], tx: ["eth0": 400, "eth1": 1_000],
                                     monoNanos: 3_000_000_000)
        // eth1's rx went back (interface re-created): it adds nothing; "new" has no before.
        XCTAssertEqual(NetworkRates.rates(from: a, to: b), .init(rxBytesPerSecond: 1_000, txBytesPerSecond: 250,
                                                                 interfaces: ["eth0": .init(rxBytesPerSecond: 1_000, txBytesPerSecond: 200)]))
        XCTAssertNil(NetworkRates.rates(from: b, to: a), "time must advance")
    }

    func testWakeReachesTheBoundSocketAndNeverBlocksWithoutOne() throws {
        let path = NSTemporaryDirectory() + "cc-wake-\(getpid())"
        defer { unlink(path) }
        CollectorWake.notify(path: path) // nobody listening: silently dropped
        let fd = CollectorWake.bind(path: path)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o660, "only the master's user and the workers' group may wake the collector")
        XCTAssertFalse(CollectorWake.drain(fd))
        for _ in 0..<3 { CollectorWake.notify(path: path) }
        XCTAssertTrue(CollectorWake.drain(fd))
        XCTAssertFalse(CollectorWake.drain(fd), "drained")
        // A full queue never blocks the sender (a worker mid-request).
        let t0 = Clock.monotonicNanos()
        for _ in 0..<5_000 { CollectorWake.notify(path: path) }
        XCTAssertLessThan(Double(Clock.monotonicNanos() - t0) / 1e9, 2)
        XCTAssertTrue(CollectorWake.drain(fd))
    }
}
