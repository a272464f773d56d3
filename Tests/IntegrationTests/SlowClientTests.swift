import Foundation
import Glibc
import XCTest

/// Local users can reach the pool's socket without nginx. A client that
/// sends a request one byte at a time must not hold a worker for longer than
/// the read deadline, however often it sends.
final class SlowClientTests: XCTestCase {
    func testTricklingClientsOnEveryWorkerCannotStarveHealth() throws {
        let s = try TestServer(env: ["CC_WORKERS": "2", "CC_REQUEST_TIMEOUT": "2"])
        let workers = s.poolWorkers("main")
        XCTAssertEqual(workers.count, 2)
        let trickle = FastCGITrickler(socketPath: s.stateDir + "/run/fcgi.sock", clients: workers.count,
                                      byteEvery: 0.5)
        defer { trickle.finish() }
        usleep(600_000) // every main worker is reading a trickled request
        XCTAssertGreaterThanOrEqual(trickle.connections, workers.count)

        var slowest = 0.0
        let until = Date().addingTimeInterval(6)
        while Date() < until {
            let started = Date()
            let r = try? s.get("/health", timeout: 3.5)
            let took = Date().timeIntervalSince(started)
            slowest = max(slowest, took)
            XCTAssertEqual(r?.status, 200, "health answered within the request timeout + 1 s (took \(took) s)")
            usleep(300_000)
        }
        print("slow clients: slowest /health \(Int(slowest * 1000)) ms, trickled connections \(trickle.connections)")
        XCTAssertGreaterThan(trickle.connections, workers.count, "workers dropped trickled requests and accepted again")
        XCTAssertTrue(s.log().contains("request not read within the read deadline; connection dropped"))
        XCTAssertEqual(s.poolWorkers("main"), workers, "the workers gave up on the clients; none was killed")
        XCTAssertFalse(s.log().contains("request timeout; killing worker"))
    }

    func testBodyShorterThanDeclaredNeverReachesAHandler() throws {
        // A direct client declares 10 bytes, sends 3 and ends stdin: the
        // handler must not run on a truncated body as if it were whole.
        let s = try TestServer(env: ["CC_WORKERS": "1", "CC_TEST_ROUTES": "true"])
        let fd = FastCGITrickler.connect(s.stateDir + "/run/fcgi.sock")
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func record(_ type: UInt8, _ content: [UInt8]) -> [UInt8] {
            [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
        }
        func param(_ name: String, _ value: String) -> [UInt8] {
            [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
        }
        let params = param("REQUEST_METHOD", "POST") + param("DOCUMENT_URI", "/api/test/echo")
            + param("CONTENT_LENGTH", "10") + param("CONTENT_TYPE", "application/octet-stream")
        let request = record(1, [0, 1, 0, 0, 0, 0, 0, 0]) + record(4, params) + record(4, [])
            + record(5, [7, 7, 7]) + record(5, [])
        XCTAssertEqual(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }, request.count)
        var answer: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            answer += buf[0..<n]
        }
        XCTAssertFalse(String(decoding: answer, as: UTF8.self).contains("bytes"), "the echo handler did not run")
        XCTAssertTrue(waitUntil(3) { s.log().contains("request body incomplete; connection dropped") })
        XCTAssertEqual(try s.get("/health").status, 200)
    }
}

/// Threads that each keep one FastCGI connection open to a unix socket and
/// send an endless request one byte at a time, reconnecting when the server
/// drops them.
final class FastCGITrickler: @unchecked Sendable {
    private let lock = NSLock()
    private var stop = false
    private var opened = 0
    private let group = DispatchGroup()

    var connections: Int { lock.withLock { opened } }

    /// A BEGIN_REQUEST record (responder) and the header of a PARAMS record
    /// of 65535 bytes; the trickle then sends its content, which never ends.
    static let requestHead: [UInt8] = [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                       1, 4, 0, 1, 0xFF, 0xFF, 0, 0]

    init(socketPath: String, clients: Int, byteEvery seconds: Double) {
        for _ in 0..<clients {
            group.enter()
            let t = Thread { [self] in
                while !lock.withLock({ stop }) {
                    let fd = Self.connect(socketPath)
                    if fd < 0 { usleep(50_000); continue }
                    lock.withLock { opened += 1 }
                    var i = 0
                    while !lock.withLock({ stop }) {
                        var byte = i < Self.requestHead.count ? Self.requestHead[i] : UInt8(ascii: "a")
                        if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) != 1 { break } // dropped by the worker
                        i += 1
                        usleep(useconds_t(seconds * 1e6))
                    }
                    close(fd)
                }
                group.leave()
            }
            t.start()
        }
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8CString)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() where i < raw.count { raw[i] = UInt8(bitPattern: b) }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 { close(fd); return -1 }
        return fd
    }

    func finish() {
        lock.withLock { stop = true }
        group.wait()
    }
}
