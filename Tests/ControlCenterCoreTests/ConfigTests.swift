@testable import ControlCenterCore
import Foundation
import XCTest

final class ConfigTests: XCTestCase {
    func testAllowedOriginsAreOriginsOnly() throws {
        XCTAssertEqual(try Config(values: [:]).allowedOrigins, [])
        let c = try Config(values: ["CC_ALLOWED_ORIGINS": " https://Dash.Example , http://10.0.0.5:8080,http://[::1]:9000"])
        XCTAssertEqual(c.allowedOrigins, ["https://dash.example", "http://10.0.0.5:8080", "http://[::1]:9000"])
        for bad in ["dash.example", "https://dash.example/", "https://dash.example/path", "ftp://x", "https://a b", "*"] {
            XCTAssertThrowsError(try Config(values: ["CC_ALLOWED_ORIGINS": bad]), bad)
        }
        XCTAssertEqual(try Config(values: ["CC_COLLECT_INTERVAL": "0.5"]).collectInterval, 0.5)
        XCTAssertThrowsError(try Config(values: ["CC_COLLECT_INTERVAL": "0"]))
    }

    func testDefaults() throws {
        let c = try Config(values: ["CC_STATE_DIR": "/tmp/x"])
        XCTAssertEqual(c.workers, 4)
        XCTAssertEqual(c.requestTimeout, 10)
        XCTAssertEqual(c.maxBody, 1 << 20)
        XCTAssertEqual(c.listen, .unix("/tmp/x/run/fcgi.sock"))
        XCTAssertEqual(c.pidFile, "/tmp/x/run/master.pid")
        XCTAssertEqual(c.databaseURL, "sqlite:///tmp/x/control-center.db")
        XCTAssertEqual(c.cacheTTL["connections"], 5)
        XCTAssertEqual(c.maxRequestsJitter, c.maxRequests / 10)
        XCTAssertTrue(c.publicRead)
        XCTAssertFalse(c.testRoutes)
    }

    func testAccessLogBufferingAndTheAcceptWakeup() throws {
        let d = try Config(values: ["CC_STATE_DIR": "/tmp/x"])
        XCTAssertEqual(d.accessLogBuffer, 32768)
        XCTAssertEqual(d.accessLogFlush, 1)
        XCTAssertEqual(d.acceptWakeup, 1)
        XCTAssertEqual(try Config(values: ["CC_ACCESS_LOG_FLUSH": "0.2"]).acceptWakeup, 0.2)
        XCTAssertEqual(try Config(values: ["CC_ACCESS_LOG_FLUSH": "5"]).acceptWakeup, 1, "idle workers wake at least every second")
        XCTAssertEqual(try Config(values: ["CC_ACCESS_LOG_BUFFER": "0"]).acceptWakeup, 0, "nothing buffered, nothing to wake for")
        XCTAssertEqual(try Config(values: ["CC_ACCESS_LOG": "off"]).acceptWakeup, 0)
        XCTAssertThrowsError(try Config(values: ["CC_ACCESS_LOG_BUFFER": "-1"]))
        XCTAssertThrowsError(try Config(values: ["CC_ACCESS_LOG_FLUSH": "0"]))
    }

    func testJWTSecretMustBeAtLeast32Bytes() throws {
        for short in ["x", String(repeating: "k", count: 31)] {
            XCTAssertThrowsError(try Config(values: ["CC_JWT_SECRET": short])) { error in
                XCTAssertTrue(String(describing: error).contains("at least 32 bytes"), "\(error)")
            }
        }
        XCTAssertEqual(try Config(values: ["CC_JWT_SECRET": String(repeating: "k", count: 32)]).jwtSecret?.utf8.count, 32)
    }

    func testRelativeStateDirBecomesAbsolute() throws {
        let c = try Config(values: ["CC_STATE_DIR": "./var"])
        XCTAssertTrue(c.stateDir.hasPrefix("/"))
        XCTAssertTrue(c.stateDir.hasSuffix("/var"))
    }

    func testValuesAreValidated() {
        XCTAssertThrowsError(try Config(values: ["CC_WORKERS": "0"]))
        XCTAssertThrowsError(try Config(values: ["CC_WORKERS": "many"]))
        XCTAssertThrowsError(try Config(values: ["CC_REQUEST_TIMEOUT": "-1"]))
        XCTAssertThrowsError(try Config(values: ["CC_TEST_ROUTES": "maybe"]))
        XCTAssertThrowsError(try Config(values: ["CC_LOG_LEVEL": "loud"]))
        XCTAssertThrowsError(try Config(values: ["CC_DATABASE_URL": "mysql://x"]))
        XCTAssertThrowsError(try Config(values: ["CC_LISTEN": "nonsense"]))
        XCTAssertNoThrow(try Config(values: ["CC_TEST_ROUTES": "yes", "CC_PUBLIC_READ": "0"]))
    }

    func testListenAddresses() throws {
        XCTAssertEqual(try ListenAddress(parsing: "127.0.0.1:9000"), .tcp(host: "127.0.0.1", port: 9000))
        XCTAssertEqual(try ListenAddress(parsing: "[::1]:9000"), .tcp(host: "::1", port: 9000))
        XCTAssertEqual(try ListenAddress(parsing: ":9000"), .tcp(host: "127.0.0.1", port: 9000))
        XCTAssertEqual(try ListenAddress(parsing: "unix:/run/x.sock"), .unix("/run/x.sock"))
        XCTAssertEqual(ListenAddress.tcp(host: "::1", port: 1).description, "[::1]:1")
        XCTAssertThrowsError(try ListenAddress(parsing: "unix:"))
        XCTAssertThrowsError(try ListenAddress(parsing: "host:99999"))
        XCTAssertThrowsError(try ListenAddress(parsing: "unix:/" + String(repeating: "a", count: 200)))
    }

    func testTCPListenMustBeLoopbackUnlessAllowed() throws {
        for loopback in ["127.0.0.1:9000", "127.8.9.10:9000", "[::1]:9000", ":9000", "localhost:9000",
                         "[::ffff:127.0.0.1]:9000", "unix:/run/x.sock"] {
            XCTAssertTrue(try ListenAddress(parsing: loopback).isLoopback, loopback)
            XCTAssertNoThrow(try Config(values: ["CC_LISTEN": loopback, "CC_STORAGE_LISTEN": loopback]), loopback)
        }
        for remote in ["0.0.0.0:9000", "10.0.0.5:9000", "[::]:9000", "[2001:db8::1]:9000", "[::ffff:10.0.0.1]:9000",
                       "128.0.0.1:9000", "db.example:9000", "localhost.example:9000"] {
            XCTAssertFalse(try ListenAddress(parsing: remote).isLoopback, remote)
            for name in ["CC_LISTEN", "CC_STORAGE_LISTEN"] {
                XCTAssertThrowsError(try Config(values: [name: remote]), remote) { error in
                    let text = String(describing: error)
                    XCTAssertTrue(text.contains(name) && text.contains("not a loopback address")
                                  && text.contains("CC_LISTEN_ALLOW_REMOTE=true"), text)
                }
            }
            let allowed = try Config(values: ["CC_LISTEN": remote, "CC_STORAGE_LISTEN": remote,
                                              "CC_LISTEN_ALLOW_REMOTE": "true"])
            XCTAssertEqual(allowed.listen, try ListenAddress(parsing: remote))
        }
        XCTAssertThrowsError(try Config(values: ["CC_LISTEN_ALLOW_REMOTE": "maybe"]))
    }

    func testFileParsingAndEnvironmentPrecedence() throws {
        let file = NSTemporaryDirectory() + "cc-config-\(UUID().uuidString)"
        try "# comment\nCC_WORKERS=7\nCC_REQUEST_TIMEOUT = \"3\"\n\nCC_MAX_BODY='100'\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let c = try Config.load(environment: ["CC_CONFIG_FILE": file, "CC_MAX_BODY": "200", "CC_UNRELATED_SCRIPT_VAR": "x"])
        XCTAssertEqual(c.workers, 7)
        XCTAssertEqual(c.requestTimeout, 3)
        XCTAssertEqual(c.maxBody, 200, "the environment wins over the file")
        XCTAssertEqual(c.configFile, file)
    }

    func testFileErrors() throws {
        XCTAssertThrowsError(try Config.parseFile("NOT_CC=1"))
        XCTAssertThrowsError(try Config.parseFile("CC_WORKERS"))
        let file = NSTemporaryDirectory() + "cc-config-\(UUID().uuidString)"
        try "CC_WORKRES=3\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        XCTAssertThrowsError(try Config.load(environment: ["CC_CONFIG_FILE": file]), "a typo in the file is reported")
        XCTAssertThrowsError(try Config.load(environment: ["CC_CONFIG_FILE": "/nonexistent/file"]))
    }

    func testEverySettingIsDocumentedInReadme() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        for s in Config.settings { XCTAssertTrue(text.contains("`\(s.name)`"), "\(s.name) missing from README") }
    }
}
