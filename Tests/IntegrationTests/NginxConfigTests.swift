@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// `control-center nginx-config` output as nginx itself reads it: `nginx -t`
/// for default and other settings, and the server snippet inside an
/// operator's own `server {}`.
final class NginxConfigTests: XCTestCase {
    private var dirs: [String] = []

    override func tearDown() {
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        dirs = []
    }

    private func tempDir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("cc-ngx-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        dirs.append(d)
        return d
    }

    /// Runs a program to the end; (exit status, stdout + stderr).
    @discardableResult
    private func run(_ program: String, _ args: [String], env: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CC_") || $0.key == "CC_TEST_BINARY" }
        for (k, v) in env { e[k] = v }
        p.environment = e
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    private func renderAndTest(_ env: [String: String], bench: Bool = false) throws -> String {
        let state = try tempDir()
        var e = env
        e["CC_STATE_DIR"] = state
        let out = state + "/nginx"
        let (rc, text) = try run(TestServer.binary, ["nginx-config", "--output", out] + (bench ? ["--bench"] : []), env: e)
        XCTAssertEqual(rc, 0, text)
        let (trc, ttext) = try run("/usr/sbin/nginx", ["-t", "-p", out, "-c", out + "/nginx.conf"])
        XCTAssertEqual(trc, 0, "nginx -t for \(env): \(ttext)")
        return out
    }

    func testRenderedConfigPassesNginxTest() throws {
        _ = try renderAndTest([:])
        _ = try renderAndTest([:], bench: true)
        _ = try renderAndTest(["CC_LISTEN": "127.0.0.1:9101", "CC_STORAGE_LISTEN": "[::1]:9102", "CC_HTTP_ADDR": "::1",
                               "CC_TRUSTED_PROXIES": "10.0.0.0/8,2001:db8::/32", "CC_RATE_LIMIT_EXEMPT": "",
                               "CC_ALLOWED_HOSTS": "cc.example.org,*.example.net,[2001:db8::1]", "CC_NGINX_VIEWS": "false",
                               "CC_NGINX_KEEPALIVE": "4", "CC_REQUEST_TIMEOUT": "2.5", "CC_RATE_BURST": "0",
                               "CC_ACCESS_LOG": "off", "CC_NGINX_WORKERS": "1"])
        // The same settings from a config file.
        let file = try tempDir() + "/cc.conf"
        try "CC_HTTP_ADDR=0.0.0.0\nCC_ALLOWED_HOSTS=monitor.example.org\nCC_RATE_LIMIT=5\nCC_STORAGE_WORKERS=0\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let out = try renderAndTest(["CC_CONFIG_FILE": file])
        let conf = try String(contentsOfFile: out + "/nginx.conf", encoding: .utf8)
        XCTAssertTrue(conf.contains("listen 0.0.0.0:8080 "), "the file's listen address")
        let http = try String(contentsOfFile: out + "/control-center-http.conf", encoding: .utf8)
        XCTAssertTrue(http.contains("rate=5r/s"))
    }

    func testBadSettingsAreRefusedBeforeAnythingIsWritten() throws {
        let state = try tempDir()
        let (rc, text) = try run(TestServer.binary, ["nginx-config"], env: ["CC_STATE_DIR": state, "CC_TRUSTED_PROXIES": "10.0.0.0/40"])
        XCTAssertEqual(rc, 2)
        XCTAssertTrue(text.contains("CC_TRUSTED_PROXIES"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: state + "/nginx"))
    }

    /// An operator's nginx with its own locations, including the rendered
    /// http part and server snippet, in front of a real pool.
    func testServerSnippetWorksInsideAnExistingServer() throws {
        let s = try TestServer()
        defer { s.stop() }
        // One nginx at a time binds the live channels' private sockets.
        s.stopNginx()
        let rendered = s.stateDir + "/nginx"
        let mine = try tempDir()
        try FileManager.default.createDirectory(atPath: mine + "/tmp", withIntermediateDirectories: true)
        let port = TestServer.freePort()
        let load = try String(contentsOfFile: rendered + "/nginx.conf", encoding: .utf8)
            .split(separator: "\n").filter { $0.hasPrefix("load_module") || $0.hasPrefix("user ") }.joined(separator: "\n")
        try """
            \(load)
            pid \(mine)/nginx.pid;
            error_log \(mine)/error.log warn;
            daemon off;
            events { worker_connections 64; }
            http {
                access_log off;
                client_body_temp_path \(mine)/tmp/body;
                proxy_temp_path \(mine)/tmp/proxy;
                fastcgi_temp_path \(mine)/tmp/fastcgi;
                uwsgi_temp_path \(mine)/tmp/uwsgi;
                scgi_temp_path \(mine)/tmp/scgi;
                include \(rendered)/control-center-http.conf;
                server {
                    listen 127.0.0.1:\(port);
                    server_name localhost;
                    location = /mine { default_type text/plain; return 200 "mine"; }
                    location = /mine-down { return 503; }
                    include \(rendered)/control-center.conf;
                }
            }
            """.write(toFile: mine + "/nginx.conf", atomically: true, encoding: .utf8)
        let n = Process()
        n.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        n.arguments = ["-p", mine, "-c", mine + "/nginx.conf"]
        n.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try n.run()
        defer {
            kill(n.processIdentifier, SIGQUIT)
            n.waitUntilExit()
        }
        XCTAssertTrue(waitUntil(10) { (try? HTTPClient.request(port: port, path: "/health").status) == 200 },
                      (try? String(contentsOfFile: mine + "/error.log", encoding: .utf8)) ?? "")
        let own = try HTTPClient.request(port: port, path: "/mine")
        XCTAssertEqual(own.status, 200)
        XCTAssertEqual(own.text, "mine")
        let health = try HTTPClient.request(port: port, path: "/health")
        XCTAssertEqual(health.json?["status"] as? String, "healthy")
        // The snippet's error pages cover the operator's locations too.
        let down = try HTTPClient.request(port: port, path: "/mine-down")
        XCTAssertEqual(down.status, 503)
        XCTAssertEqual(down.errorCode, "service_unavailable")
        XCTAssertEqual(down.headers["retry-after"], "1")
        XCTAssertEqual(down.headers["x-content-type-options"], "nosniff")
        XCTAssertEqual(down.headers["content-type"], "application/json")
        // The live channel through the operator's server: the collector publishes to it.
        XCTAssertTrue(waitUntil(5) {
            (try? HTTPClient.request(port: port, path: "/api/stream/system").json?["type"] as? String) == "system_stats"
        }, "a long-poll gets the newest live message")
    }
}
