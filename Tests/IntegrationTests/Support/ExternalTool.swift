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
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = FileHandle(forWritingAtPath: log)
        p.standardOutput = out
        p.standardError = out
        if let stdin {
            let input = "\(log).in"
            FileManager.default.createFile(atPath: input, contents: Data(stdin))
            p.standardInput = FileHandle(forReadingAtPath: input)
        }
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// Starts a long-running tool; the caller terminates it.
    static func start(_ tool: String, _ args: [String], logDir: String) throws -> Process {
        let log = "\(logDir)/\(URL(fileURLWithPath: tool).lastPathComponent).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = FileHandle(forWritingAtPath: log)
        p.standardOutput = out
        p.standardError = out
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
