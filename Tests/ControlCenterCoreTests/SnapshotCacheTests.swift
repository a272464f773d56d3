import Foundation
import Glibc
import XCTest
@testable import ControlCenterCore

/// A worker's view for tests: its own state dir, the system routes, and a
/// context as the FastCGI loop would make it.
final class SystemHarness {
    let dir: String
    let context: WorkerContext
    var router = Router()
    /// Sent as a Bearer token on every request when signed in.
    var token: String?

    /// `signedIn`: a fresh SQLite database and its first admin's token (who
    /// is also a viewer), for the fields anonymous reads do not get.
    init(_ settings: [String: String] = [:], signedIn: Bool = false) throws {
        dir = NSTemporaryDirectory() + "cc-snap-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var values = settings
        values["CC_STATE_DIR"] = dir
        if signedIn {
            values["CC_JWT_SECRET"] = StorageHarness.secret
            values["CC_DATABASE_URL"] = "sqlite://\(dir)/test.db"
        }
        let config = try Config(values: values)
        context = WorkerContext(config: config, log: Log(path: "off"))
        SystemRoutes.register(&router)
        if signedIn {
            PasswordHasher.useMinimalCostForTests()
            AuthRoutes.register(&router)
            let file = try XCTUnwrap(try StorageSetup.prepare(config, log: Log(path: "off")).adminPasswordFile)
            let generated = try StorageHarness.firstAdminPassword(file)
            let first = try post("/api/auth/login", #"{"username":"admin","password":"\#(generated)"}"#)
            // The generated admin must change its password before anything else.
            token = try post("/api/auth/change-password",
                             #"{"current_password":"\#(generated)","new_password":"\#(StorageHarness.adminPassword)"}"#,
                             token: first)
        }
    }

    /// POSTs JSON and returns the answer's `access_token`.
    private func post(_ path: String, _ json: String, token: String? = nil) throws -> String {
        var headers = ["content-type": "application/json"]
        if let token { headers["authorization"] = "Bearer \(token)" }
        let r = router.handle(Request(method: "POST", path: path, rawQuery: "", headers: headers, body: Array(json.utf8),
                                      requestID: "test", remoteAddress: "10.0.0.1"), context: context)
        let o = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
        return try XCTUnwrap(o?["access_token"] as? String, String(decoding: r.body, as: UTF8.self))
    }

    deinit {
        if token != nil { StorageService.shared(context).close() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    var cache: SnapshotCache { SystemRoutes.cache(context) }

    /// The harness plays the collector: before each request it refreshes the
    /// route's snapshot if its copy is older than the TTL, as the collector
    /// would have by then (every TTL/2). Off: requests find only what a test wrote.
    var collects = true
    private var collected: [SnapshotKind: Int64] = [:]

    private func collect(for path: String) {
        let kinds: [(String, SnapshotKind)] = [("/api/system/processes", .processes), ("/api/system/connections", .connections),
                                               ("/api/system/ports", .connections), ("/api/system/network", .network),
                                               ("/api/system/stats", .stats)]
        guard collects, let kind = kinds.first(where: { path.hasPrefix($0.0) })?.1 else { return }
        let now = Clock.wallMillis()
        if let last = collected[kind], now - last < Int64(kind.ttl(context.config) * 1000) { return }
        if (try? cache.forceRefresh(kind)) != nil { collected[kind] = now }
    }

    func get(_ path: String, _ query: String = "") -> Response {
        collect(for: path)
        let headers = token.map { ["authorization": "Bearer \($0)"] } ?? [:]
        return router.handle(Request(method: "GET", path: path, rawQuery: query, headers: headers, requestID: "test"),
                             context: context)
    }

    func json(_ path: String, _ query: String = "", file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = get(path, query)
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self), file: file, line: line)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any], file: file, line: line)
    }
}

/// Runs a command and returns its standard output.
func runTool(_ path: String, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// A child process the test owns; killed and reaped on deinit.
final class Child {
    let process = Process()
    var pid: Int32 { process.processIdentifier }

    init(_ script: String) throws {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
    }

    func kill(_ sig: Int32 = SIGKILL) {
        if process.isRunning { Glibc.kill(pid, sig) }
        process.waitUntilExit()
    }

    deinit { kill() }
}

final class SnapshotCacheTests: XCTestCase {
    func testFreshCopyIsServedWithoutAnotherRefresh() throws {
        let h = try SystemHarness(["CC_CACHE_TTL_STATS": "30"])
        let written = try h.cache.forceRefresh(.stats)
        let worker = SnapshotCache(config: h.context.config)
        let a = try worker.snapshot(.stats)
        let b = try worker.snapshot(.stats)
        XCTAssertEqual(a.takenAtMillis, written.takenAtMillis)
        XCTAssertTrue(a === b, "the parsed copy is kept in memory")
        XCTAssertEqual(h.cache.counters(.stats).refreshes, 1)
    }

    /// Only the collector refreshes: a stale copy is served as it is, and
    /// a newer file replaces the worker's parsed copy at once.
    func testStaleCopyIsServedUntilTheCollectorWritesANewOne() throws {
        let h = try SystemHarness(["CC_CACHE_TTL_STATS": "0.05"])
        let first = try h.cache.forceRefresh(.stats)
        let worker = SnapshotCache(config: h.context.config)
        usleep(100_000)
        XCTAssertEqual(try worker.snapshot(.stats).takenAtMillis, first.takenAtMillis, "stale, and no refresh of its own")
        XCTAssertEqual(h.cache.counters(.stats).refreshes, 1)
        let next = try h.cache.forceRefresh(.stats)
        XCTAssertEqual(try worker.snapshot(.stats).takenAtMillis, next.takenAtMillis)
    }

    func testCorruptFilesAreIgnoredAndRebuilt() throws {
        let h = try SystemHarness(["CC_CACHE_TTL_NETWORK": "60"])
        _ = try h.cache.forceRefresh(.network)
        let path = SnapshotKind.network.snapPath(h.cache.directory)
        let good = try XCTUnwrap(AtomicFile.read(path))
        var versioned = good
        versioned[8] = 99 // format version
        var flipped = good
        flipped[good.count - 3] ^= 0x40
        var otherKind = good
        otherKind[12] = UInt8(SnapshotKind.stats.code)
        let damaged: [(String, [UInt8])] = [
            ("garbage", Array("not a snapshot at all, just text".utf8)),
            ("empty", []),
            ("truncated", Array(good.prefix(good.count / 2))),
            ("header only", Array(good.prefix(SnapshotFile.headerSize))),
            ("flipped bit", flipped),
            ("unknown version", versioned),
            ("wrong kind", otherKind),
        ]
        var expected = 1
        for (name, bytes) in damaged {
            XCTAssertTrue(AtomicFile.write(bytes, to: path))
            XCTAssertNil(LoadedSnapshot.read(path: path, kind: .network), "\(name) must not validate")
            _ = try h.cache.forceRefresh(.network)
            expected += 1
            XCTAssertEqual(h.cache.counters(.network).refreshes, expected, "\(name) is rebuilt")
            XCTAssertNotNil(LoadedSnapshot.read(path: path, kind: .network), "\(name): the rebuilt file is valid")
        }
        let r = h.get("/api/system/network")
        XCTAssertEqual(r.status, 200)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(r.body)))
    }

    /// A refresher killed between write and rename (simulated by a process
    /// that takes the lock, leaves a half temp file and dies by SIGKILL).
    func testRefresherKilledMidWriteLeavesTheCacheReadable() throws {
        let h = try SystemHarness(["CC_CACHE_TTL_STATS": "0.2"])
        let before = try h.cache.forceRefresh(.stats)
        let dir = h.cache.directory
        let child = try Child("""
            exec 9>'\(dir)/stats.lock'; flock -x 9
            head -c 300 '\(dir)/stats.snap' > '\(dir)/stats.snap.tmp.424242'
            kill -9 $$
            """)
        child.process.waitUntilExit()
        XCTAssertEqual(child.process.terminationReason, .uncaughtSignal)
        let still = try XCTUnwrap(LoadedSnapshot.read(path: SnapshotKind.stats.snapPath(dir), kind: .stats))
        XCTAssertEqual(still.takenAtMillis, before.takenAtMillis, "the published file is untouched")
        let after = try h.cache.forceRefresh(.stats) // the dead holder's lock is gone
        XCTAssertGreaterThan(after.takenAtMillis, before.takenAtMillis)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/stats.snap.tmp.424242"), "orphan temp removed")
    }

    func testFileNamesComeOnlyFromKinds() throws {
        let h = try SystemHarness()
        XCTAssertEqual(h.get("/api/system/processes", "sort=../../etc/passwd").status, 400)
        _ = h.get("/api/system/connections", "proto=../x")
        let names = try FileManager.default.contentsOfDirectory(atPath: h.cache.directory).sorted()
        for n in names {
            XCTAssertTrue(SnapshotKind.allCases.contains { n.hasPrefix($0.rawValue + ".") }, n)
        }
    }

    func testCacheDirectoryIsPrivate() throws {
        let h = try SystemHarness()
        _ = try h.cache.forceRefresh(.stats)
        var st = stat()
        XCTAssertEqual(stat(h.cache.directory, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
