@testable import OTKSandbox
import Testing

@Suite("CgroupLayout.detect")
struct CgroupLayoutTests {
    static let base = """
    22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
    23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
    24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
    """

    static let v2 = base + """

    30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
    """

    static let v1 = base + """

    25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
    32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
    33 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
    34 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
    """

    static let hybrid = v1 + """

    26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
    """

    @Test func pureV2() {
        var asked: [String] = []
        let layout = CgroupLayout.detect(mountinfo: Self.v2) { path in
            asked.append(path)
            return ["cpu", "memory", "pids"]
        }
        #expect(layout.kind == .v2)
        #expect(layout.unifiedMount == "/sys/fs/cgroup")
        #expect(layout.unifiedControllers == ["cpu", "memory", "pids"])
        #expect(layout.v1Controllers.isEmpty)
        #expect(asked == ["/sys/fs/cgroup"])
    }

    @Test func pureV1() {
        var asked = false
        let layout = CgroupLayout.detect(mountinfo: Self.v1) { _ in asked = true; return ["x"] }
        #expect(layout.kind == .v1)
        #expect(layout.unifiedMount == nil)
        #expect(layout.unifiedControllers.isEmpty)
        #expect(!asked, "no unified hierarchy to ask")
        #expect(layout.v1Controllers == [
            "memory": "/sys/fs/cgroup/memory",
            "pids": "/sys/fs/cgroup/pids",
            "cpu": "/sys/fs/cgroup/cpu,cpuacct",
            "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        ])
    }

    @Test func hybrid() {
        let layout = CgroupLayout.detect(mountinfo: Self.hybrid) { path in
            path == "/sys/fs/cgroup/unified" ? [] : ["wrong"]
        }
        #expect(layout.kind == .hybrid)
        #expect(layout.unifiedMount == "/sys/fs/cgroup/unified")
        #expect(layout.unifiedControllers.isEmpty)
        #expect(layout.v1Controllers["memory"] == "/sys/fs/cgroup/memory")
        #expect(layout.v1Controllers["pids"] == "/sys/fs/cgroup/pids")
        #expect(layout.v1Controllers["cpu"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(layout.v1Controllers.count == 4)
    }

    @Test func namedHierarchiesAndMountOptionsAreNotControllers() {
        let text = Self.base + """

        31 24 0:27 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,nosuid,nodev,noexec,relatime,name=systemd
        32 24 0:28 / /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup ro,memory
        """
        let layout = CgroupLayout.detect(mountinfo: text) { _ in [] }
        #expect(layout.kind == .v1)
        #expect(layout.v1Controllers == ["memory": "/sys/fs/cgroup/memory"])
    }

    @Test
    func superOptionsThatAreNotControllers() {
        let text = Self.v2 + """

        31 24 0:27 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
        """
        let layout = CgroupLayout.detect(mountinfo: text) { _ in ["memory"] }
        #expect(layout.v1Controllers.isEmpty)
        #expect(layout.kind == .v2)
        let cpuset = Self.base + "\n35 24 0:31 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset,clone_children\n"
        #expect(CgroupLayout.detect(mountinfo: cpuset) { _ in [] }.v1Controllers == ["cpuset": "/sys/fs/cgroup/cpuset"])
    }

    @Test func optionalFieldsBeforeTheSeparatorAreSkipped() {
        // Zero and several optional fields before "-".
        let text = """
        30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
        31 24 0:27 / /sys/fs/cgroup/pids rw shared:3 master:1 propagate_from:2 - cgroup cgroup rw,pids
        """
        let layout = CgroupLayout.detect(mountinfo: text) { _ in ["io"] }
        #expect(layout.kind == .hybrid)
        #expect(layout.unifiedMount == "/sys/fs/cgroup")
        #expect(layout.unifiedControllers == ["io"])
        #expect(layout.v1Controllers == ["pids": "/sys/fs/cgroup/pids"])
    }

    @Test func firstCgroup2MountWins() {
        let text = Self.v2 + "\n40 22 0:40 / /run/other rw - cgroup2 cgroup2 rw\n"
        #expect(CgroupLayout.detect(mountinfo: text) { _ in [] }.unifiedMount == "/sys/fs/cgroup")
    }

    @Test func noCgroupsAndGarbage() {
        #expect(CgroupLayout.detect(mountinfo: Self.base) { _ in [] }.kind == .none)
        #expect(CgroupLayout.detect(mountinfo: "") { _ in [] }.kind == .none)
        let garbage = "not a mountinfo line\n- cgroup2\n1 2 - cgroup\n1 2 3 4 5 - cgroup\n"
        let layout = CgroupLayout.detect(mountinfo: garbage) { _ in [] }
        #expect(layout.kind == .none)
    }
}
