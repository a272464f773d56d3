import Foundation
import XCTest

/// Issue 9 §3: strangers guessing a password from many addresses must not
/// lock its owner out. Through real nginx and the storage pool, with
/// nginx's loopback exemption off (`CC_RATE_LIMIT_EXEMPT=""`), so that each
/// 127.0.0.x source is a separate client to nginx and to the database
/// throttle alike.
final class LoginLockoutThroughNginxTests: XCTestCase {
    func testAThousandGuessesFromFiftyAddressesDoNotLockTheOwnerOut() throws {
        let server = try TestServer(env: ["CC_RATE_LIMIT_EXEMPT": ""])
        defer { server.stop() }
        let port = server.port
        let generated = try String(contentsOfFile: server.stateDir + "/first-admin-password", encoding: .utf8)
            .trimmingCharacters(in: .newlines)

        // 50 addresses, 20 guesses each, 10 clients at a time.
        let statuses = GuessTally()
        DispatchQueue.concurrentPerform(iterations: 10) { client in
            for n in stride(from: client, to: 1000, by: 10) {
                let status = (try? Self.login(port, "guess-\(n)", from: "127.0.0.\(n % 50 + 1)").status) ?? -1
                statuses.add(status)
            }
        }
        let seen = statuses.counts
        XCTAssertEqual(seen.keys.filter { $0 != 401 && $0 != 429 }, [], "only refusals: \(seen)")
        XCTAssertGreaterThan(seen[429] ?? 0, 500, "guessing is throttled: \(seen)")

        let started = Date()
        let owner = try Self.login(port, generated, from: "127.0.0.201")
        XCTAssertEqual(owner.status, 200, owner.text)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
    }

    static func login(_ port: Int, _ password: String, from source: String) throws -> HTTPResponse {
        try HTTPClient.request(port: port, method: "POST", path: "/api/auth/login",
                               headers: ["Content-Type": "application/json"],
                               body: Array(try JSONSerialization.data(withJSONObject: ["username": "admin", "password": password])),
                               source: source)
    }
}

final class GuessTally: @unchecked Sendable {
    private let lock = NSLock()
    private var byStatus: [Int: Int] = [:]

    func add(_ status: Int) {
        lock.lock()
        byStatus[status, default: 0] += 1
        lock.unlock()
    }

    var counts: [Int: Int] {
        lock.lock()
        defer { lock.unlock() }
        return byStatus
    }
}
