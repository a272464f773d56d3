import Foundation
import XCTest

/// A state directory nginx's workers cannot reach (under a 0700 directory)
/// fails every request with "Permission denied"; the master refuses to
/// start instead and names the directory.
final class NginxUserReachTests: XCTestCase {
    func testMasterRefusesAStateDirectoryNginxsUserCannotReach() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: nginx's workers run as www-data only when started by root") }
        guard getpwnam("www-data") != nil else { throw XCTSkip("no www-data user") }
        let closed = NSTemporaryDirectory() + "cc-closed-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: closed) }
        try FileManager.default.createDirectory(atPath: closed + "/state", withIntermediateDirectories: false)
        let master = Process()
        master.executableURL = URL(fileURLWithPath: TestServer.binary)
        master.arguments = ["serve"]
        var env = ProcessInfo.processInfo.environment
        env["CC_STATE_DIR"] = closed + "/state"
        env["CC_NGINX_USER"] = "www-data"
        env["CC_LOG_FILE"] = closed + "/master.log"
        master.environment = env
        let err = Pipe()
        master.standardError = err
        try master.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        master.waitUntilExit()
        XCTAssertNotEqual(master.terminationStatus, 0, "the master must not start")
        XCTAssertTrue(text.contains("\(closed) is not searchable by www-data"), text)
        XCTAssertTrue(text.contains("setfacl -m u:www-data:x \(closed)"), text)

        // Search permission alone (no listing) is enough: the whole stack
        // then serves, nginx's workers as www-data.
        chmod(closed, 0o701)
        let server = try TestServer(env: ["CC_STATE_DIR": closed + "/state", "CC_NGINX_USER": "www-data"])
        defer { server.stop() }
        XCTAssertEqual(try server.get("/health").status, 200)
    }
}
