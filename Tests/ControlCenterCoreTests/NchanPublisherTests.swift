@testable import ControlCenterCore
@testable import ControlCenterLive
import Foundation
import Glibc
import XCTest

/// The collector's publisher against a stand-in for nginx that never
/// answers: a publish must never hold up the sampling loop.
final class NchanPublisherTests: XCTestCase {
    func testASilentPublisherNeverDelaysTheNextSample() throws {
        let path = NSTemporaryDirectory() + "cc-nchan-silent-\(getpid()).sock"
        unlink(path)
        defer { unlink(path) }
        // Listens, never accepts, never answers: connect succeeds (backlog), the answer never comes.
        let fd = try ListenSocket.bind(.unix(path), backlog: 16)
        defer { close(fd) }
        let log = Log(path: NSTemporaryDirectory() + "cc-nchan-silent-\(getpid()).log")
        let publisher = try XCTUnwrap(NchanPublisher(socketPath: path, timeoutMillis: 500, maxPacingGap: 0.05, log: log))
        var waits: [Double] = []
        for i in 0..<4 {
            publisher.enqueue(channels: ["system.0", "system.1"], replaceable: true, paced: true) { _ in
                Array("{\"seq\":\(i)}".utf8)
            }
            let t0 = Clock.monotonicSeconds()
            _ = publisher.run(until: t0 + 0.2, wakeFD: nil, stop: { false })
            waits.append(Clock.monotonicSeconds() - t0)
        }
        for w in waits { XCTAssertEqual(w, 0.2, accuracy: 0.1, "the loop waits for its deadline, not for nginx") }
        // The first POST timed out after 0.5 s; the newest waiting one went next.
        XCTAssertGreaterThanOrEqual(publisher.failures, 1)
        XCTAssertEqual(publisher.published, 0)
    }

    func testStopEndsTheWaitAtOnce() throws {
        let publisher = try XCTUnwrap(NchanPublisher(socketPath: "/nonexistent/nchan.sock", timeoutMillis: 500,
                                                     maxPacingGap: 0.05, log: Log(path: "/dev/null")))
        let t0 = Clock.monotonicSeconds()
        _ = publisher.run(until: t0 + 5, wakeFD: nil, stop: { Clock.monotonicSeconds() - t0 > 0.1 })
        XCTAssertLessThan(Clock.monotonicSeconds() - t0, 0.5)
    }

    func testSubscriberCountsComeFromNchansChannelInfoAndGoStale() throws {
        let info = Array(#"{"messages": 7, "requested": 0, "subscribers": 3, "last_message_id": "1795980505:1" }"#.utf8)
        XCTAssertEqual(NchanPublisher.subscribers(inChannelInfo: info), 3)
        XCTAssertNil(NchanPublisher.subscribers(inChannelInfo: Array("queued messages: 1".utf8)))
        XCTAssertEqual(NchanPublisher.subscribers(inChannelInfo: Array(#"{"subscribers":6000}"#.utf8)), 6000)
        XCTAssertNil(NchanPublisher.subscribers(inChannelInfo: Array(#"{"subscribers": "x"}"#.utf8)))
        XCTAssertNil(NchanPublisher.subscribers(inChannelInfo: []))
        let dir = NSTemporaryDirectory() + "cc-live-subs-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertNil(LiveSubscribers.read(runDir: dir, maxAge: 5), "no file: no figure")
        let counts = LiveSubscribers(byChannel: ["system": 3, "events": 0])
        XCTAssertTrue(counts.write(runDir: dir))
        XCTAssertEqual(LiveSubscribers.read(runDir: dir, maxAge: 5), counts)
        XCTAssertNil(LiveSubscribers.read(runDir: dir, maxAge: 5, now: Clock.wallSeconds() + 6),
                     "a count the collector stopped refreshing is not shown")
        XCTAssertEqual(LiveSubscribers(summingShards: ["system.0": 2, "system.1": 0, "system.7": 5, "events": 1]),
                       LiveSubscribers(byChannel: ["system": 7, "events": 1]), "the shards of a channel are summed")
    }

    /// The pause after a shard's POST is as long as that POST (nginx's
    /// fan-out), capped; the collector's cap keeps all the pauses within a
    /// twentieth of the interval.
    func testPacingGapFollowsTheFanOutUpToItsCap() throws {
        XCTAssertEqual(NchanPublisher.pacingGap(postSeconds: 0.006, maxGap: 0.03), 0.006)
        XCTAssertEqual(NchanPublisher.pacingGap(postSeconds: 0.2, maxGap: 0.03), 0.03)
        XCTAssertEqual(NchanPublisher.pacingGap(postSeconds: -1, maxGap: 0.03), 0, "a clock step never makes it negative")
        let config = try Config(values: ["CC_STATE_DIR": "/srv/cc", "CC_COLLECT_INTERVAL": "1", "CC_STREAM_SHARDS": "8"])
        XCTAssertEqual(Collector.maxPacingGap(config) * 8, 0.05, accuracy: 1e-9)
        XCTAssertEqual(LiveChannels.systemShards(3), ["system.0", "system.1", "system.2"])
        XCTAssertEqual(LiveChannels.channel(ofID: "system.2"), "system")
        XCTAssertEqual(LiveChannels.channel(ofID: "events"), "events")
    }
}
