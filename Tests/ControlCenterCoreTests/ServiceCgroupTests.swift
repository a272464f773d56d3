@testable import ControlCenterCore
import XCTest

/// The pure half of `ServiceCgroup`: where the cgroup2 is, where the
/// supervisor is, and which mode that makes.
final class ServiceCgroupTests: XCTestCase {
    /// This machine's hybrid layout: cgroup v1 controllers plus a cgroup2 at /sys/fs/cgroup/unified.
    let hybrid = """
        25 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
        35 25 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
        41 35 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        42 35 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        """

    func testFindsTheCgroup2MountWhereverItIs() {
        XCTAssertEqual(ServiceCgroup.mountPoint(mountinfo: hybrid), "/sys/fs/cgroup/unified")
        XCTAssertEqual(ServiceCgroup.mountPoint(mountinfo: "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate"),
                       "/sys/fs/cgroup", "unified layout, with optional fields before the separator")
        XCTAssertNil(ServiceCgroup.mountPoint(mountinfo: "42 35 0:39 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"), "v1 only")
        XCTAssertNil(ServiceCgroup.mountPoint(mountinfo: "41 35 0:38 / /odd\\040dir rw - cgroup2 cgroup2 rw"), "an escaped mount point is not used")
        XCTAssertNil(ServiceCgroup.mountPoint(mountinfo: "41 35 0:38 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw"),
                     "a bind of a subtree: its paths are not /proc/self/cgroup's")
    }

    func testOwnCgroupIsTheV2Line() {
        XCTAssertEqual(ServiceCgroup.ownPath(procCgroup: "4:memory:/process_api/x\n0::/\n"), "/")
        XCTAssertEqual(ServiceCgroup.ownPath(procCgroup: "0::/system.slice/control-center.service\n"), "/system.slice/control-center.service")
        XCTAssertNil(ServiceCgroup.ownPath(procCgroup: "4:memory:/x\n"), "no cgroup v2 line")
        XCTAssertNil(ServiceCgroup.ownPath(procCgroup: "0::/../other\n"), "outside our cgroup namespace")
    }

    func testBaseIsBelowTheOwnCgroupAndNamedForTheStateDirectory() {
        let a = ServiceCgroup.basePath(mount: "/sys/fs/cgroup", own: "/system.slice/control-center.service", stateDir: "/var/lib/control-center")
        XCTAssertTrue(a.hasPrefix("/sys/fs/cgroup/system.slice/control-center.service/control-center-"), a)
        XCTAssertEqual(a.count, "/sys/fs/cgroup/system.slice/control-center.service/control-center-".count + 12)
        XCTAssertEqual(ServiceCgroup.basePath(mount: "/m", own: "/", stateDir: "/s"), "/m/" + ServiceCgroup.baseName(stateDir: "/s"))
        XCTAssertNotEqual(ServiceCgroup.baseName(stateDir: "/a"), ServiceCgroup.baseName(stateDir: "/b"), "two instances never share a base")
    }

    func testModeDecision() {
        XCTAssertEqual(ServiceCgroup.decide(setting: .auto, mount: "/m", own: "/", baseWritable: true), .cgroup)
        XCTAssertEqual(ServiceCgroup.decide(setting: .subreaper, mount: "/m", own: "/", baseWritable: true), .subreaper, "turned off")
        XCTAssertEqual(ServiceCgroup.decide(setting: .auto, mount: nil, own: "/", baseWritable: false), .subreaper, "no cgroup2")
        XCTAssertEqual(ServiceCgroup.decide(setting: .auto, mount: "/m", own: nil, baseWritable: false), .subreaper, "own cgroup unknown")
        XCTAssertEqual(ServiceCgroup.decide(setting: .auto, mount: "/m", own: "/", baseWritable: false), .subreaper, "read-only (a container)")
    }

    func testTrackingOfARunningServiceComesFromItsCgroup() {
        let base = ServiceCgroup.baseName(stateDir: "/s")
        let (mode, path) = ServiceCgroup.tracking(procCgroup: "0::/\(base)/web\n", name: "web", stateDir: "/s")
        XCTAssertEqual(mode, .cgroup)
        XCTAssertEqual(path, "/\(base)/web")
        XCTAssertEqual(ServiceCgroup.tracking(procCgroup: "0::/\(base)/web\n", name: "we", stateDir: "/s").0, .subreaper, "another service's")
        XCTAssertEqual(ServiceCgroup.tracking(procCgroup: "0::/\(base)/web\n", name: "web", stateDir: "/t").0, .subreaper, "another instance's")
        XCTAssertEqual(ServiceCgroup.tracking(procCgroup: "0::/\n", name: "web", stateDir: "/s").0, .subreaper)
    }
}
