import Foundation
import Glibc
import XCTest
@testable import ControlCenterCore

/// Ports, connections, interfaces, memory and disk against the kernel's own
/// files and procps/coreutils on the same machine.
final class SystemNetworkTests: XCTestCase {
    /// A socket of this process: TCP listening or UDP bound, on 127.0.0.1.
    func openSocket(udp: Bool) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(rc, 0)
        if !udp { XCTAssertEqual(listen(fd, 16), 0) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    func testOwnListeningSocketsShowInPortsAndConnections() throws {
        let tcp = try openSocket(udp: false), udp = try openSocket(udp: true)
        defer { close(tcp.fd); close(udp.fd) }
        let h = try SystemHarness(signedIn: true)
        let me = Int(getpid())
        let myName = try String(contentsOfFile: "/proc/self/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        for (s, proto, status) in [(tcp, "tcp", "LISTEN"), (udp, "udp", "NONE")] {
            let ports = try h.json("/api/system/ports", "from=\(s.port)&to=\(s.port)")
            let items = try XCTUnwrap(ports["ports"] as? [[String: Any]])
            let mine = try XCTUnwrap(items.first { $0["proto"] as? String == proto }, "\(proto) port \(s.port) in /ports: \(items)")
            XCTAssertEqual(mine["port"] as? Int, s.port)
            XCTAssertEqual(mine["pid"] as? Int, me)
            XCTAssertEqual(mine["process_name"] as? String, myName)
            XCTAssertEqual(mine["status"] as? String, status)
            XCTAssertEqual(mine["address"] as? String, "127.0.0.1")
            if getuid() == 0 { XCTAssertEqual(mine["user"] as? String, "root") }
            let conns = try h.json("/api/system/connections", "proto=\(proto)&port=\(s.port)&pid=\(me)")
            let c = try XCTUnwrap((conns["connections"] as? [[String: Any]])?.first, "\(proto) in /connections")
            XCTAssertEqual(c["local_port"] as? Int, s.port)
            XCTAssertEqual(c["pid"] as? Int, me)
            XCTAssertEqual(c["state"] as? String, status)
        }
        // Ports above 9000 and below 3000 are listed too (the old view was not).
        let all = try h.json("/api/system/ports", "limit=10000")
        XCTAssertEqual(all["count"] as? Int, (all["ports"] as? [Any])?.count)
        // One row per listening endpoint, however many sockets serve it (reuseport).
        let ss = try runTool("/bin/sh", ["-c", "awk '$4 == \"0A\" { print $2 }' /proc/net/tcp /proc/net/tcp6 | sort -u | wc -l"])
        let tcpListening = (all["ports"] as! [[String: Any]]).filter { ($0["proto"] as! String).hasPrefix("tcp") }.count
        XCTAssertEqual(tcpListening, Int(ss.trimmingCharacters(in: .whitespacesAndNewlines)), "every listening TCP endpoint")
    }

    func testConnectionFiltersAndBadParameters() throws {
        let h = try SystemHarness(signedIn: true)
        let all = try h.json("/api/system/connections", "limit=10000")
        let total = try XCTUnwrap(all["total"] as? Int)
        let listen = try h.json("/api/system/connections", "state=listen&proto=tcp&limit=10000")
        let l = try XCTUnwrap(listen["connections"] as? [[String: Any]])
        XCTAssertTrue(l.allSatisfy { $0["state"] as? String == "LISTEN" && $0["proto"] as? String == "tcp" })
        XCTAssertLessThanOrEqual(l.count, total)
        let paged = try h.json("/api/system/connections", "limit=1&offset=0")
        XCTAssertLessThanOrEqual((paged["connections"] as? [Any])?.count ?? 9, 1)
        XCTAssertEqual(paged["count"] as? Int, total)
        for (path, q) in [("/api/system/connections", "proto=sctp"), ("/api/system/connections", "pid=abc"),
                          ("/api/system/connections", "port=70000"), ("/api/system/connections", "state=bogus"),
                          ("/api/system/connections", "limit=x"), ("/api/system/ports", "from=10&to=5"),
                          ("/api/system/ports", "from=-1"), ("/api/system/ports", "offset=-1"),
                          ("/api/system/ports", "proto=icmp")] {
            let r = h.get(path, q)
            XCTAssertEqual(r.status, 400, "\(path)?\(q)")
            XCTAssertTrue(String(decoding: r.body, as: UTF8.self).contains("\"invalid_parameter\""), q)
        }
    }

    func sysCounters() -> [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? [] {
            for c in InterfaceSample.counterNames {
                let v = (try? String(contentsOfFile: "/sys/class/net/\(name)/statistics/\(c)", encoding: .utf8))
                    .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                out[name, default: [:]][c] = v
            }
        }
        return out
    }

    func testInterfaceCountersMatchSysAndOnlyGrow() throws {
        let h = try SystemHarness(["CC_CACHE_TTL_NETWORK": "0.05"])
        var last: [String: [String: Int]] = [:]
        for round in 0..<3 {
            let before = sysCounters()
            // Traffic on lo between rounds, so there is something to grow.
            _ = try? runTool("/usr/bin/curl", ["-s", "-m", "1", "http://127.0.0.1:1/"])
            usleep(60_000)
            let j = try h.json("/api/system/network")
            let after = sysCounters()
            let ifs = try XCTUnwrap(j["interfaces"] as? [[String: Any]])
            XCTAssertEqual(Set(ifs.map { $0["name"] as! String }), Set(before.keys))
            for i in ifs {
                let name = i["name"] as! String
                for c in InterfaceSample.counterNames {
                    let v = try XCTUnwrap(i[c] as? Int, "\(name).\(c)")
                    XCTAssertGreaterThanOrEqual(v, before[name]?[c] ?? 0, "\(name).\(c) vs /sys before")
                    XCTAssertLessThanOrEqual(v, after[name]?[c] ?? 0, "\(name).\(c) vs /sys after")
                    if let prev = last[name]?[c] { XCTAssertGreaterThanOrEqual(v, prev, "\(name).\(c) only grows") }
                    last[name, default: [:]][c] = v
                }
                if round > 0 { XCTAssertNotNil(i["rx_bytes_per_sec"] as? Double, "rate from the previous snapshot") }
            }
            let summary = try XCTUnwrap(j["connections_summary"] as? [String: Any])
            XCTAssertNotNil(summary["tcp"] as? [String: Int])
            XCTAssertNotNil(summary["udp"] as? Int)
            let lo = try XCTUnwrap(ifs.first { $0["name"] as? String == "lo" })
            let addrs = try XCTUnwrap(lo["addresses"] as? [[String: Any]])
            XCTAssertTrue(addrs.contains { $0["address"] as? String == "127.0.0.1" && $0["prefix"] as? Int == 8 })
            XCTAssertEqual(lo["mtu"] as? Int, 65536)
            XCTAssertEqual(lo["is_up"] as? Bool, true)
            usleep(100_000)
        }
    }

    func testMemoryAgreesWithFree() throws {
        let h = try SystemHarness()
        let free = try runTool("/usr/bin/free", ["-b"]).split(separator: "\n")
        let mem = try XCTUnwrap(free.first { $0.hasPrefix("Mem:") }).split(separator: " ").dropFirst().compactMap { Double($0) }
        let j = try h.json("/api/system/stats")
        let m = try XCTUnwrap(j["memory"] as? [String: Any])
        let total = try XCTUnwrap(m["total"] as? Double), used = try XCTUnwrap(m["used"] as? Double)
        let available = try XCTUnwrap(m["available"] as? Double)
        XCTAssertEqual(total, mem[0], "total")
        let slack = max(64.0 * 1024 * 1024, total * 0.02)
        XCTAssertEqual(used, mem[1], accuracy: slack, "used")
        XCTAssertEqual(available, mem[5], accuracy: slack, "available")
        XCTAssertEqual(try XCTUnwrap(m["percent"] as? Double), used * 100 / total, accuracy: 0.1)
        XCTAssertNotNil((m["swap"] as? [String: Any])?["total"] as? Int)
        let cpu = try XCTUnwrap(j["cpu"] as? [String: Any])
        XCTAssertEqual(cpu["count"] as? Int, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        XCTAssertEqual((cpu["per_core"] as? [Any])?.count, cpu["count"] as? Int)
        XCTAssertEqual((cpu["load_avg"] as? [Double])?.count, 3)
        let usage = try XCTUnwrap(cpu["usage_percent"] as? Double)
        XCTAssertTrue((0...100).contains(usage))
        XCTAssertEqual(cpu["usage"] as? Double, usage)
        XCTAssertEqual(j["success"] as? Bool, true)
    }

    func testDiskAgreesWithDf() throws {
        let h = try SystemHarness()
        let df = try runTool("/bin/df", ["-B1", "--output=size,used,avail", "/"]).split(separator: "\n")
        let f = df[1].split(separator: " ").compactMap { Double($0) }
        let j = try h.json("/api/system/stats")
        let d = try XCTUnwrap(j["disk"] as? [String: Any])
        XCTAssertEqual(d["total"] as? Double, f[0], "total")
        let slack = max(64.0 * 1024 * 1024, f[0] * 0.005)
        XCTAssertEqual(try XCTUnwrap(d["used"] as? Double), f[1], accuracy: slack, "used")
        XCTAssertEqual(try XCTUnwrap(d["free"] as? Double), f[2], accuracy: slack, "free")
        let disks = try XCTUnwrap(j["disks"] as? [[String: Any]])
        XCTAssertTrue(disks.contains { $0["mount"] as? String == "/" })
        let pseudo: Set<String> = ["proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "tmpfs", "devtmpfs"]
        XCTAssertFalse(disks.contains { pseudo.contains($0["fs_type"] as? String ?? "") }, "pseudo file systems skipped")
        XCTAssertNotNil((disks.first?["inodes"] as? [String: Any])?["total"] as? Int)
    }

    func testInfo() throws {
        let h = try SystemHarness()
        let j = try h.json("/api/system/info")
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        XCTAssertEqual(j["platform_release"] as? String, release)
        XCTAssertEqual((j["kernel"] as? [String: Any])?["release"] as? String, release)
        XCTAssertEqual(j["hostname"] as? String, ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? j["hostname"] as? String)
        XCTAssertNotNil((j["distribution"] as? [String: Any])?["id"] as? String)
        for k in ["os", "uptime", "platform", "platform_version", "arch", "processor", "totalMemory", "cpuCores",
                  "cpuCoresPhysical", "boot_time"] {
            XCTAssertNotNil(j[k], k)
        }
        let boot = try XCTUnwrap(j["boot_time_epoch"] as? Double)
        XCTAssertEqual(boot + (j["uptime_seconds"] as! Double), Date().timeIntervalSince1970, accuracy: 5)
    }
}
