@testable import ControlCenterCore
@testable import ControlCenterLive
import Foundation
import XCTest

/// The Notifier's pure parts: the retry schedule, what a result means, the
/// two request bodies and the alert fingerprint.
final class NotificationSendingTests: XCTestCase {
    func testRetryScheduleDoublesUpToTheCapThenStops() {
        let s = RetrySchedule()
        XCTAssertEqual((1...7).map { s.delay(afterFailures: $0) }, [2, 4, 8, 16, 32, 64, 120])
        XCTAssertNil(s.delay(afterFailures: 8), "8 attempts in all")
        XCTAssertNil(s.delay(afterFailures: 0))
        let long = RetrySchedule(initial: 1, cap: 30, attempts: 1000)
        XCTAssertEqual(long.delay(afterFailures: 999), 30, "no overflow far out")
        XCTAssertNil(RetrySchedule(attempts: 1).delay(afterFailures: 1), "one attempt: no retry")
    }

    func testVerdictRetriesWhatMayRecoverOnly() {
        XCTAssertEqual(DeliveryVerdict.of(transportError: nil, status: 200, refusedAddress: nil), .delivered)
        XCTAssertEqual(DeliveryVerdict.of(transportError: nil, status: 204, refusedAddress: nil), .delivered)
        XCTAssertEqual(DeliveryVerdict.of(transportError: "Couldn't connect to server", status: 0, refusedAddress: nil),
                       .retry("Couldn't connect to server"))
        XCTAssertEqual(DeliveryVerdict.of(transportError: nil, status: 503, refusedAddress: nil), .retry("HTTP 503"))
        XCTAssertEqual(DeliveryVerdict.of(transportError: nil, status: 429, refusedAddress: nil), .retry("HTTP 429"))
        XCTAssertEqual(DeliveryVerdict.of(transportError: nil, status: 400, refusedAddress: nil), .permanent("HTTP 400"))
        XCTAssertEqual(DeliveryVerdict.of(transportError: nil, status: 302, refusedAddress: nil), .permanent("HTTP 302"))
        XCTAssertEqual(DeliveryVerdict.of(transportError: "Couldn't connect to server", status: 0, refusedAddress: "10.0.0.1"),
                       .permanent("destination 10.0.0.1 is outside CC_ALERT_TARGET_ALLOW"))
        // Refused one address, connected to the next: delivered.
        XCTAssertEqual(DeliveryVerdict.of(transportError: nil, status: 200, refusedAddress: "10.0.0.1"), .delivered)
    }

    static let labels = ["alertname": "HighCPU", "severity": "warning", "instance": "host-1"]
    static func notice(_ state: AlertNotice.State) -> AlertNotice {
        AlertNotice(fingerprint: AlertNotice.fingerprint(labels: labels), labels: labels,
                    annotations: ["summary": "CPU above 90%", "description": "cpu is 93.5%"], state: state,
                    startsAt: Date(timeIntervalSince1970: 1_800_000_000), endsAt: state == .resolved ? Date(timeIntervalSince1970: 1_800_000_600) : nil,
                    value: 93.5)
    }

    func testWebhookBodyHasAlertmanagersWebhookShape() throws {
        let body = NotificationBody.webhook(Self.notice(.firing))
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        XCTAssertEqual(o["version"] as? String, "4")
        XCTAssertEqual(o["status"] as? String, "firing")
        XCTAssertEqual(o["receiver"] as? String, "control-center")
        XCTAssertEqual(o["commonLabels"] as? [String: String], Self.labels)
        let alerts = try XCTUnwrap(o["alerts"] as? [[String: Any]])
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alerts[0]["status"] as? String, "firing")
        XCTAssertEqual(alerts[0]["labels"] as? [String: String], Self.labels)
        XCTAssertEqual(alerts[0]["annotations"] as? [String: String], ["summary": "CPU above 90%", "description": "cpu is 93.5%"])
        XCTAssertEqual(alerts[0]["startsAt"] as? String, "2027-01-15T08:00:00.000Z")
        XCTAssertEqual(alerts[0]["endsAt"] as? String, "0001-01-01T00:00:00.000Z", "Alertmanager's zero time while firing")
        XCTAssertEqual(alerts[0]["fingerprint"] as? String, Self.notice(.firing).fingerprint)
        XCTAssertEqual((alerts[0]["value"] as? NSNumber)?.doubleValue, 93.5)
        XCTAssertEqual(NotificationBody.webhook(Self.notice(.firing)), body, "same notice, same bytes")

        let resolved = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(NotificationBody.webhook(Self.notice(.resolved)))) as? [String: Any])
        XCTAssertEqual(resolved["status"] as? String, "resolved")
        XCTAssertEqual((resolved["alerts"] as? [[String: Any]])?.first?["endsAt"] as? String, "2027-01-15T08:10:00.000Z")
    }

    func testAlertmanagerBodyEndsAheadWhileFiringAndAtTheResolution() throws {
        let now = 1_800_000_100.0
        let firing = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(NotificationBody.alertmanager(Self.notice(.firing), now: now, endsAtAhead: 240))) as? [[String: Any]])
        XCTAssertEqual(firing.count, 1)
        XCTAssertEqual(Set(firing[0].keys), ["labels", "annotations", "startsAt", "endsAt"])
        XCTAssertEqual(firing[0]["labels"] as? [String: String], Self.labels)
        XCTAssertEqual(firing[0]["startsAt"] as? String, "2027-01-15T08:00:00.000Z")
        XCTAssertEqual(firing[0]["endsAt"] as? String, Clock.iso8601(now + 240))

        let resolved = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(NotificationBody.alertmanager(Self.notice(.resolved), now: now, endsAtAhead: 240))) as? [[String: Any]])
        XCTAssertEqual(resolved[0]["endsAt"] as? String, "2027-01-15T08:10:00.000Z")
        var noEnd = Self.notice(.resolved)
        noEnd.endsAt = nil
        noEnd.generatorURL = "http://127.0.0.1:8080/ui/"
        let now2 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(NotificationBody.alertmanager(noEnd, now: now, endsAtAhead: 240))) as? [[String: Any]])
        XCTAssertEqual(now2[0]["endsAt"] as? String, Clock.iso8601(now), "resolved without a time: ends now")
        XCTAssertEqual(now2[0]["generatorURL"] as? String, "http://127.0.0.1:8080/ui/")
    }

    func testFingerprintIsPrometheusLabelSetFingerprint() {
        // Prometheus' model.LabelSet{}.Fingerprint() is the FNV-1a offset basis.
        XCTAssertEqual(AlertNotice.fingerprint(labels: [:]), "cbf29ce484222325")
        let a = AlertNotice.fingerprint(labels: ["alertname": "A", "mount": "/"])
        XCTAssertEqual(a.count, 16)
        XCTAssertEqual(a, AlertNotice.fingerprint(labels: ["mount": "/", "alertname": "A"]), "order-independent")
        XCTAssertNotEqual(a, AlertNotice.fingerprint(labels: ["alertname": "A", "mount": "/boot"]))
        // The separator keeps {a="bc"} and {ab="c"} apart.
        XCTAssertNotEqual(AlertNotice.fingerprint(labels: ["a": "bc"]), AlertNotice.fingerprint(labels: ["ab": "c"]))
    }

    func testAFailedOutcomeIsOneNotificationFailedEventWithTheMaskedTarget() throws {
        let target = NotificationTarget(type: .webhook, url: "https://hooks.example.com/T0/secret", headers: ["Authorization": "Bearer x"])
        var o = NotificationOutcome(result: .failed(reason: "HTTP 503"), target: target.masked, fingerprint: "00000000000000ab",
                                    alertname: "HighCPU", state: .firing, attempts: 8)
        let e = try XCTUnwrap(o.event(at: 1_800_000_000_000))
        XCTAssertEqual(e.source, "alerts")
        XCTAssertEqual(e.action, "notification_failed")
        XCTAssertEqual(e.level, .warning)
        XCTAssertEqual(e.target, "HighCPU")
        XCTAssertEqual(e.ts, 1_800_000_000_000)
        XCTAssertEqual(e.message, "webhook notification of HighCPU (firing) to https://hooks.example.com/*** failed after 8 attempts: HTTP 503")
        XCTAssertFalse((e.data ?? "").contains("secret") || e.message.contains("secret") || (e.data ?? "").contains("Bearer"))
        let data = try XCTUnwrap(JSONSerialization.jsonObject(with: Data((e.data ?? "").utf8)) as? [String: Any])
        XCTAssertEqual(data["fingerprint"] as? String, "00000000000000ab")
        XCTAssertEqual(data["attempts"] as? Int, 8)
        XCTAssertEqual(data["target"] as? [String: String], ["type": "webhook", "url": "https://hooks.example.com/***"])
        o.result = .delivered
        XCTAssertNil(o.event(at: 0), "a delivery is no event")
    }

    func testATransitionBecomesANoticeOnlyWhenItFiresOrResolvesUnsilenced() throws {
        var rule = AlertRule(name: "disk full", metric: "disk",
                             condition: AlertCondition(comparator: .greater, threshold: 90, clearThreshold: 85,
                                                       forSeconds: 60, keepFiringForSeconds: 30), severity: .critical)
        rule.id = 3
        let labels = AlertEngine.labels(rule, label: "/data")
        XCTAssertEqual(labels, ["alertname": "disk full", "metric": "disk", "severity": "critical", "mount": "/data"])
        var t = AlertTransition(rule: rule, labels: labels, state: .firing, value: 93.25, startsAt: 1_800_000_000_000,
                                endsAt: nil, alertID: 7, silenced: false)
        let firing = try XCTUnwrap(AlertNotice(t))
        XCTAssertEqual(firing.state, .firing)
        XCTAssertEqual(firing.fingerprint, AlertNotice.fingerprint(labels: labels))
        XCTAssertEqual(firing.startsAt, Date(timeIntervalSince1970: 1_800_000_000))
        XCTAssertNil(firing.endsAt)
        XCTAssertEqual(firing.annotations["summary"], "disk full: disk (mount /data) is 93.2")
        t.state = .resolved
        t.endsAt = 1_800_000_090_000
        XCTAssertEqual(AlertNotice(t)?.endsAt, Date(timeIntervalSince1970: 1_800_000_090))
        XCTAssertEqual(AlertNotice(t)?.fingerprint, firing.fingerprint, "one alert, one fingerprint")
        t.state = .pending
        XCTAssertNil(AlertNotice(t), "nobody is told of an alert that has not fired")
        t.state = .firing
        t.silenced = true
        XCTAssertNil(AlertNotice(t), "a silence holds the notification back")
    }
}
