@testable import ControlCenterCore
import Foundation
import Glibc
import XCTest

/// The stats snapshot lists the host's disks even when it is built inside a
/// mount namespace that hides one: the mount table is PID 1's and the sizes
/// are read through /proc/1/root.
///
/// The "host" is a PID namespace of the test's own, whose PID 1 has an ext4
/// loop mount; the snapshot is built in a further mount namespace that
/// covers that mount with a 1 MiB tmpfs (what ProtectHome= or PrivateTmp=
/// do to a disk below /home or /tmp). Needs root (loop devices, namespaces).
final class HostMountNamespaceTests: XCTestCase {
    func testACoveredHostDiskStillShowsWithItsOwnSizes() throws {
        try XCTSkipUnless(getuid() == 0, "needs root: loop mounts and namespaces")
        for tool in ["/usr/bin/unshare", "/usr/sbin/mkfs.ext4"] {
            try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cc-it-mountns-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/disk", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            set -e
            truncate -s 64M "$D/disk.img"
            mkfs.ext4 -q -F "$D/disk.img"
            unshare --pid --fork --mount-proc --propagation private sh -c '
                mount -o loop "$D/disk.img" "$D/disk"
                unshare --mount --propagation private sh -c "
                    mount -t tmpfs -o size=1m cover \\"$D/disk\\"
                    grep -c \\" $D/disk \\" /proc/self/mountinfo
                    \\"$BIN\\" snapshot stats --repeat 1
                "
            '
            """
        var env = ProcessInfo.processInfo.environment
        env["D"] = dir
        env["BIN"] = TestServer.binary
        env["CC_STATE_DIR"] = dir + "/state"
        env["CC_LOG_FILE"] = dir + "/log"
        let (status, text) = try ExternalTool.capture("/bin/sh", ["-c", script], environment: env)
        try XCTSkipIf(text.contains("failed to set up loop device") || text.contains("Operation not permitted"),
                      "no loop devices or namespaces here: \(text)")
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.hasPrefix("2\n"), "the namespace sees the disk covered: \(text)")

        let snap = try XCTUnwrap(LoadedSnapshot.read(path: SnapshotKind.stats.snapPath(dir + "/state/cache"), kind: .stats))
        let body = Array(snap.file.section(.body))
        let stats = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        let disks = try XCTUnwrap(stats["disks"] as? [[String: Any]])
        XCTAssertTrue(disks.contains { $0["mount"] as? String == "/" }, "\(disks)")
        let disk = try XCTUnwrap(disks.first { $0["mount"] as? String == dir + "/disk" }, "the covered disk is listed: \(disks)")
        XCTAssertEqual(disk["fs_type"] as? String, "ext4")
        XCTAssertTrue((disk["device"] as? String ?? "").hasPrefix("/dev/loop"), "\(disk)")
        let total = try XCTUnwrap(disk["total"] as? Int)
        XCTAssertGreaterThan(total, 40 << 20, "the ext4's own size, not the covering 1 MiB tmpfs's")
        XCTAssertLessThanOrEqual(total, 64 << 20)
    }
}
