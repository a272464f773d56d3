import Foundation
import Glibc

/// Runs a tool (promtool, prometheus, node_exporter) with its output kept in
/// a file, never on the test runner's stdout (Scripts/lib/test-report).
enum ExternalTool {
    static func path(_ name: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        return nil
    }

    /// Runs to completion; returns the exit status and what it printed.
    static func run(_ tool: String, _ args: [String], stdin: [UInt8]? = nil, logDir: String) throws -> (Int32, String) {
        let log = "\(logDir)/\(URL(fileURLWithPath: tool).lastPathComponent)-\(UUID().uuidString.prefix(6)).log"
        var input: FileHandle?
        if let stdin {
            guard FileManager.default.createFile(atPath: "\(log).in", contents: Data(stdin)) else { throw CocoaError(.fileWriteUnknown) }
            input = FileHandle(forReadingAtPath: "\(log).in")
        }
        let p = try launch(tool, args, log: log, stdin: input)
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// Starts a long-running tool; the caller terminates it.
    static func start(_ tool: String, _ args: [String], logDir: String) throws -> Process {
        try launch(tool, args, log: "\(logDir)/\(URL(fileURLWithPath: tool).lastPathComponent).log", stdin: nil)
    }

    /// Runs a short command to completion with its output captured (for
    /// commands whose few lines the test asserts on): exit status and text.
    static func capture(_ tool: String, _ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// Starts `tool` with stdout and stderr in the file `log`.
    private static func launch(_ tool: String, _ args: [String], log: String, stdin: FileHandle?) throws -> Process {
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = FileHandle(forWritingAtPath: log)
        p.standardOutput = out
        p.standardError = out
        if let stdin { p.standardInput = stdin }
        try p.run()
        return p
    }

    static func stop(_ p: Process) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        if !waitUntil(5, { !p.isRunning }) { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }
}

/// One parsed exposition page: series (`name{labels}`) to value.
struct Scrape {
    var series: [String: Double] = [:]
    var text = ""

    init(_ text: String) {
        self.text = text
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            series[String(line[..<space])] = v
        }
    }

    /// Sum over every series of `name` whose labels contain all of `match`
    /// (each `key="value"`).
    func sum(_ name: String, _ match: [String] = []) -> Double {
        series.filter { k, _ in
            (k == name || k.hasPrefix(name + "{")) && match.allSatisfy { k.contains($0) }
        }.values.reduce(0, +)
    }

    func names() -> Set<String> { Set(series.keys.map { String($0.prefix { $0 != "{" }) }) }
}

/// A Prometheus server (Debian package) on a free loopback port, scraping
/// `targets` every second, with `ruleFiles` loaded; its query API for tests.
final class PrometheusServer {
    let port: Int
    private let process: Process

    init(job: String, targets: [String], ruleFiles: [String], directory: String) throws {
        guard let binary = ExternalTool.path("prometheus") else {
            throw TestServerError.setup("prometheus not installed (Debian package prometheus; Scripts/test installs it)")
        }
        port = TestServer.freePort()
        let config = """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            rule_files: [\(ruleFiles.map { "'\($0)'" }.joined(separator: ", "))]
            scrape_configs:
              - job_name: \(job)
                static_configs: [{targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))]}]
            """
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try config.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        process = try ExternalTool.start(binary, ["--config.file=\(directory)/prometheus.yml",
                                                  "--storage.tsdb.path=\(directory)/data",
                                                  "--web.listen-address=127.0.0.1:\(port)"], logDir: directory)
        let p = port
        guard waitUntil(20, { (try? HTTPClient.request(port: p, path: "/-/ready", timeout: 2).status) == 200 }) else {
            stop()
            throw TestServerError.setup("prometheus did not become ready: "
                + ((try? String(contentsOfFile: directory + "/prometheus.log", encoding: .utf8)) ?? ""))
        }
    }

    func stop() { ExternalTool.stop(process) }
    deinit { stop() }

    /// `/api/v1/query`: the whole answer (status, data or error).
    func query(_ promQL: String) throws -> [String: Any] {
        let encoded = promQL.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let r = try HTTPClient.request(port: port, path: "/api/v1/query?query=\(encoded)", timeout: 10)
        return r.json ?? ["status": "error", "error": "status \(r.status): \(r.text.prefix(300))"]
    }

    /// The instant vector's samples as (labels, value); empty when none.
    func vector(_ promQL: String) throws -> [([String: String], Double)] {
        let data = try query(promQL)["data"] as? [String: Any]
        return (data?["result"] as? [[String: Any]] ?? []).compactMap { row in
            guard let v = row["value"] as? [Any], v.count == 2, let s = v[1] as? String, let d = Double(s) else { return nil }
            return ((row["metric"] as? [String: String]) ?? [:], d)
        }
    }

    func rules() throws -> [[String: Any]] {
        let r = try HTTPClient.request(port: port, path: "/api/v1/rules", timeout: 10)
        let groups = ((r.json?["data"] as? [String: Any])?["groups"] as? [[String: Any]]) ?? []
        return groups.flatMap { ($0["rules"] as? [[String: Any]]) ?? [] }
    }
}
