import ControlCenterCore
@testable import ControlCenterLive
import Foundation
import Glibc
import XCTest

/// The collector's Notifier against real receivers on loopback: a small
/// HTTP server (webhook_receiver.py) and Debian's prometheus-alertmanager.
/// The tests drive the Notifier as the collector does, a `tick` at each
/// (shortened) sample.
final class NotificationDeliveryTests: XCTestCase {
    let loopback = try! CIDR.list("127.0.0.0/8,::1", setting: "test")
    var dir = ""

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-notify-\(getpid())-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func notice(_ state: AlertNotice.State, labels: [String: String] = ["alertname": "HighCPU", "severity": "warning"]) -> AlertNotice {
        AlertNotice(fingerprint: AlertNotice.fingerprint(labels: labels), labels: labels,
                    annotations: ["summary": "CPU above 90%"], state: state,
                    startsAt: Date(timeIntervalSinceNow: -300), endsAt: state == .resolved ? Date() : nil, value: 93.5)
    }

    /// Ticks every `interval` until `done` or `seconds` pass; every outcome.
    func drive(_ n: Notifier, seconds: Double, interval: Double = 0.05, until done: (Notifier, [NotificationOutcome]) -> Bool) -> [NotificationOutcome] {
        var outcomes: [NotificationOutcome] = []
        let end = Clock.monotonicSeconds() + seconds
        while Clock.monotonicSeconds() < end {
            outcomes += n.tick(now: Clock.monotonicSeconds())
            if done(n, outcomes) { break }
            Clock.sleep(seconds: interval)
        }
        return outcomes
    }

    func startReceiver(statuses: [Int] = []) throws -> (port: Int, process: Process, records: () -> [[String: Any]]) {
        try Self.startReceiver(in: dir, statuses: statuses)
    }

    /// The receiver on a free port, its files in `dir`; its records (one per
    /// request) are read with `records`. It answers `statuses` in turn, then 200.
    static func startReceiver(in dir: String, statuses: [Int] = []) throws -> (port: Int, process: Process, records: () -> [[String: Any]]) {
        let port = TestServer.freePort()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Support/webhook_receiver.py").path
        let file = dir + "/received-\(port).jsonl"
        let p = try ExternalTool.start("/usr/bin/python3", [script, String(port), file, statuses.map(String.init).joined(separator: ",")], logDir: dir)
        XCTAssertTrue(waitUntil(10) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
        }, "receiver did not start")
        let records = {
            ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        return (port, p, records)
    }

    func testWebhookReachesARealReceiverAfterRetries() throws {
        // Two 503s, then 200: the third attempt delivers.
        let receiver = try startReceiver(statuses: [503, 503])
        defer { ExternalTool.stop(receiver.process) }
        let target = NotificationTarget(type: .webhook, url: "http://127.0.0.1:\(receiver.port)/hook?token=s3cret",
                                        headers: ["Authorization": "Bearer s3cret"])
        try target.validate(allow: loopback)
        let n = try XCTUnwrap(Notifier(allow: loopback, policy: .init(retry: RetrySchedule(initial: 0.1, cap: 0.2, attempts: 4)), log: nil))
        n.enqueue(Self.notice(.firing), targets: [target], now: Clock.monotonicSeconds())
        let outcomes = drive(n, seconds: 15) { n, _ in n.pending == 0 }
        XCTAssertEqual(outcomes, [NotificationOutcome(result: .delivered, target: target.masked, fingerprint: Self.notice(.firing).fingerprint,
                                                      alertname: "HighCPU", state: .firing, attempts: 3)])
        let got = receiver.records()
        XCTAssertEqual(got.map { $0["status"] as? Int }, [503, 503, 200])
        let last = try XCTUnwrap(got.last)
        XCTAssertEqual(last["path"] as? String, "/hook?token=s3cret")
        let headers = try XCTUnwrap(last["headers"] as? [String: String])
        XCTAssertEqual(headers["authorization"], "Bearer s3cret")
        XCTAssertEqual(headers["content-type"], "application/json")
        let body = try XCTUnwrap(last["body"] as? [String: Any])
        XCTAssertEqual(body["status"] as? String, "firing")
        let alert = try XCTUnwrap((body["alerts"] as? [[String: Any]])?.first)
        XCTAssertEqual(alert["labels"] as? [String: String], ["alertname": "HighCPU", "severity": "warning"])
        XCTAssertEqual(alert["fingerprint"] as? String, Self.notice(.firing).fingerprint)
    }

    func testReceiverThatIsDownIsRetriedThenReportedFailedOnce() throws {
        let port = TestServer.freePort() // nothing listens there
        let target = NotificationTarget(type: .webhook, url: "http://127.0.0.1:\(port)/hook")
        let schedule = RetrySchedule(initial: 0.2, cap: 0.4, attempts: 4)
        let n = try XCTUnwrap(Notifier(allow: loopback, policy: .init(retry: schedule), log: nil))
        let started = Clock.monotonicSeconds()
        n.enqueue(Self.notice(.firing), targets: [target], now: started)
        var outcomes = drive(n, seconds: 15) { n, _ in n.pending == 0 }
        let elapsed = Clock.monotonicSeconds() - started
        XCTAssertEqual(outcomes.count, 1)
        XCTAssertEqual(outcomes.first?.attempts, 4)
        XCTAssertEqual(outcomes.first?.state, .firing)
        guard case .failed(let reason)? = outcomes.first?.result else { return XCTFail("not failed: \(outcomes)") }
        XCTAssertEqual(reason, "Couldn't connect to server")
        XCTAssertGreaterThanOrEqual(elapsed, 0.2 + 0.4 + 0.4, "waited the schedule's delays between attempts")

        // Still down: the resolution fails too, and is not reported a second time.
        n.enqueue(Self.notice(.resolved), targets: [target], now: Clock.monotonicSeconds())
        outcomes = drive(n, seconds: 15) { n, _ in n.pending == 0 }
        XCTAssertEqual(n.pending, 0)
        XCTAssertEqual(outcomes, [], "one failure report per alert and target until it recovers")
    }

    func testDestinationOutsideTheAllowListIsRefusedAtConnect() throws {
        let receiver = try startReceiver()
        defer { ExternalTool.stop(receiver.process) }
        // As if the name had resolved into the list when stored and elsewhere now.
        let target = NotificationTarget(type: .webhook, url: "http://127.0.0.1:\(receiver.port)/hook")
        let n = try XCTUnwrap(Notifier(allow: try CIDR.list("10.0.0.0/8", setting: "test"), log: nil))
        n.enqueue(Self.notice(.firing), targets: [target], now: Clock.monotonicSeconds())
        let outcomes = drive(n, seconds: 10) { n, _ in n.pending == 0 }
        XCTAssertEqual(outcomes.map(\.result), [.failed(reason: "destination 127.0.0.1 is outside CC_ALERT_TARGET_ALLOW")])
        XCTAssertEqual(outcomes.first?.attempts, 1, "a refusal is not retried")
        XCTAssertEqual(receiver.records().count, 0)
    }

    func testAlertmanagerKeepsAFiringAlertThatIsResentAndDropsItWhenResolved() throws {
        let binary = try XCTUnwrap(ExternalTool.path("prometheus-alertmanager"), "Debian package prometheus-alertmanager (Scripts/test installs it)")
        let port = TestServer.freePort()
        try """
            global: {resolve_timeout: 10s}
            route: {receiver: 'null', group_wait: 1s}
            receivers: [{name: 'null'}]
            """.write(toFile: dir + "/alertmanager.yml", atomically: true, encoding: .utf8)
        let am = try ExternalTool.start(binary, ["--config.file=\(dir)/alertmanager.yml", "--storage.path=\(dir)/am-data",
                                                 "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address="], logDir: dir)
        defer { ExternalTool.stop(am) }
        XCTAssertTrue(waitUntil(20) { (try? HTTPClient.request(port: port, path: "/-/ready", timeout: 2).status) == 200 },
                      "alertmanager did not start: " + ((try? String(contentsOfFile: dir + "/prometheus-alertmanager.log", encoding: .utf8)) ?? ""))
        func listed() throws -> [[String: Any]] {
            let r = try HTTPClient.request(port: port, path: "/api/v2/alerts", timeout: 5)
            XCTAssertEqual(r.status, 200)
            return (try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [[String: Any]]) ?? []
        }

        // endsAt 6 s ahead, re-sent every 2 s: only the re-sends keep the alert for 30 s.
        let n = try XCTUnwrap(Notifier(allow: loopback, policy: .init(resendInterval: 2, endsAtAhead: 6), log: nil))
        let target = NotificationTarget(type: .alertmanager, url: "http://127.0.0.1:\(port)/")
        let firing = Self.notice(.firing, labels: ["alertname": "HighCPU", "severity": "warning", "instance": "cc-test"])
        n.enqueue(firing, targets: [target], now: Clock.monotonicSeconds())
        let outcomes = drive(n, seconds: 30, interval: 0.25) { _, _ in false }
        XCTAssertEqual(Set(outcomes.map(\.result)), [.delivered])
        XCTAssertGreaterThanOrEqual(outcomes.count, 12, "one send and a re-send every 2 s")
        let alerts = try listed()
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alerts.first?["labels"] as? [String: String], firing.labels)
        XCTAssertEqual((alerts.first?["status"] as? [String: Any])?["state"] as? String, "active")
        XCTAssertEqual(alerts.first?["fingerprint"] as? String, firing.fingerprint, "our fingerprint is Alertmanager's")

        n.enqueue(Self.notice(.resolved, labels: firing.labels), targets: [target], now: Clock.monotonicSeconds())
        let last = drive(n, seconds: 10) { n, _ in n.pending == 0 }
        XCTAssertEqual(last.map(\.state), [.resolved])
        XCTAssertTrue(waitUntil(5) { ((try? listed()) ?? [[:]]).isEmpty }, "resolved alert still listed")
        XCTAssertEqual(drive(n, seconds: 2.5, interval: 0.25) { _, _ in false }, [], "no re-send after the resolution")
    }

    func testResendsFollowTheAlertsCurrentTargets() throws {
        // The receiver stands in for two Alertmanagers, told apart by path.
        let receiver = try startReceiver()
        defer { ExternalTool.stop(receiver.process) }
        let a = NotificationTarget(type: .alertmanager, url: "http://127.0.0.1:\(receiver.port)/a")
        let b = NotificationTarget(type: .alertmanager, url: "http://127.0.0.1:\(receiver.port)/b")
        let n = try XCTUnwrap(Notifier(allow: loopback, policy: .init(resendInterval: 0.3), log: nil))
        n.enqueue(Self.notice(.firing), targets: [a, b], now: Clock.monotonicSeconds())
        _ = drive(n, seconds: 1.2) { _, _ in false }
        func sent(_ path: String) -> Int { receiver.records().filter { $0["path"] as? String == path }.count }
        XCTAssertGreaterThanOrEqual(sent("/a/api/v2/alerts"), 3, "sent and re-sent")
        XCTAssertGreaterThanOrEqual(sent("/b/api/v2/alerts"), 3)
        // The rule now notifies `a` only: `b` hears nothing more.
        n.enqueue(Self.notice(.firing), targets: [a], now: Clock.monotonicSeconds())
        _ = drive(n, seconds: 0.3) { n, _ in n.pending == 0 }
        let before = (sent("/a/api/v2/alerts"), sent("/b/api/v2/alerts"))
        _ = drive(n, seconds: 1.2) { _, _ in false }
        XCTAssertGreaterThanOrEqual(sent("/a/api/v2/alerts"), before.0 + 3)
        XCTAssertEqual(sent("/b/api/v2/alerts"), before.1)
    }

    func testAReceiverThatNeverAnswersNeverHoldsUpATick() throws {
        // A socket that listens and never accepts: connects succeed, answers never come.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        XCTAssertEqual(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }, 0)
        XCTAssertEqual(listen(fd, 16), 0)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let target = NotificationTarget(type: .webhook, url: "http://127.0.0.1:\(UInt16(bigEndian: addr.sin_port))/hook")
        let n = try XCTUnwrap(Notifier(allow: loopback, policy: .init(retry: RetrySchedule(initial: 0.1, attempts: 2), timeoutMillis: 500), log: nil))
        n.enqueue(Self.notice(.firing), targets: [target], now: Clock.monotonicSeconds())
        var longest = 0.0
        var outcomes: [NotificationOutcome] = []
        let end = Clock.monotonicSeconds() + 5
        while n.pending > 0 && Clock.monotonicSeconds() < end {
            let t0 = Clock.monotonicSeconds()
            outcomes += n.tick(now: t0)
            longest = max(longest, Clock.monotonicSeconds() - t0)
            Clock.sleep(seconds: 0.02)
        }
        XCTAssertEqual(outcomes.map(\.result), [.failed(reason: "Timeout was reached")])
        XCTAssertEqual(outcomes.first?.attempts, 2)
        // Well under the 0.5 s timeout, with room for a loaded machine.
        XCTAssertLessThan(longest, 0.25, "a tick waited on the receiver")
    }
}
