import Foundation
import Glibc
import XCTest

/// deploy/nginx-control-center.conf, the conf.d example, as nginx reads it
/// at http level with freshly rendered files where it expects them
/// (/etc/nginx/control-center, here a temporary directory).
final class NginxDropInTests: XCTestCase {
    func testConfDDropInPassesNginxTest() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-dropin-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CC_") }
        env["CC_STATE_DIR"] = dir + "/state"
        let render = Process()
        render.executableURL = URL(fileURLWithPath: TestServer.binary)
        render.arguments = ["nginx-config", "--output", dir + "/control-center"]
        render.environment = env
        render.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try render.run()
        render.waitUntilExit()
        XCTAssertEqual(render.terminationStatus, 0)

        let dropIn = try String(contentsOfFile: TestServer.repoRoot + "/deploy/nginx-control-center.conf", encoding: .utf8)
        XCTAssertTrue(dropIn.contains("include /etc/nginx/control-center/control-center-http.conf;"))
        XCTAssertTrue(dropIn.contains("include /etc/nginx/control-center/control-center.conf;"))
        let port = TestServer.freePort()
        try dropIn.replacingOccurrences(of: "/etc/nginx/control-center", with: dir + "/control-center")
            .replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(port);")
            .replacingOccurrences(of: "listen [::]:80;", with: "")
            .write(toFile: dir + "/control-center.conf", atomically: true, encoding: .utf8)
        // What Debian's nginx.conf gives a conf.d file: the modules it enables, and http {}.
        let load = try String(contentsOfFile: dir + "/control-center/nginx.conf", encoding: .utf8)
            .split(separator: "\n").filter { $0.hasPrefix("load_module") }.joined(separator: "\n")
        try """
            \(load)
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log warn;
            events { worker_connections 64; }
            http {
                client_body_temp_path \(dir)/tmp/body;
                proxy_temp_path \(dir)/tmp/proxy;
                fastcgi_temp_path \(dir)/tmp/fastcgi;
                uwsgi_temp_path \(dir)/tmp/uwsgi;
                scgi_temp_path \(dir)/tmp/scgi;
                include \(dir)/control-center.conf;
            }
            """.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let (status, text) = try ExternalTool.capture("/usr/sbin/nginx", ["-t", "-p", dir, "-c", dir + "/nginx.conf"])
        XCTAssertEqual(status, 0, text)
    }
}
