@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The registry's pure rules: parsing a definition and the dependency graph.
final class ServiceDefinitionTests: XCTestCase {
    func parse(_ o: [String: Any], name: String? = nil) throws -> ServiceDefinition {
        try ServiceDefinition.parse(o, name: name)
    }

    func reason(_ o: [String: Any], name: String? = nil) -> ServiceDefinition.Invalid? {
        do {
            _ = try ServiceDefinition.parse(o, name: name)
            return nil
        } catch {
            return error
        }
    }

    func testMinimalDefinitionTakesTheDefaults() throws {
        let d = try parse(["name": "web", "command": ["/usr/bin/python3", "-m", "http.server"]])
        XCTAssertEqual(d.command, ["/usr/bin/python3", "-m", "http.server"])
        XCTAssertEqual(d.restartPolicy, .onFailure)
        XCTAssertEqual(d.stopSignal, .TERM)
        XCTAssertEqual(d.stopTimeoutSeconds, ServiceDefinition.Defaults.stopTimeoutSeconds)
        XCTAssertEqual(d.maxRetries, ServiceDefinition.Defaults.maxRetries)
        XCTAssertFalse(d.autostart)
        XCTAssertNil(d.healthCheck)
        XCTAssertEqual(d.environment, [:])
    }

    func testFullDefinitionRoundTripsThroughItsStoredForm() throws {
        let o: [String: Any] = [
            "name": "api_2", "description": "API", "command": ["/bin/sh", "-c", "exec sleep 100"],
            "working_directory": "/tmp", "environment": ["PORT": "8080", "_X1": ""], "user": "nobody", "group": "nogroup",
            "port": 8080, "autostart": true, "restart_policy": "always", "backoff_initial_seconds": 0.5,
            "backoff_max_seconds": 30, "max_retries": 3, "retry_cooldown_seconds": 60, "depends_on": ["db"],
            "start_timeout_seconds": 2, "stop_timeout_seconds": 5, "stop_signal": "SIGINT",
            "health_check": ["type": "http", "url": "http://127.0.0.1:8080/health", "expected_status": 204,
                             "interval_seconds": 5, "timeout_seconds": 1, "failure_threshold": 2],
            "limits": ["open_files": 1024, "memory_bytes": 268_435_456],
        ]
        let d = try parse(o)
        XCTAssertEqual(d.stopSignal, .INT, "SIG prefix accepted")
        XCTAssertEqual(d.healthCheck?.kind, .http(url: "http://127.0.0.1:8080/health", expectedStatus: 204))
        XCTAssertEqual(d.limitMemoryBytes, 268_435_456)
        let stored = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(d.storedJSON.utf8)) as? [String: Any])
        let again = try parse(stored)
        XCTAssertEqual(again, d)
        XCTAssertEqual(again.storedJSON, d.storedJSON, "equal definitions have equal stored bytes")
    }

    func testProbeKinds() throws {
        let tcp = try parse(["name": "a", "command": ["x"], "health_check": ["type": "tcp", "port": 5432]])
        XCTAssertEqual(tcp.healthCheck?.kind, .tcp(port: 5432))
        XCTAssertEqual(tcp.healthCheck?.failureThreshold, ServiceDefinition.Defaults.probeFailureThreshold)
        let exec = try parse(["name": "a", "command": ["x"], "health_check": ["type": "exec", "command": ["/bin/true"]]])
        XCTAssertEqual(exec.healthCheck?.kind, .exec(command: ["/bin/true"]))
        for url in ["http://localhost:80/", "http://[::1]:9/x", "http://127.3.2.1/"] {
            XCTAssertNil(reason(["name": "a", "command": ["x"], "health_check": ["type": "http", "url": url]]), url)
        }
    }

    func testNames() {
        for good in ["a", "0", "web-1", "my_service", String(repeating: "a", count: 63)] {
            XCTAssertTrue(ServiceDefinition.isValidName(good), good)
        }
        for bad in ["", "-a", "_a", "A", "a/b", "..", "a..b", "a.b", "../etc", "a b", "é", String(repeating: "a", count: 64), "a\u{0}"] {
            XCTAssertFalse(ServiceDefinition.isValidName(bad), bad)
        }
    }

    func testBadInputIsRefusedNamingTheField() {
        let argv: [String: Any] = ["name": "a", "command": ["x"]]
        func with(_ k: String, _ v: Any) -> [String: Any] { var o = argv; o[k] = v; return o }
        let cases: [([String: Any], String)] = [
            ([:], "name"),
            (["name": "a"], "command"),
            (with("command", "python3 -m http.server"), "command"),
            (with("command", []), "command"),
            (with("command", [""]), "command"),
            (with("command", ["x", 1]), "command"),
            (with("name", "a/b"), "name"),
            (with("name", ".."), "name"),
            (with("name", 5), "name"),
            (with("unknown", 1), "unknown"),
            (with("working_directory", "relative/dir"), "working_directory"),
            (with("environment", ["1BAD": "x"]), "environment"),
            (with("environment", ["A=B": "x"]), "environment"),
            (with("environment", ["A": 1]), "environment.A"),
            (with("environment", ["A"]), "environment"),
            (with("user", "Root"), "user"),
            (with("user", "a;rm"), "user"),
            (with("port", 0), "port"),
            (with("port", 70000), "port"),
            (with("port", 80.5), "port"),
            (with("port", "80"), "port"),
            (with("port", true), "port"),
            (with("autostart", 1), "autostart"),
            (with("restart_policy", "sometimes"), "restart_policy"),
            (with("backoff_initial_seconds", 0), "backoff_initial_seconds"),
            (with("backoff_max_seconds", 0.2), "backoff_max_seconds"),
            (with("max_retries", -1), "max_retries"),
            (with("depends_on", "b"), "depends_on"),
            (with("depends_on", ["a"]), "depends_on"),
            (with("depends_on", ["b", "b"]), "depends_on"),
            (with("depends_on", ["../b"]), "depends_on"),
            (with("stop_signal", "SEGV"), "stop_signal"),
            (with("stop_timeout_seconds", 0), "stop_timeout_seconds"),
            (with("health_check", ["type": "http", "url": "http://10.0.0.1/"]), "health_check.url"),
            (with("health_check", ["type": "http", "url": "https://127.0.0.1/"]), "health_check.url"),
            (with("health_check", ["type": "http", "url": "http://user:pw@127.0.0.1/"]), "health_check.url"),
            (with("health_check", ["type": "http", "url": "http://127.0.0.1.evil.com/"]), "health_check.url"),
            (with("health_check", ["type": "http"]), "health_check.url"),
            (with("health_check", ["type": "tcp", "url": "http://127.0.0.1/"]), "health_check.url"),
            (with("health_check", ["type": "exec", "command": "/bin/true"]), "health_check.command"),
            (with("health_check", ["type": "icmp"]), "health_check.type"),
            (with("health_check", ["type": "tcp", "port": 1, "interval_seconds": 1, "timeout_seconds": 2]), "health_check.timeout_seconds"),
            (with("limits", ["cpu": 1]), "limits.cpu"),
            (with("limits", ["open_files": 1]), "limits.open_files"),
        ]
        for (body, field) in cases {
            XCTAssertEqual(reason(body)?.field, field, "\(body)")
        }
        XCTAssertEqual(reason(["command": ["x"], "name": "b"], name: "a")?.field, "name", "a PUT cannot rename")
        XCTAssertNil(reason(["command": ["x"]], name: "a"), "a PUT may omit the name")
    }

    func testHostChecks() throws {
        XCTAssertNoThrow(try parse(["name": "a", "command": ["x"], "working_directory": "/tmp"]).checkHost())
        for (k, v) in [("working_directory", "/no/such/dir"), ("working_directory", "/etc/hostname"),
                       ("user", "no-such-user-x"), ("group", "no-such-group-x")] {
            let d = try parse(["name": "a", "command": ["x"], k: v])
            XCTAssertThrowsError(try d.checkHost(), "\(k)=\(v)") { XCTAssertEqual(($0 as? ServiceDefinition.Invalid)?.field, k) }
        }
    }

    func testAccountDefaultsToCCUserUnderRootOnly() throws {
        let plain = try parse(["name": "a", "command": ["x"]])
        let named = try parse(["name": "a", "command": ["x"], "user": "daemon"])
        XCTAssertEqual(ServiceAccount.userName(plain, defaultUser: "control-center", supervisorIsRoot: true), "control-center")
        XCTAssertNil(ServiceAccount.userName(plain, defaultUser: "control-center", supervisorIsRoot: false),
                     "a supervisor that is not root starts services as itself")
        XCTAssertEqual(ServiceAccount.userName(named, defaultUser: "control-center", supervisorIsRoot: true), "daemon")
        XCTAssertEqual(ServiceAccount.userName(named, defaultUser: "control-center", supervisorIsRoot: false), "daemon")

        let nobody = try XCTUnwrap(getpwnam("nobody")).pointee
        let asDefault = try ServiceAccount.resolve(plain, defaultUser: "nobody", supervisorIsRoot: true)
        XCTAssertEqual([asDefault.uid, asDefault.gid], [nobody.pw_uid, nobody.pw_gid])
        XCTAssertEqual(asDefault.name, "nobody")
        XCTAssertTrue(asDefault.setIDs)
        XCTAssertTrue(asDefault.groups.contains(nobody.pw_gid))
        let own = try ServiceAccount.resolve(plain, defaultUser: "nobody", supervisorIsRoot: false)
        XCTAssertEqual(own.uid, getuid())
        XCTAssertFalse(own.setIDs)
        XCTAssertThrowsError(try ServiceAccount.resolve(plain, defaultUser: "no-such-user-x", supervisorIsRoot: true))
        XCTAssertThrowsError(try ServiceAccount.resolve(plain, defaultUser: "root", supervisorIsRoot: true), "root is never a default")

        XCTAssertTrue(try parse(["name": "a", "command": ["x"], "user": "root"]).runsAsRoot)
        XCTAssertFalse(named.runsAsRoot)
        XCTAssertFalse(plain.runsAsRoot, "without user a service runs as CC_USER, which is never uid 0")
    }

    func testGraph() {
        XCTAssertNil(ServiceGraph.problem([:]))
        XCTAssertNil(ServiceGraph.problem(["a": [], "b": ["a"], "c": ["a", "b"]]))
        XCTAssertEqual(ServiceGraph.problem(["b": ["a"]]), "b depends on a, which is not registered")
        XCTAssertEqual(ServiceGraph.problem(["a": ["b"], "b": ["a"]]), "dependency cycle: a -> b -> a")
        XCTAssertEqual(ServiceGraph.problem(["x": [], "a": ["b"], "b": ["c"], "c": ["b"]]), "dependency cycle: b -> c -> b")
    }
}
