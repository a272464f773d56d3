import ControlCenterCore
import Foundation
import Glibc

/// A real stack for integration tests: the master (with its pools) and nginx,
/// rendered by `control-center nginx-config`, on a free port with a
/// fresh state directory. Every test that needs one starts its own.
final class TestServer {
    let stateDir: String
    let port: Int
    let env: [String: String]
    private(set) var master: Process?
    private var nginx: Process?
    var nginxPid: pid_t { nginx?.processIdentifier ?? 0 }

    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The debug binary `swift build` puts beside the test bundle, unless
    /// CC_TEST_BINARY names another.
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["CC_TEST_BINARY"] { return b }
        let dir = URL(fileURLWithPath: CommandLine.arguments.first { $0.hasSuffix(".xctest") } ?? CommandLine.arguments[0])
            .deletingLastPathComponent()
        return dir.appendingPathComponent("control-center").path
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// A CC_STATE_DIR in `extra` is used as it is (and removed at the end).
    init(env extra: [String: String] = [:]) throws {
        let dir = extra["CC_STATE_DIR"]
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        stateDir = dir
        port = Self.freePort()
        var env = ProcessInfo.processInfo.environment
        env["CC_STATE_DIR"] = dir
        env["CC_HTTP_PORT"] = String(port)
        env["CC_WORKERS"] = "2"
        env["CC_STORAGE_WORKERS"] = "2"
        env["CC_LOG_FILE"] = dir + "/master.log"
        env["CC_ACCESS_LOG"] = dir + "/access.log"
        env["SWIFT_BACKTRACE"] = "enable=no"
        // The pool tests count the master's children; the service tests turn it on.
        env["CC_SUPERVISOR"] = "false"
        for (k, v) in extra { env[k] = v }
        self.env = env
        Self.letWorkersWriteCoverage
        try start()
    }

    /// Under `swift test --enable-code-coverage` as root, the masters the
    /// tests start drop their request workers to CC_USER, whose coverage
    /// profiles go to the directory of LLVM_PROFILE_FILE: swift test makes
    /// that directory afresh (root's, 0755) when it starts, so the grant is
    /// made here, once, after it did: read-write for CC_USER on what is
    /// there and, by a default ACL, on every profile made later (by root's
    /// processes too, which workers then add to).
    static let letWorkersWriteCoverage: Void = {
        guard geteuid() == 0, let file = ProcessInfo.processInfo.environment["LLVM_PROFILE_FILE"],
              let user = try? Config.load().user, FileManager.default.isExecutableFile(atPath: "/usr/bin/setfacl") else { return }
        let dir = (file as NSString).deletingLastPathComponent
        for args in [["-R", "-m", "u:\(user):rwX", dir], ["-d", "-m", "u:\(user):rwx", dir]] {
            if let r = try? ExternalTool.capture("/usr/bin/setfacl", args), r.status != 0 {
                print("coverage of dropped workers is lost: setfacl \(args.joined(separator: " ")): \(r.output)")
            }
        }
    }()

    /// Starts the stack; after `stop()`, starts it again on the same state directory and port.
    func start() throws {
        let render = Process()
        render.executableURL = URL(fileURLWithPath: Self.binary)
        render.arguments = ["nginx-config", "--output", stateDir + "/nginx"]
        render.environment = env
        render.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try render.run()
        render.waitUntilExit()
        guard render.terminationStatus == 0 else { throw TestServerError.setup("control-center nginx-config failed") }

        let m = Process()
        m.executableURL = URL(fileURLWithPath: Self.binary)
        m.arguments = ["serve"]
        m.environment = env
        try m.run()
        master = m
        guard waitUntil(20, { FileManager.default.fileExists(atPath: self.stateDir + "/run/fcgi.sock") }) else {
            stop()
            throw TestServerError.setup("master did not bind its socket: \(log())")
        }
        let n = Process()
        n.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        n.arguments = ["-p", stateDir + "/nginx", "-c", stateDir + "/nginx/nginx.conf"]
        n.environment = env
        n.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try n.run()
        nginx = n
        guard waitUntil(15, { (try? self.get("/health").status) == 200 }) else {
            stop()
            throw TestServerError.setup("nginx/pool did not answer /health: \(log())")
        }
        // Tests read the pool through the workers' status files, so the pool
        // counts as up only once every worker has written its own file (a
        // spawned child that has not reached its accept loop has none yet).
        guard waitUntil(20, { self.poolIsFull() }) else {
            stop()
            throw TestServerError.setup("pool did not reach full size: \(log())")
        }
    }

    var expectedWorkers: (main: Int, storage: Int) {
        (Int(env["CC_WORKERS"] ?? "2") ?? 2, Int(env["CC_STORAGE_WORKERS"] ?? "2") ?? 2)
    }

    /// Both pools at their configured size, judged from status files of live children.
    func poolIsFull() -> Bool {
        let want = expectedWorkers
        return poolWorkers("main").count >= want.main && poolWorkers("storage").count >= want.storage
    }

    /// Stops only nginx (a test that runs its own nginx over the same files).
    func stopNginx() {
        guard let n = nginx else { return }
        if n.isRunning { kill(n.processIdentifier, SIGQUIT) }
        n.waitUntilExit()
        nginx = nil
    }

    func stop() {
        if let n = nginx, n.isRunning {
            kill(n.processIdentifier, SIGQUIT)
        }
        if let m = master, m.isRunning {
            // Graceful, so workers exit normally and write their coverage data.
            kill(m.processIdentifier, SIGQUIT)
        }
        _ = waitUntil(10) { !(self.nginx?.isRunning ?? false) && !(self.master?.isRunning ?? false) }
        if let n = nginx, n.isRunning { kill(n.processIdentifier, SIGKILL) }
        if let m = master, m.isRunning { kill(m.processIdentifier, SIGKILL) }
        nginx?.waitUntilExit()
        master?.waitUntilExit()
        nginx = nil
        master = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    var masterPid: pid_t { master?.processIdentifier ?? 0 }

    func signalMaster(_ sig: Int32) { kill(masterPid, sig) }

    func get(_ path: String, headers: [String: String] = [:], timeout: Double = 15,
             source: String? = nil) throws -> HTTPResponse {
        try HTTPClient.request(port: port, path: path, headers: headers, timeout: timeout, source: source)
    }

    /// `source`: the client's own address in 127.0.0.0/8 (default 127.0.0.1).
    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = [],
                 timeout: Double = 15, source: String? = nil) throws -> HTTPResponse {
        try HTTPClient.request(port: port, method: method, path: path, headers: headers, body: body,
                               timeout: timeout, source: source)
    }

    /// Live children of the master, read from /proc (not from the server).
    func workerPids() -> Set<pid_t> {
        Self.children(of: masterPid)
    }

    static func children(of parent: pid_t) -> Set<pid_t> {
        var out = Set<pid_t>()
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return out }
        for n in names {
            guard let pid = Int32(n), let stat = try? String(contentsOfFile: "/proc/\(n)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if fields.count > 1, fields[0] != "Z", Int32(fields[1]) == parent { out.insert(pid) }
        }
        return out
    }

    /// Workers of one pool, from their status files.
    func poolWorkers(_ pool: String = "main") -> Set<pid_t> {
        Set(WorkerStatusDirectory.readAll(directory: stateDir + "/run/workers").filter { $0.pool == pool }.map(\.pid))
            .intersection(workerPids())
    }

    func log() -> String {
        (try? String(contentsOfFile: stateDir + "/master.log", encoding: .utf8)) ?? ""
    }

    func accessLog() -> String {
        (try? String(contentsOfFile: stateDir + "/access.log", encoding: .utf8)) ?? ""
    }
}

enum TestServerError: Error { case setup(String) }

@discardableResult
func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// Runs `clients` threads that each loop `body` until `stop` is set, and
/// counts outcomes. Used to put load on the pool while a test disturbs it.
final class LoadDriver: @unchecked Sendable {
    private let lock = NSLock()
    private var _ok = 0
    private var _failures: [String] = []
    private var _stop = false
    private var threads: [Thread] = []
    private let group = DispatchGroup()

    var ok: Int { lock.withLock { _ok } }
    var failures: [String] { lock.withLock { _failures } }

    init(clients: Int, _ body: @escaping @Sendable () throws -> HTTPResponse, accept: @escaping @Sendable (HTTPResponse) -> Bool = { $0.status == 200 }) {
        for _ in 0..<clients {
            group.enter()
            let t = Thread { [self] in
                while !lock.withLock({ _stop }) {
                    do {
                        let r = try body()
                        lock.withLock {
                            if accept(r) { _ok += 1 } else { _failures.append("status \(r.status): \(r.text.prefix(200))") }
                        }
                    } catch {
                        lock.withLock { _failures.append("\(error)") }
                    }
                }
                group.leave()
            }
            t.stackSize = 256 << 10
            threads.append(t)
            t.start()
        }
    }

    func finish() {
        lock.withLock { _stop = true }
        group.wait()
    }
}
