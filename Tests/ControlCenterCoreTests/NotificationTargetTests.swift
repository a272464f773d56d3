@testable import ControlCenterCore
import Foundation
import XCTest

/// Target validation (scheme, userinfo, CC_ALERT_TARGET_ALLOW, headers) and
/// the masked form viewers get.
final class NotificationTargetTests: XCTestCase {
    let loopback = try! CIDR.list("127.0.0.0/8,::1", setting: "test")

    func rejection(_ t: NotificationTarget, allow: [CIDR]? = nil, resolve: @escaping (String) -> [String]? = { _ in nil }) -> String? {
        do {
            try t.validate(allow: allow ?? loopback, resolve: resolve)
            return nil
        } catch let e as APIError {
            XCTAssertEqual(e.status, 400)
            XCTAssertEqual(e.code, "invalid_target")
            return e.message
        } catch {
            return "unexpected \(error)"
        }
    }

    func testLoopbackTargetsPass() {
        XCTAssertNil(rejection(NotificationTarget(type: .webhook, url: "http://127.0.0.1:8000/hook?token=abc")))
        XCTAssertNil(rejection(NotificationTarget(type: .alertmanager, url: "https://[::1]:9093/")))
        XCTAssertNil(rejection(NotificationTarget(type: .webhook, url: "http://receiver.test/x"), resolve: { _ in ["127.0.0.9"] }))
        XCTAssertNil(rejection(NotificationTarget(type: .webhook, url: "http://127.0.0.1/", headers: ["Authorization": "Bearer s3cret"])))
    }

    func testSchemeCredentialsAndHostAreChecked() {
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "ftp://127.0.0.1/x")), "target url must be http or https, got ftp")
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "file:///etc/passwd")), "target url must be http or https, got file")
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "http://user:pw@127.0.0.1/")),
                       "target url must not carry credentials (user:password@); send them in a header")
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "not a url")), "target url is not a URL")
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "http:///path")), "target url has no host")
        XCTAssertEqual(rejection(NotificationTarget(type: .alertmanager, url: "http://127.0.0.1:9093/?x=1")),
                       "an alertmanager url is its base, such as http://127.0.0.1:9093, with no query")
        XCTAssertNotNil(rejection(NotificationTarget(type: .webhook, url: "http://127.0.0.1/" + String(repeating: "a", count: 2100))))
    }

    func testDestinationsOutsideTheAllowListAreRefused() {
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "http://10.1.2.3/hook")),
                       "target host 10.1.2.3 is 10.1.2.3, outside CC_ALERT_TARGET_ALLOW")
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "http://169.254.169.254/latest")),
                       "target host 169.254.169.254 is 169.254.169.254, outside CC_ALERT_TARGET_ALLOW")
        // A name counts by every address it resolves to: one outside is enough to refuse it.
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "http://mixed.test/"), resolve: { _ in ["127.0.0.1", "192.168.1.5"] }),
                       "target host mixed.test is 192.168.1.5, outside CC_ALERT_TARGET_ALLOW")
        XCTAssertEqual(rejection(NotificationTarget(type: .webhook, url: "http://nowhere.test/")), "target host nowhere.test does not resolve")
        let lan = try! CIDR.list("192.168.1.0/24", setting: "test")
        XCTAssertNil(rejection(NotificationTarget(type: .webhook, url: "http://192.168.1.5/"), allow: lan))
        XCTAssertNotNil(rejection(NotificationTarget(type: .webhook, url: "http://127.0.0.1/"), allow: lan))
        XCTAssertNotNil(rejection(NotificationTarget(type: .webhook, url: "http://127.0.0.1/"), allow: []))
    }

    func testMappedIPv4CountsAsItsIPv4Address() {
        XCTAssertTrue(NotificationTarget.isAllowed("::ffff:127.0.0.1", allow: loopback))
        XCTAssertFalse(NotificationTarget.isAllowed("::ffff:10.0.0.1", allow: loopback))
        XCTAssertTrue(NotificationTarget.isAllowed("::1", allow: loopback))
        XCTAssertFalse(NotificationTarget.isAllowed("fe80::1", allow: loopback))
    }

    func testHeadersAreChecked() {
        func headers(_ h: [String: String]) -> String? { rejection(NotificationTarget(type: .webhook, url: "http://127.0.0.1/", headers: h)) }
        XCTAssertEqual(headers(["X-Evil": "a\r\nHost: other"]),
                       "header X-Evil: the value is longer than 4096 bytes or holds CR, LF or NUL")
        XCTAssertEqual(headers(["Bad Name": "x"]), "header name 'Bad Name' is not a token")
        XCTAssertEqual(headers(["content-type": "text/plain"]), "header content-type is set by the sender")
        XCTAssertEqual(headers(["Host": "example.com"]), "header Host is set by the sender")
        XCTAssertNotNil(headers(Dictionary(uniqueKeysWithValues: (0..<21).map { ("X-H\($0)", "v") })))
    }

    func testResolveReadsTheSystemResolver() {
        XCTAssertEqual(NotificationTarget.resolve("127.0.0.1"), ["127.0.0.1"])
        XCTAssertNotNil(NotificationTarget.resolve("localhost"))
        XCTAssertNil(NotificationTarget.resolve(""), "a failure is nil (an empty name fails without asking DNS)")
    }

    func testMaskedHidesPathQueryAndHeaderValues() {
        let t = NotificationTarget(type: .webhook, url: "https://hooks.example.com:8443/services/T000/B000/XXXX?token=abc",
                                   headers: ["Authorization": "Bearer s3cret"])
        XCTAssertEqual(t.masked, NotificationTarget(type: .webhook, url: "https://hooks.example.com:8443/***",
                                                    headers: ["Authorization": "***"]))
        XCTAssertEqual(NotificationTarget(type: .alertmanager, url: "http://127.0.0.1:9093").masked.url, "http://127.0.0.1:9093")
        XCTAssertEqual(NotificationTarget(type: .alertmanager, url: "http://[::1]:9093/").masked.url, "http://[::1]:9093")
        XCTAssertEqual(NotificationTarget(type: .webhook, url: "garbage").masked.url, "***")
    }

    func testCodableShape() throws {
        let t = try JSONDecoder().decode(NotificationTarget.self, from: Data(#"{"type":"alertmanager","url":"http://127.0.0.1:9093"}"#.utf8))
        XCTAssertEqual(t, NotificationTarget(type: .alertmanager, url: "http://127.0.0.1:9093"))
        XCTAssertThrowsError(try JSONDecoder().decode(NotificationTarget.self, from: Data(#"{"type":"email","url":"x"}"#.utf8)))
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        XCTAssertEqual(String(decoding: try enc.encode(NotificationTarget(type: .webhook, url: "http://h/", headers: ["A": "b"])), as: UTF8.self),
                       #"{"headers":{"A":"b"},"type":"webhook","url":"http:\/\/h\/"}"#)
    }

    func testAllowListSettingDefaultsToLoopback() throws {
        XCTAssertEqual(try Config(values: [:]).alertTargetAllow.map(\.description), ["127.0.0.0/8", "::1"])
        XCTAssertEqual(try Config(values: ["CC_ALERT_TARGET_ALLOW": "10.0.0.0/8"]).alertTargetAllow.map(\.description), ["10.0.0.0/8"])
        XCTAssertThrowsError(try Config(values: ["CC_ALERT_TARGET_ALLOW": "nonsense"]))
    }
}
