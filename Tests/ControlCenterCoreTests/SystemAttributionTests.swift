import Foundation
import Glibc
import XCTest
@testable import ControlCenterCore

/// Issue 9 §2: each figure belongs to what it is labelled with (threads vs
/// processes, over-mounts, labelled addresses, hotplugged CPUs, reuseport
/// endpoints). Root-only cases skip with a reason and undo what they change.
final class SystemAttributionTests: XCTestCase {
    func requireRoot() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root (loop mounts, interfaces, CPU hotplug)") }
    }

    @discardableResult
    func sh(_ script: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = try runTool("/bin/sh", ["-c", script + " 2>&1; echo \"rc=$?\""])
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        let rcLine = lines.last { $0.hasPrefix("rc=") } ?? "rc=?"
        XCTAssertEqual(rcLine, "rc=0", "\(script): \(out)", file: file, line: line)
        return lines.filter { !$0.hasPrefix("rc=") }.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: threads

    func testThreadIdIsNotAProcess() throws {
        // The test process has several threads; start one if it has not.
        if (try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")).count < 2 {
            Thread { sleep(30) }.start()
            usleep(50_000)
        }
        let me = Int(getpid())
        let tid = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")
            .compactMap { Int($0) }.first { $0 != me }, "a thread besides the main one")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "/proc/\(tid)/stat"), "/proc/<tid> exists although readdir skips it")
        let h = try SystemHarness(signedIn: true)
        XCTAssertEqual(h.get("/api/system/processes/\(tid)").status, 404, "a thread id is not a process")
        XCTAssertEqual(try h.json("/api/system/processes/\(me)")["pid"] as? Int, me)
        let all = try XCTUnwrap(try h.json("/api/system/processes", "limit=10000&sort=pid")["processes"] as? [[String: Any]])
        XCTAssertFalse(all.contains { $0["pid"] as? Int == tid })
        // Sockets belong to processes: a thread id owns none.
        XCTAssertEqual(try h.json("/api/system/connections", "pid=\(tid)")["count"] as? Int, 0)
    }

    // MARK: over-mounts

    func testVisibleMountsSkipCoveredMountsAndWhatIsBeneathThem() {
        let text = """
        22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
        23 22 0:5 / /proc rw - proc proc rw
        30 22 7:0 / /mnt/x rw - ext2 /dev/loop0 rw
        33 30 7:2 / /mnt/x/sub rw - ext4 /dev/loop2 rw
        31 30 7:1 / /mnt/x rw - ext4 /dev/loop1 rw
        34 22 8:2 / /mnt/with\\040space rw - xfs /dev/sdb1 rw
        """
        let m = HostScanner.visibleMounts(mountinfo: text, nodev: ["proc"])
        XCTAssertEqual(m, [.init(device: "/dev/sda1", mountPoint: "/", fsType: "ext4"),
                           .init(device: "/dev/loop1", mountPoint: "/mnt/x", fsType: "ext4"),
                           .init(device: "/dev/sdb1", mountPoint: "/mnt/with space", fsType: "xfs")])
    }

    func testOverMountedMountPointReportsTheTopMount() throws {
        try requireRoot()
        let base = NSTemporaryDirectory() + "cc-overmount-\(getpid())"
        let dir = base + "/mnt"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            // Two mounts at most; umount -l so a busy one cannot stay behind.
            _ = try? runTool("/bin/sh", ["-c", "umount -l '\(dir)'; umount -l '\(dir)'; rm -rf '\(base)'"])
        }
        try sh("truncate -s 8M '\(base)/small.img' && mkfs.ext2 -q -F '\(base)/small.img'")
        try sh("truncate -s 24M '\(base)/big.img' && mkfs.ext4 -q -F '\(base)/big.img'")
        try sh("mount -o loop '\(base)/small.img' '\(dir)'")
        let hidden = try sh("findmnt -n -o SOURCE --mountpoint '\(dir)' | tail -1")
        try sh("mount -o loop '\(base)/big.img' '\(dir)'")
        let top = try sh("findmnt -n -o SOURCE --mountpoint '\(dir)' | tail -1")
        XCTAssertNotEqual(hidden, top)
        let h = try SystemHarness()
        let disks = try XCTUnwrap(try h.json("/api/system/stats")["disks"] as? [[String: Any]])
        let here = disks.filter { $0["mount"] as? String == dir }
        XCTAssertEqual(here.count, 1, "one entry for the mount point: \(here)")
        let d = try XCTUnwrap(here.first)
        XCTAssertEqual(d["fs_type"] as? String, "ext4")
        XCTAssertEqual(d["device"] as? String, top)
        let df = try sh("df -B1 --output=size '\(dir)' | tail -1")
        XCTAssertEqual(d["total"] as? Int, Int(df))
        XCTAssertGreaterThan(d["total"] as? Int ?? 0, 16 << 20, "sizes of the 24 MiB file system")
        XCTAssertFalse(disks.contains { $0["device"] as? String == hidden }, "nothing of the covered ext2 mount")
    }

    // MARK: labelled addresses

    func testLabelNamesItsInterface() {
        XCTAssertEqual(InterfaceScanner.interfaceName(ofLabel: "eth0:1"), "eth0")
        XCTAssertEqual(InterfaceScanner.interfaceName(ofLabel: "eth0"), "eth0")
    }

    func testLabelledAddressIsListedUnderItsInterface() throws {
        try requireRoot()
        let dev = "cc-test0"
        _ = try? runTool("/sbin/ip", ["link", "del", dev])
        try sh("ip link add \(dev) type veth peer name cc-test1")
        defer { _ = try? runTool("/bin/sh", ["-c", "ip link del \(dev)"]) }
        try sh("ip addr add 198.51.100.9/24 dev \(dev) && ip addr add 198.51.100.7/24 dev \(dev) label \(dev):1")
        let h = try SystemHarness()
        let ifs = try XCTUnwrap(try h.json("/api/system/network")["interfaces"] as? [[String: Any]])
        XCTAssertFalse(ifs.contains { $0["name"] as? String == "\(dev):1" }, "a label is not an interface")
        let i = try XCTUnwrap(ifs.first { $0["name"] as? String == dev })
        let v4 = (i["addresses"] as? [[String: Any]] ?? []).filter { $0["family"] as? String == "ipv4" }
        let byAddress = Dictionary(uniqueKeysWithValues: v4.map { ($0["address"] as! String, $0) })
        XCTAssertEqual(byAddress["198.51.100.9"]?["label"] as? String, dev)
        XCTAssertEqual(byAddress["198.51.100.7"]?["label"] as? String, "\(dev):1")
        XCTAssertEqual(byAddress["198.51.100.7"]?["prefix"] as? Int, 24)
    }

    // MARK: CPUs

    func times(_ text: String) -> [HostScanner.CPUTimes] {
        Array(text.utf8).withUnsafeBytes { HostScanner.cpuTimes($0) }
    }

    func testCPUUsageIsMatchedByCPUNumber() throws {
        // cpu1 offline in the second reading, back in the third with its
        // frozen counters and a jumped idle time.
        let first = times("cpu  300 0 100 600 0 0 0 0 0 0\ncpu0 200 0 50 250 0 0 0 0 0 0\ncpu1 100 0 50 350 0 0 0 0 0 0\nintr 1\n")
        let second = times("cpu  400 0 100 800 0 0 0 0 0 0\ncpu0 300 0 50 350 0 0 0 0 0 0\nintr 1\n")
        let third = times("cpu  450 0 100 1900 0 0 0 0 0 0\ncpu0 350 0 50 400 0 0 0 0 0 0\ncpu1 100 0 50 50 0 0 0 0 0 0\n")
        XCTAssertEqual(second.map(\.cpu), [nil, 0])

        let boot = CPUUsage.compute(now: first, before: nil, slots: 2)
        XCTAssertEqual(boot.totalBasis, .boot)
        XCTAssertEqual(boot.cores.map(\.basis), [.boot, .boot])
        XCTAssertEqual(try XCTUnwrap(boot.cores[1].percent), 150.0 / 500 * 100, accuracy: 1e-9)

        let offline = CPUUsage.compute(now: second, before: first, slots: 2)
        XCTAssertEqual(offline.cores.map(\.basis), [.snapshot, .offline])
        XCTAssertNil(offline.cores[1].percent)
        XCTAssertEqual(try XCTUnwrap(offline.cores[0].percent), 50, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(offline.total), 50, accuracy: 1e-9, "the total is that of the online core")

        let back = CPUUsage.compute(now: third, before: second, slots: 2)
        XCTAssertEqual(back.totalBasis, .snapshot)
        XCTAssertEqual(back.cores[1], .init(cpu: 1, percent: nil, basis: .none), "no since-boot figure labelled as recent")
        XCTAssertEqual(try XCTUnwrap(back.total), 50, accuracy: 1e-9)

        // Counters that went backwards are no previous sample either.
        let reset = CPUUsage.compute(now: second, before: third, slots: 2)
        XCTAssertEqual(reset.cores[0].basis, .none)
        XCTAssertNil(reset.total)
    }

    func testOfflineCPUIsReportedByNumber() throws {
        try requireRoot()
        let online = "/sys/devices/system/cpu/cpu1/online"
        guard access(online, W_OK) == 0 else { throw XCTSkip("\(online) is missing or not writable") }
        func set(_ v: String) throws { try v.write(toFile: online, atomically: false, encoding: .utf8) }
        // Brought back even if this process dies mid-test: a watchdog that
        // outlives it, and the defer for the normal way out.
        let watchdog = try Child("trap 'kill $!; exit' TERM; sleep 20 & wait $!; echo 1 > \(online)")
        defer { try? set("1"); watchdog.kill(SIGTERM) }
        let h = try SystemHarness(["CC_CACHE_TTL_STATS": "0.05"])
        func cpu() throws -> [String: Any] {
            usleep(150_000)
            return try XCTUnwrap(try h.json("/api/system/stats")["cpu"] as? [String: Any])
        }
        func core1(_ c: [String: Any]) throws -> [String: Any] {
            try XCTUnwrap((c["cores"] as? [[String: Any]])?.first { $0["cpu"] as? Int == 1 })
        }
        _ = try cpu()
        try set("0")
        let off = try cpu()
        XCTAssertEqual(try core1(off)["online"] as? Bool, false)
        XCTAssertEqual(try core1(off)["since_previous_sample"] as? String, "offline")
        let perCore = try XCTUnwrap(off["per_core"] as? [Any])
        XCTAssertGreaterThanOrEqual(perCore.count, 2, "a slot per CPU number, offline ones too")
        XCTAssertTrue(perCore.dropFirst().first is NSNull, "per_core[1] while offline: \(perCore)")
        let core0 = try XCTUnwrap((off["cores"] as? [[String: Any]])?.first)["usage_percent"] as? Double
        XCTAssertEqual(off["usage_percent"] as? Double, core0, "the total is that of the online cores")
        try set("1")
        let back = try cpu()
        XCTAssertEqual(try core1(back)["online"] as? Bool, true)
        XCTAssertEqual(try core1(back)["since_previous_sample"] as? String, "none")
        XCTAssertTrue((back["per_core"] as? [Any])?.dropFirst().first is NSNull, "no since-boot figure labelled as recent")
        XCTAssertEqual(back["since_previous_sample"] as? String, "snapshot")
        let later = try cpu()
        XCTAssertEqual(try core1(later)["since_previous_sample"] as? String, "snapshot")
        XCTAssertNotNil(try core1(later)["usage_percent"] as? Double)
    }

    // MARK: ports

    func testListeningEndpointsGroupSockets() {
        func sock(_ port: UInt16, _ inode: UInt64, addr: String = "127.0.0.1") -> SocketSample {
            SocketSample(proto: .tcp, localAddress: addr, localPort: port, remoteAddress: "0.0.0.0", remotePort: 0,
                         state: 0x0A, uid: 0, inode: inode)
        }
        let e = ListeningEndpoint.group([sock(80, 1), sock(80, 2), sock(80, 3, addr: "0.0.0.0"), sock(22, 4)],
                                        owners: [1: [10, 11], 2: [11, 12], 4: [5]])
        XCTAssertEqual(e.map(\.port), [22, 80, 80])
        XCTAssertEqual(e[1].address, "0.0.0.0")
        XCTAssertEqual(e[1].pids, [])
        XCTAssertEqual(e[2].pids, [10, 11, 12])
    }

    func testReusePortEndpointIsOneRowWithEveryOwner() throws {
        // A port nobody holds, then two children listening on it with SO_REUSEPORT.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in bind(probe, p, len) == 0 ? getsockname(probe, p, &len) : -1 }
        }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        close(probe)
        let script = "exec python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1); s.bind((\"127.0.0.1\", \(port))); s.listen(); time.sleep(60)'"
        let children = try (0..<2).map { _ in try Child(script) }
        let hex = String(format: ":%04X", port)
        for _ in 0..<60 {
            let lines = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8))?.split(separator: "\n") ?? []
            if lines.filter({ $0.contains("0100007F\(hex) ") && $0.contains(" 0A ") }).count >= 2 { break }
            usleep(50_000)
        }
        let h = try SystemHarness(["CC_PUBLIC_READ": "false"], signedIn: true)
        let j = try h.json("/api/system/ports", "from=\(port)&to=\(port)&proto=tcp")
        XCTAssertEqual(j["success"] as? Bool, true)
        let rows = try XCTUnwrap(j["ports"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 1, "one row per (proto, address, port): \(rows)")
        let row = try XCTUnwrap(rows.first)
        let pids = children.map { Int($0.pid) }.sorted()
        XCTAssertEqual(row["pids"] as? [Int], pids)
        XCTAssertEqual(row["pid"] as? Int, pids[0], "the old single field: the lowest owner")
        XCTAssertEqual(row["processes"] as? [String], ["python3", "python3"])
        XCTAssertEqual(row["process_name"] as? String, "python3")
        XCTAssertEqual(row["address"] as? String, "127.0.0.1")
    }

    // MARK: old fields

    func testProcessesAndPortsSaySuccessInEveryForm() throws {
        let h = try SystemHarness()
        for (path, query) in [("/api/system/processes", ""), ("/api/system/processes", "sort=pid"),
                              ("/api/system/ports", ""), ("/api/system/ports", "proto=tcp")] {
            XCTAssertEqual(try h.json(path, query)["success"] as? Bool, true, "\(path)?\(query)")
        }
        let view = try String(contentsOfFile: h.context.config.viewsDir + "/processes.json", encoding: .utf8)
        XCTAssertTrue(view.contains("\"success\":true"), "the nginx-sent view carries it too")
    }
}
