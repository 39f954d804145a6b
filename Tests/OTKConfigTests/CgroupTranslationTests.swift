import Foundation
import Glibc
import OTKConfig
import OTKModel
@testable import OTKSandbox
import Testing

/// How `[limits]` become cgroup files, for both cgroup versions, against a fake cgroupfs: a
/// directory tree in a temporary directory where writes create files (`CgroupFiles(createsFiles:
/// true)`). What a real kernel shows that a fresh fake directory cannot (memory.memsw.* and
/// memory.swap.max inside a run's own directory, created by the manager itself) is checked on a
/// live run in OTKIntegrationTests/LimitsTests. Also: reading the counters back, stale run
/// removal, the parent's name, and decoding the `[limits]` table.
@Suite("cgroup translation") struct CgroupTranslationTests {}

// MARK: - a fake cgroupfs

/// A temporary tree standing in for cgroupfs. v1: one directory per hierarchy (cpu and cpuacct
/// co-mounted, as most v1 hosts do). v2: one directory with the root's control files.
final class FakeCgroupfs {
    let fixture: FixtureDir
    var root: String { fixture.path }
    let files = CgroupFiles(createsFiles: true)

    init() throws { fixture = try FixtureDir() }

    var memory: String { root + "/memory" }
    var pids: String { root + "/pids" }
    var cpu: String { root + "/cpu,cpuacct" }
    var unified: String { root + "/unified" }

    /// The v1 mounts as CgroupLayout reports them (cpuacct included, which the manager ignores).
    func v1Mounts(_ controllers: Set<String> = ["memory", "pids", "cpu"]) throws -> [String: String] {
        var mounts: [String: String] = [:]
        for c in controllers {
            let path = c == "memory" ? memory : c == "pids" ? pids : cpu
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            mounts[c] = path
            if c == "cpu" { mounts["cpuacct"] = path }
        }
        return mounts
    }

    func v1(_ controllers: Set<String> = ["memory", "pids", "cpu"], parentName: String = "otk") throws -> CgroupV1Manager {
        CgroupV1Manager(mounts: try v1Mounts(controllers), files: files, parentName: parentName)
    }

    /// A unified hierarchy whose root offers `offered` to its children (its cgroup.subtree_control).
    func v2(offering offered: String? = "cpu io memory pids", parentName: String = "otk") throws -> CgroupV2Manager {
        try FileManager.default.createDirectory(atPath: unified, withIntermediateDirectories: true)
        try write(unified + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
        if let offered { try write(unified + "/cgroup.subtree_control", offered + "\n") }
        return CgroupV2Manager(root: unified, files: files, parentName: parentName)
    }

    func write(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    func mkdir(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Names in a directory (files and directories), sorted.
    func list(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// Every path below the tree, relative to it: what a test can compare before and after.
    func snapshot() -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        if let walker = fm.enumerator(atPath: root) {
            while let next = walker.nextObject() as? String { out.append(next) }
        }
        return out.sorted()
    }

    /// A directory below the tree whose path is exactly `length` bytes long, for paths that pass
    /// mkdir but fail once a control file's name is added (ENAMETOOLONG): a write that fails.
    func deepDirectory(length: Int) throws -> String {
        var path = root + "/deep"
        precondition(length - path.utf8.count > 250)
        while length - path.utf8.count > 250 { path += "/" + String(repeating: "d", count: 200) }
        path += "/" + String(repeating: "e", count: length - path.utf8.count - 1)
        precondition(path.utf8.count == length)
        try mkdir(path)
        return path
    }
}

let megabytes64: UInt64 = 64 << 20

// MARK: - v1

extension CgroupTranslationTests {
    @Suite("v1: limits to files") struct V1 {
        let run = "run-1-2-3"

        @Test("memory without memsw accounting: memory.limit_in_bytes, and swappiness 0 instead of a memsw limit")
        func memoryWithoutSwapAccounting() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1()
            let made = try manager.create(run, limits: Limits(memoryBytes: megabytes64))
            let dir = fs.memory + "/otk/" + run
            #expect(fs.read(dir + "/memory.limit_in_bytes") == "67108864")
            #expect(fs.read(dir + "/memory.swappiness") == "0")
            #expect(!fs.exists(dir + "/memory.memsw.limit_in_bytes"), "a file the kernel does not have is never created")
            // Every hierarchy gets its directory (for the counters), with nothing written in the others.
            #expect(made.version == .v1)
            #expect(made.directories == [fs.cpu + "/otk/" + run, dir, fs.pids + "/otk/" + run])
            #expect(made.operations == made.directories.map { .cgroupV1($0) })
            #expect(fs.list(fs.pids + "/otk/" + run).isEmpty)
            #expect(fs.list(fs.cpu + "/otk/" + run).isEmpty)
            #expect(fs.list(dir) == ["memory.limit_in_bytes", "memory.swappiness"])
        }

        @Test("pids: pids.max")
        func pids() throws {
            let fs = try FakeCgroupfs()
            _ = try fs.v1().create(run, limits: Limits(pids: 32))
            #expect(fs.read(fs.pids + "/otk/" + run + "/pids.max") == "32")
            #expect(fs.list(fs.memory + "/otk/" + run).isEmpty)
            #expect(fs.list(fs.cpu + "/otk/" + run).isEmpty)
        }

        static let quotaCases: [(Double, String)] = [
            (1.5, "150000"), (0.2, "20000"), (0.01, "1000"), (0.004, "1000"), (2, "200000"), (64, "6400000"), (0.123456, "12346"),
        ]

        @Test("cpus: a 100 ms CFS period and the quota for that many CPUs (at least 1 ms)", arguments: quotaCases)
        func cpuQuota(cpus: Double, quota: String) throws {
            let fs = try FakeCgroupfs()
            _ = try fs.v1().create(run, limits: Limits(cpus: cpus))
            let dir = fs.cpu + "/otk/" + run
            #expect(fs.read(dir + "/cpu.cfs_period_us") == "100000")
            #expect(fs.read(dir + "/cpu.cfs_quota_us") == quota)
        }

        @Test("all three at once, and only the limit files are written")
        func allLimits() throws {
            let fs = try FakeCgroupfs()
            _ = try fs.v1().create(run, limits: Limits(memoryBytes: 4 << 30, pids: 1024, cpus: 1.5, wallSeconds: 60, outputBytes: 1 << 20,
                                                        fileSizeBytes: 1 << 20, openFiles: 64, tmpSizeBytes: 1 << 20))
            #expect(fs.list(fs.memory + "/otk/" + run) == ["memory.limit_in_bytes", "memory.swappiness"])
            #expect(fs.read(fs.memory + "/otk/" + run + "/memory.limit_in_bytes") == "4294967296")
            #expect(fs.list(fs.pids + "/otk/" + run) == ["pids.max"])
            #expect(fs.read(fs.pids + "/otk/" + run + "/pids.max") == "1024")
            #expect(fs.list(fs.cpu + "/otk/" + run) == ["cpu.cfs_period_us", "cpu.cfs_quota_us"])
        }

        @Test("no cgroup limit: directories for the counters, no file written")
        func noLimits() throws {
            let fs = try FakeCgroupfs()
            let made = try fs.v1().create(run, limits: Limits(wallSeconds: 5, openFiles: 64))
            #expect(made.directories.count == 3)
            for dir in made.directories { #expect(fs.list(dir).isEmpty, "\(dir)") }
        }

        @Test("a limit whose hierarchy is not mounted is refused, and nothing is created",
              arguments: ["memory", "pids", "cpu"])
        func unmountedHierarchyIsRefused(controller: String) throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1(Set(["memory", "pids", "cpu"]).subtracting([controller]))
            let before = fs.snapshot()
            let limits = Limits(memoryBytes: controller == "memory" ? megabytes64 : nil, pids: controller == "pids" ? 10 : nil,
                                cpus: controller == "cpu" ? 1 : nil)
            let error = #expect(throws: OTKError.self) { _ = try manager.create(run, limits: limits) }
            #expect(error?.kind == .isolationUnavailable)
            #expect(error?.message.contains("limits \(controller)") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("no v1 \(controller) hierarchy") == true, "\(error?.message ?? "")")
            #expect(fs.snapshot() == before, "nothing may be created before the refusal")
        }

        @Test("a hierarchy that is not mounted is fine while no limit needs it")
        func unmountedButUnused() throws {
            let fs = try FakeCgroupfs()
            let made = try fs.v1(["memory", "pids"]).create(run, limits: Limits(memoryBytes: megabytes64, pids: 5))
            #expect(made.directories == [fs.memory + "/otk/" + run, fs.pids + "/otk/" + run])
            #expect(!fs.exists(fs.cpu))
        }

        @Test("only the memory, pids and cpu hierarchies are used; co-mounted ones share a directory")
        func hierarchiesUsed() throws {
            let fs = try FakeCgroupfs()
            var mounts = try fs.v1Mounts()
            mounts["freezer"] = fs.root + "/freezer"
            mounts["devices"] = fs.root + "/devices"
            let manager = CgroupV1Manager(mounts: mounts, files: fs.files, parentName: "otk")
            #expect(manager.mounts.keys.sorted() == ["cpu", "memory", "pids"])
            #expect(manager.parents == [fs.cpu + "/otk", fs.memory + "/otk", fs.pids + "/otk"])
            let made = try manager.create(run, limits: Limits())
            #expect(made.directories.count == 3)
            #expect(!fs.exists(fs.root + "/freezer"))
        }

        @Test("a run directory that cannot be made removes the ones already made")
        func failedDirectoryLeavesNothing() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1()
            // The pids hierarchy's parent sorts last and is a file: its run directory cannot be made.
            try fs.write(fs.pids + "/otk", "not a directory")
            let error = #expect(throws: OTKError.self) {
                _ = try manager.create(run, limits: Limits(memoryBytes: megabytes64, pids: 10, cpus: 1))
            }
            #expect(error?.kind == .isolationUnavailable)
            #expect(error?.errno == ENOTDIR)
            #expect(error?.message.contains(fs.pids + "/otk/" + run) == true, "\(error?.message ?? "")")
            #expect(fs.list(fs.cpu + "/otk").isEmpty, "the cpu run directory must be removed again")
            #expect(fs.list(fs.memory + "/otk").isEmpty, "the memory run directory must be removed again")
        }

        @Test("a limit that cannot be written removes every run directory")
        func failedWriteLeavesNothing() throws {
            let fs = try FakeCgroupfs()
            // The memory hierarchy sits so deep that the run directory can be made (4080 bytes)
            // but not memory.limit_in_bytes inside it (past PATH_MAX): the first write fails.
            let deep = try fs.deepDirectory(length: 4080 - "/otk/".utf8.count - run.utf8.count)
            var mounts = try fs.v1Mounts(["pids", "cpu"])
            mounts["memory"] = deep
            let manager = CgroupV1Manager(mounts: mounts, files: fs.files, parentName: "otk")
            let error = #expect(throws: OTKError.self) {
                _ = try manager.create(run, limits: Limits(memoryBytes: megabytes64, pids: 10, cpus: 1))
            }
            #expect(error?.kind == .isolationUnavailable)
            #expect(error?.errno == ENAMETOOLONG)
            #expect(error?.message.contains("memory.limit_in_bytes") == true, "\(error?.message ?? "")")
            #expect(fs.list(deep + "/otk").isEmpty)
            #expect(fs.list(fs.pids + "/otk").isEmpty)
            #expect(fs.list(fs.cpu + "/otk").isEmpty)
        }

        @Test("a run directory of that name already there is an error, not a shared cgroup")
        func existingRunIsAnError() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1()
            try fs.mkdir(fs.memory + "/otk/" + run)
            let error = #expect(throws: OTKError.self) { _ = try manager.create(run, limits: Limits(memoryBytes: megabytes64)) }
            #expect(error?.errno == EEXIST)
            #expect(fs.list(fs.cpu + "/otk").isEmpty, "the cpu directory made before it is removed again")
            #expect(fs.list(fs.memory + "/otk/" + run).isEmpty, "nothing written into the other run's directory")
        }

        @Test("remove takes every run directory away and leaves the parents")
        func remove() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1()
            let made = try manager.create(run, limits: Limits())
            #expect(manager.remove(made).isEmpty)
            for parent in manager.parents {
                #expect(fs.exists(parent))
                #expect(fs.list(parent).isEmpty)
            }
            // Removing again: already gone is not a warning.
            #expect(manager.remove(made).isEmpty)
        }
    }
}

// MARK: - v2

extension CgroupTranslationTests {
    @Suite("v2: limits to files") struct V2 {
        let run = "run-1-2-3"

        @Test("memory.max, pids.max and cpu.max in the run's directory; controllers enabled in otk's parent only")
        func allLimits() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2()
            let rootControl = fs.read(fs.unified + "/cgroup.subtree_control")
            let made = try manager.create(run, limits: Limits(memoryBytes: megabytes64, pids: 32, cpus: 1.5))
            let dir = fs.unified + "/otk/" + run
            #expect(made.version == .v2)
            #expect(made.directories == [dir])
            #expect(made.operations == [.cgroupV2(dir)])
            #expect(fs.read(dir + "/memory.max") == "67108864")
            #expect(fs.read(dir + "/pids.max") == "32")
            #expect(fs.read(dir + "/cpu.max") == "150000 100000")
            // A fresh fake directory has no memory.swap.max: a file the kernel would not have is not created.
            #expect(!fs.exists(dir + "/memory.swap.max"))
            #expect(fs.list(dir) == ["cpu.max", "memory.max", "pids.max"])
            #expect(fs.read(fs.unified + "/otk/cgroup.subtree_control") == "+cpu +memory +pids")
            #expect(fs.read(fs.unified + "/cgroup.subtree_control") == rootControl, "the root's subtree_control is never written")
            #expect(manager.parents == [fs.unified + "/otk"])
        }

        static let cpuMaxCases: [(Double, String)] = [(1.5, "150000 100000"), (0.2, "20000 100000"), (0.001, "1000 100000"), (8, "800000 100000")]

        @Test("cpu.max for fractions of a CPU", arguments: cpuMaxCases)
        func cpuMax(cpus: Double, text: String) throws {
            let fs = try FakeCgroupfs()
            _ = try fs.v2().create(run, limits: Limits(cpus: cpus))
            #expect(fs.read(fs.unified + "/otk/" + run + "/cpu.max") == text)
        }

        @Test("controllers already enabled in the parent are not written again")
        func parentAlreadyEnabled() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2()
            try fs.mkdir(fs.unified + "/otk")
            try fs.write(fs.unified + "/otk/cgroup.subtree_control", "cpu memory pids\n")
            _ = try manager.create(run, limits: Limits(memoryBytes: megabytes64))
            #expect(fs.read(fs.unified + "/otk/cgroup.subtree_control") == "cpu memory pids\n")
        }

        @Test("a parent missing one controller gets all three enabled")
        func parentMissingOne() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2()
            try fs.mkdir(fs.unified + "/otk")
            try fs.write(fs.unified + "/otk/cgroup.subtree_control", "memory\n")
            _ = try manager.create(run, limits: Limits())
            #expect(fs.read(fs.unified + "/otk/cgroup.subtree_control") == "+cpu +memory +pids")
        }

        @Test("only the controllers the root passes down are enabled, while no limit needs the others")
        func onlyOffered() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2(offering: "memory pids")
            _ = try manager.create(run, limits: Limits(memoryBytes: megabytes64, pids: 10))
            #expect(fs.read(fs.unified + "/otk/cgroup.subtree_control") == "+memory +pids")
            #expect(fs.read(fs.unified + "/cgroup.subtree_control") == "memory pids\n")
            #expect(!fs.exists(fs.unified + "/otk/" + run + "/cpu.max"))
        }

        @Test("a limit whose controller the root does not pass down is refused before anything is made",
              arguments: ["memory", "pids", "cpu"])
        func controllerNotOffered(controller: String) throws {
            let fs = try FakeCgroupfs()
            let offered = ["cpu", "io", "memory", "pids"].filter { $0 != controller }.joined(separator: " ")
            let manager = try fs.v2(offering: offered)
            let before = fs.snapshot()
            let limits = Limits(memoryBytes: controller == "memory" ? megabytes64 : nil, pids: controller == "pids" ? 10 : nil,
                                cpus: controller == "cpu" ? 1 : nil)
            let error = #expect(throws: OTKError.self) { _ = try manager.create(run, limits: limits) }
            #expect(error?.kind == .isolationUnavailable)
            #expect(error?.message.contains("does not pass the \(controller) controller down") == true, "\(error?.message ?? "")")
            #expect(error?.remedy?.contains("+\(controller)") == true, "\(error?.remedy ?? "")")
            #expect(fs.snapshot() == before, "not even otk's parent is made, and the root's files are untouched")
            #expect(fs.read(fs.unified + "/cgroup.subtree_control") == offered + "\n")
        }

        @Test("a root whose subtree_control cannot be read passes nothing down")
        func noSubtreeControl() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2(offering: nil)
            let error = #expect(throws: OTKError.self) { _ = try manager.create(run, limits: Limits(pids: 1)) }
            #expect(error?.kind == .isolationUnavailable)
            #expect(!fs.exists(fs.unified + "/otk"))
            // Without limits that need controllers the run still gets a cgroup, and nothing is enabled.
            let made = try manager.create(run, limits: Limits())
            #expect(made.directories == [fs.unified + "/otk/" + run])
            #expect(!fs.exists(fs.unified + "/otk/cgroup.subtree_control"))
            #expect(!fs.exists(fs.unified + "/cgroup.subtree_control"))
        }

        @Test("a limit that cannot be written removes the run's directory")
        func failedWriteLeavesNothing() throws {
            let fs = try FakeCgroupfs()
            // otk's parent (4070 bytes) still takes cgroup.subtree_control, and the run directory
            // (4088 bytes) can be made, but memory.max inside it is past PATH_MAX: the write fails.
            let deep = try fs.deepDirectory(length: 4070 - "/otk".utf8.count)
            let name = "run-123456789-2-3"
            try fs.write(deep + "/cgroup.subtree_control", "cpu memory pids\n")
            let manager = CgroupV2Manager(root: deep, files: fs.files, parentName: "otk")
            let error = #expect(throws: OTKError.self) { _ = try manager.create(name, limits: Limits(memoryBytes: megabytes64, pids: 3)) }
            #expect(error?.kind == .isolationUnavailable)
            #expect(error?.errno == ENAMETOOLONG)
            #expect(error?.message.contains("memory.max") == true, "\(error?.message ?? "")")
            #expect(fs.list(deep + "/otk") == ["cgroup.subtree_control"], "the run directory is gone; otk's parent stays")
        }

        @Test("a run directory of that name already there is an error")
        func existingRun() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2()
            try fs.mkdir(fs.unified + "/otk/" + run)
            let error = #expect(throws: OTKError.self) { _ = try manager.create(run, limits: Limits(pids: 3)) }
            #expect(error?.errno == EEXIST)
            #expect(fs.list(fs.unified + "/otk/" + run).isEmpty)
        }
    }
}

// MARK: - counters

extension CgroupTranslationTests {
    @Suite("reading the counters") struct Stats {
        let run = "run-1-2-3"

        @Test("v1: max_usage_in_bytes, oom_control's oom_kill, pids.peak and pids.events, cpu.stat (ns to us), cpuacct usage")
        func v1() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1()
            let made = try manager.create(run, limits: Limits())
            let (memory, pids, cpu) = (fs.memory + "/otk/" + run, fs.pids + "/otk/" + run, fs.cpu + "/otk/" + run)
            try fs.write(memory + "/memory.max_usage_in_bytes", "67108864\n")
            try fs.write(memory + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
            try fs.write(pids + "/pids.peak", "32\n")
            try fs.write(pids + "/pids.events", "max 17\n")
            try fs.write(cpu + "/cpu.stat", "nr_periods 12\nnr_throttled 9\nthrottled_time 764887123\nnr_bursts 0\nburst_time 0\n")
            try fs.write(cpu + "/cpuacct.usage_user", "219315000\n")
            try fs.write(cpu + "/cpuacct.usage_sys", "6704999\n")
            let s = manager.stats(made)
            #expect(s.peakMemoryBytes == 67_108_864)
            #expect(s.oomKills == 2)
            #expect(s.peakPids == 32)
            #expect(s.pidsLimitHits == 17)
            #expect(s.throttledPeriods == 9)
            #expect(s.throttledMicroseconds == 764_887)
            #expect(s.cpuUserMicroseconds == 219_315)
            #expect(s.cpuSystemMicroseconds == 6_704)
        }

        @Test("v2: memory.peak, memory.events oom_kill, pids.peak, pids.events max, cpu.stat")
        func v2() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2()
            let made = try manager.create(run, limits: Limits())
            let dir = fs.unified + "/otk/" + run
            try fs.write(dir + "/memory.peak", "4370432\n")
            try fs.write(dir + "/memory.events", "low 0\nhigh 0\nmax 41\noom 1\noom_kill 1\noom_group_kill 0\n")
            try fs.write(dir + "/pids.peak", "5\n")
            try fs.write(dir + "/pids.events", "max 3\nmax.imposed 3\n")
            try fs.write(dir + "/cpu.stat", """
                usage_usec 1500
                user_usec 1000
                system_usec 500
                core_sched.force_idle_usec 0
                nr_periods 5
                nr_throttled 2
                throttled_usec 3000
                nr_bursts 0
                burst_usec 0

                """)
            let s = manager.stats(made)
            #expect(s.peakMemoryBytes == 4_370_432)
            #expect(s.oomKills == 1)
            #expect(s.peakPids == 5)
            #expect(s.pidsLimitHits == 3)
            #expect(s.cpuUserMicroseconds == 1000)
            #expect(s.cpuSystemMicroseconds == 500)
            #expect(s.throttledPeriods == 2)
            #expect(s.throttledMicroseconds == 3000)
        }

        @Test("counters a host does not have are nil, not 0", arguments: [CgroupVersion.v1, .v2])
        func missingCounters(version: CgroupVersion) throws {
            let fs = try FakeCgroupfs()
            let manager: CgroupManager
            if version == .v1 { manager = try fs.v1() } else { manager = try fs.v2() }
            let s = manager.stats(try manager.create(run, limits: Limits()))
            #expect(s == CgroupStats())
        }

        @Test("v1: cpuacct.usage_user without usage_sys gives neither; garbage is nil")
        func partialAndGarbage() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1()
            let made = try manager.create(run, limits: Limits())
            try fs.write(fs.cpu + "/otk/" + run + "/cpuacct.usage_user", "1000\n")
            try fs.write(fs.memory + "/otk/" + run + "/memory.max_usage_in_bytes", "lots\n")
            try fs.write(fs.pids + "/otk/" + run + "/pids.events", "max many\n")
            let s = manager.stats(made)
            #expect(s.cpuUserMicroseconds == nil && s.cpuSystemMicroseconds == nil)
            #expect(s.peakMemoryBytes == nil)
            #expect(s.pidsLimitHits == nil)
        }

        @Test("the result document's names for the counters")
        func codingKeys() throws {
            var s = CgroupStats()
            s.peakMemoryBytes = 1
            s.oomKills = 2
            s.peakPids = 3
            s.pidsLimitHits = 4
            s.cpuUserMicroseconds = 5
            s.cpuSystemMicroseconds = 6
            s.throttledPeriods = 7
            s.throttledMicroseconds = 8
            let object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(s)) as? [String: Int]
            #expect(object == ["peak_memory_bytes": 1, "oom_kills": 2, "peak_pids": 3, "pids_limit_hits": 4,
                               "cgroup_user_us": 5, "cgroup_system_us": 6, "throttled_periods": 7, "throttled_us": 8])
        }
    }
}

// MARK: - stale runs and names

extension CgroupTranslationTests {
    @Suite("run names and stale runs") struct StaleRuns {
        /// The pid of a process that has exited and been reaped.
        static func deadPid() throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/true")
            try process.run()
            process.waitUntilExit()
            let pid = process.processIdentifier
            // Vanishingly unlikely, but a reused pid would make the test meaningless.
            try #require(access("/proc/\(pid)", F_OK) != 0, "pid \(pid) was reused already")
            return pid
        }

        static var ourStart: UInt64 { RunName.startTime(getpid()) ?? 0 }

        @Test("names are run-PID-STARTTIME-N of this process, counting up, and alive while it is")
        func names() throws {
            let a = RunName.next(), b = RunName.next()
            let parts = a.split(separator: "-")
            #expect(parts.count == 4)
            #expect(parts.first == "run")
            #expect(parts.dropFirst().first.map(String.init) == String(getpid()))
            #expect(parts.dropFirst(2).first.map(String.init) == String(Self.ourStart))
            #expect(Self.ourStart > 0)
            #expect(a != b)
            #expect(Int(b.split(separator: "-")[3])! == Int(parts[3])! + 1)
            #expect(RunName.isAlive(a) && RunName.isAlive(b))
        }

        @Test("alive: this process's own name; dead: a gone pid, or a pid reused by a process started at another time")
        func isAlive() throws {
            let dead = try Self.deadPid()
            #expect(RunName.isAlive("run-\(getpid())-\(Self.ourStart)-1"))
            #expect(!RunName.isAlive("run-\(dead)-\(Self.ourStart)-1"))
            #expect(!RunName.isAlive("run-\(getpid())-\(Self.ourStart + 1)-1"), "same pid, other start time: a reused pid")
            #expect(!RunName.isAlive("run-1-\(UInt64.max)-1"), "pid 1 did not start at that tick")
        }

        @Test("names otk did not make count as alive, so they are left alone",
              arguments: ["user.slice", "otk", "run", "run-1-2", "run-1-2-3-4", "run-x-2-3", "run-1-y-3", "job-1-2-3", "run--1-2"])
        func foreignNames(name: String) {
            #expect(RunName.isAlive(name))
        }

        @Test("v1: runs of dead otk processes are removed from every parent; ours and foreign ones stay")
        func v1Removal() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v1()
            let dead = try Self.deadPid()
            let stale = "run-\(dead)-\(Self.ourStart)-1"
            let reused = "run-\(getpid())-\(Self.ourStart + 7)-2"
            let live = "run-\(getpid())-\(Self.ourStart)-1"
            let foreign = ["user.slice", "run-1-2", "build-\(dead)-1-1"]
            for parent in manager.parents {
                for name in [stale, reused, live] + foreign { try fs.mkdir(parent + "/" + name) }
            }
            // A file next to the runs is not a run.
            try fs.write(fs.memory + "/otk/run-\(dead)-1-9", "a file")
            let expected = manager.parents.flatMap { parent in [stale, reused].sorted().map { parent + "/" + $0 } }
            #expect(manager.staleRuns().sorted() == expected.sorted())
            #expect(manager.removeStale().isEmpty)
            for parent in manager.parents {
                let left = fs.list(parent).filter { !$0.hasPrefix("run-\(dead)-1-9") }
                #expect(left == ([live] + foreign).sorted(), "\(parent)")
            }
            #expect(manager.staleRuns().isEmpty)
        }

        @Test("v2: the same below the one parent")
        func v2Removal() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2()
            let dead = try Self.deadPid()
            let parent = fs.unified + "/otk"
            for name in ["run-\(dead)-5-1", "run-\(getpid())-\(Self.ourStart)-3", "system.slice"] { try fs.mkdir(parent + "/" + name) }
            #expect(manager.staleRuns() == [parent + "/run-\(dead)-5-1"])
            #expect(manager.removeStale().isEmpty)
            #expect(fs.list(parent) == ["run-\(getpid())-\(Self.ourStart)-3", "system.slice"].sorted())
        }

        @Test("a stale run that cannot be removed is a warning naming it")
        func unremovable() throws {
            let fs = try FakeCgroupfs()
            let manager = try fs.v2()
            let dead = try Self.deadPid()
            let dir = fs.unified + "/otk/run-\(dead)-5-1"
            try fs.mkdir(dir)
            try fs.write(dir + "/memory.stat", "anon 0\n")
            let warnings = manager.removeStale()
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains(dir) == true, "\(warnings)")
            #expect(fs.exists(dir))
        }

        @Test("stale runs are looked for only below otk's own parent")
        func onlyOwnParent() throws {
            let fs = try FakeCgroupfs()
            let dead = try Self.deadPid()
            let rootManager = try fs.v2(parentName: "otk")
            let userManager = CgroupV2Manager(root: fs.unified, files: fs.files, parentName: "otk-1000")
            try fs.mkdir(fs.unified + "/run-\(dead)-5-1")
            try fs.mkdir(fs.unified + "/otk-1000/run-\(dead)-5-2")
            #expect(rootManager.staleRuns().isEmpty)
            #expect(userManager.staleRuns() == [fs.unified + "/otk-1000/run-\(dead)-5-2"])
        }

        @Test("the parent: otk for root, otk-UID for anyone else")
        func parentName() throws {
            #expect(Cgroups.parentName(euid: 0) == "otk")
            #expect(Cgroups.parentName(euid: 1000) == "otk-1000")
            #expect(Cgroups.parentName(euid: 65534) == "otk-65534")
            #expect(Cgroups.parentName() == (geteuid() == 0 ? "otk" : "otk-\(geteuid())"))

            let fs = try FakeCgroupfs()
            let v1 = try fs.v1(parentName: "otk-1000")
            #expect(v1.parents == [fs.cpu + "/otk-1000", fs.memory + "/otk-1000", fs.pids + "/otk-1000"])
            let made = try v1.create("run-1-2-3", limits: Limits(pids: 4))
            #expect(made.directories == v1.parents.map { $0 + "/run-1-2-3" })
            #expect(fs.read(fs.pids + "/otk-1000/run-1-2-3/pids.max") == "4")
            #expect(!fs.exists(fs.pids + "/otk"))

            let v2 = try fs.v2(parentName: "otk-1000")
            #expect(v2.parents == [fs.unified + "/otk-1000"])
            _ = try v2.create("run-1-2-3", limits: Limits(pids: 4))
            #expect(fs.read(fs.unified + "/otk-1000/cgroup.subtree_control") == "+cpu +memory +pids")
            #expect(fs.read(fs.unified + "/otk-1000/run-1-2-3/pids.max") == "4")
            #expect(!fs.exists(fs.unified + "/otk"))
        }

        @Test("which manager a layout gets: v1 on legacy and hybrid hosts, v2 when the v1 hierarchies hold nothing useful")
        func managerChoice() {
            let v1 = CgroupLayout(kind: .hybrid, unifiedMount: "/sys/fs/cgroup/unified", unifiedControllers: [],
                                  v1Controllers: ["memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids", "cpu": "/sys/fs/cgroup/cpu",
                                                  "cpuacct": "/sys/fs/cgroup/cpuacct", "freezer": "/sys/fs/cgroup/freezer"])
            let m1 = Cgroups.manager(for: v1) as? CgroupV1Manager
            #expect(m1?.mounts == ["memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids", "cpu": "/sys/fs/cgroup/cpu"])
            let hybridV2 = CgroupLayout(kind: .hybrid, unifiedMount: "/sys/fs/cgroup/unified", unifiedControllers: ["memory", "pids"],
                                        v1Controllers: ["freezer": "/sys/fs/cgroup/freezer"])
            #expect((Cgroups.manager(for: hybridV2) as? CgroupV2Manager)?.root == "/sys/fs/cgroup/unified")
            let v2 = CgroupLayout(kind: .v2, unifiedMount: "/sys/fs/cgroup", unifiedControllers: ["cpu", "memory", "pids"], v1Controllers: [:])
            #expect((Cgroups.manager(for: v2) as? CgroupV2Manager)?.root == "/sys/fs/cgroup")
            #expect(Cgroups.manager(for: CgroupLayout(kind: .none, unifiedMount: nil, unifiedControllers: [], v1Controllers: [:])) == nil)
        }
    }
}

// MARK: - decoding [limits]

extension CgroupTranslationTests {
    @Suite("[limits] decoding") struct Decoding {
        func limits(_ body: String) throws -> Limits {
            try loadProfile("schema = 1\n\n[filesystem]\ntmpfs = [{ path = \"/tmp\" }]\n\n[limits]\n" + body + "\n").profile.limits
        }

        @Test("every key with its units")
        func everyKey() throws {
            let l = try limits("""
                memory = "2GiB"
                pids = 100
                cpus = 1.5
                wall = "1h30m"
                grace = "500ms"
                output = "512M"
                file_size = "1k"
                open_files = 64
                tmp_size = "32MiB"
                """)
            #expect(l == Limits(memoryBytes: 2 << 30, pids: 100, cpus: 1.5, wallSeconds: 5400, graceSeconds: 0.5, outputBytes: 512 << 20,
                                fileSizeBytes: 1024, openFiles: 64, tmpSizeBytes: 32 << 20))
            #expect(l.needsCgroup)
        }

        @Test("no [limits]: nothing limited, a 2 s grace period, no cgroup needed")
        func defaults() throws {
            let l = try loadProfile("schema = 1\n").profile.limits
            #expect(l == Limits())
            #expect(l.graceSeconds == 2)
            #expect(!l.needsCgroup)
            #expect(!Limits(wallSeconds: 1, outputBytes: 1, fileSizeBytes: 1, openFiles: 16, tmpSizeBytes: 1).needsCgroup)
            #expect(Limits(pids: 1).needsCgroup && Limits(cpus: 1).needsCgroup && Limits(memoryBytes: 4 << 20).needsCgroup)
        }

        static let sizeCases: [(String, UInt64)] = [
            ("\"2GiB\"", 2 << 30), ("\"512M\"", 512 << 20), ("\"512MiB\"", 512 << 20), ("\"4M\"", 4 << 20),
            ("\"1T\"", 1 << 40), ("\"65536k\"", 64 << 20), ("67108864", 64 << 20),
        ]

        @Test("sizes", arguments: sizeCases)
        func sizes(text: String, bytes: UInt64) throws {
            #expect(try limits("memory = \(text)").memoryBytes == bytes)
            #expect(try limits("output = \(text)").outputBytes == bytes)
            #expect(try limits("file_size = \(text)").fileSizeBytes == bytes)
            #expect(try limits("tmp_size = \(text)").tmpSizeBytes == bytes)
        }

        static let durationCases: [(String, Double)] = [
            ("\"500ms\"", 0.5), ("\"30s\"", 30), ("\"15m\"", 900), ("\"10min\"", 600), ("\"2h\"", 7200),
            ("\"1h30m\"", 5400), ("\"1m30s\"", 90), ("\"90\"", 90), ("\"1.5\"", 1.5), ("\"0.25s\"", 0.25),
            ("45", 45), ("2.5", 2.5), ("\"168h\"", 7 * 24 * 3600),
        ]

        @Test("durations", arguments: durationCases)
        func durations(text: String, seconds: Double) throws {
            #expect(try limits("wall = \(text)").wallSeconds == seconds)
            #expect(try limits("grace = \(text)").graceSeconds == seconds)
        }

        @Test("a grace period of 0 is allowed: SIGKILL right at the limit")
        func zeroGrace() throws {
            #expect(try limits("grace = 0").graceSeconds == 0)
            #expect(try limits("grace = \"0s\"").graceSeconds == 0)
        }

        static let cpusCases: [(String, Double)] = [("1.5", 1.5), ("0.01", 0.01), ("2", 2), ("4096", 4096)]

        @Test("cpus: fractions and whole numbers", arguments: cpusCases)
        func cpus(text: String, cpus: Double) throws {
            #expect(try limits("cpus = \(text)").cpus == cpus)
        }

        @Test("shown as written: DurationText and ByteSize format what the profile says")
        func formatting() {
            #expect(DurationText.format(5400) == "90m")
            #expect(DurationText.format(7200) == "2h")
            #expect(DurationText.format(30) == "30s")
            #expect(DurationText.format(0.5) == "500ms")
            #expect(DurationText.format(0.001) == "1ms")
            #expect(ByteSize.format(2 << 30) == "2G")
        }

        /// A profile with `[limits]` on line 4 and `line5` on line 5 (and a /tmp tmpfs unless told); the error it gives.
        func error(_ line5: String, tmpfs: Bool = true) throws -> OTKError? {
            let fsTable = tmpfs ? "\n[filesystem]\ntmpfs = [{ path = \"/tmp\" }]\n" : "\n"
            return try profileError("schema = 1\ndescription = \"x\"\n\n[limits]\n\(line5)\n# end of limits\n" + fsTable)
        }

        @Test("an unknown key names itself and the known ones, at its line")
        func unknownKey() throws {
            let e = try #require(try error("memroy = \"1G\""))
            #expect(e.location?.line == 5)
            #expect(e.message.contains("limits.memroy"), "\(e.message)")
            #expect(e.message.contains("unknown key"), "\(e.message)")
            #expect(e.message.contains("memory, open_files, output, pids, tmp_size, wall"), "\(e.message)")
        }

        static let badValueCases: [(String, String)] = [
            ("memory = \"2GB\"", "\"2GB\" is not a size"),
            ("memory = \"2 G\"", "is not a size"),
            ("memory = \"1.5G\"", "is not a size"),
            ("memory = \"2TiB\"", "between 1 byte and 1T"),
            ("memory = \"1M\"", "too little to start a process"),
            ("memory = 0", "is not a size"),
            ("memory = true", "expected a size"),
            ("output = \"0\"", "is not a size"),
            ("file_size = \"-1M\"", "is not a size"),
            ("cpus = 0", "between 0.01 and 4096"),
            ("cpus = 0.001", "between 0.01 and 4096"),
            ("cpus = 5000", "between 0.01 and 4096"),
            ("cpus = -1", "between 0.01 and 4096"),
            ("cpus = \"1.5\"", "expected a number"),
            ("cpus = nan", "expected a number"),
            ("wall = \"15 minutes\"", "is not a duration"),
            ("wall = \"15minutes\"", "is not a duration"),
            ("wall = \"1d\"", "is not a duration"),
            ("wall = \"0s\"", "between 1ms and 7 days"),
            ("wall = 0", "is not a duration"),
            ("wall = \"169h\"", "7 days"),
            ("wall = \"-5s\"", "is not a duration"),
            ("wall = \"inf\"", "is not a duration"),
            ("wall = \"\"", "is not a duration"),
            ("wall = true", "expected a duration"),
            ("grace = \"-1\"", "is not a duration between 0 and 7 days"),
            ("pids = 0", "out of range 2...4194304"), ("pids = 1", "out of range 2...4194304"),
            ("open_files = 8", "out of range 16...1048576"),
            ("open_files = \"64\"", "expected an integer"),
        ]

        @Test("bad values are refused at their line", arguments: badValueCases)
        func badValues(line: String, message: String) throws {
            let e = try #require(try error(line))
            #expect(e.location?.line == 5, "\(e)")
            let key = String(line.prefix { $0 != " " })
            #expect(e.message.contains("`limits.\(key)`"), "\(e.message)")
            #expect(e.message.contains(message), "\(e.message)")
        }

        @Test("tmp_size without a /tmp tmpfs to size is refused, naming the [limits] table")
        func tmpSizeWithoutTmp() throws {
            let e = try #require(try error("tmp_size = \"32M\"", tmpfs: false))
            #expect(e.message.contains("tmp_size"), "\(e.message)")
            #expect(e.message.contains("filesystem.tmpfs"), "\(e.message)")
            #expect(e.location?.line == 4, "\(e)")
        }

        @Test("a profile that extends strict and sets only [limits] keeps everything else of strict")
        func extendsStrict() throws {
            let dir = try FixtureDir()
            try dir.write("mine.toml", """
                schema = 1
                extends = "strict"

                [limits]
                memory = "1G"
                cpus = 0.5
                wall = "90s"
                tmp_size = "32M"
                """)
            let loader = ProfileLoader(searchPath: [dir.path, shippedProfilesDir])
            let strict = try loader.load("strict").profile
            let mine = try loader.load("mine").profile
            #expect(mine.sources == [dir.path + "/mine.toml", shippedProfilesDir + "/strict.toml"])
            #expect(mine.description == strict.description)
            #expect(mine.namespaces == strict.namespaces)
            #expect(mine.identity == strict.identity)
            #expect(mine.filesystem == strict.filesystem)
            #expect(mine.network == strict.network)
            #expect(mine.environment == strict.environment)
            #expect(mine.seccomp == strict.seccomp)
            #expect(mine.landlock == strict.landlock)
            // Tables merge key by key: the keys it sets win, strict's others stay.
            #expect(strict.limits == Limits(memoryBytes: 4 << 30, pids: 1024, wallSeconds: 1800, graceSeconds: 5, outputBytes: 16 << 20,
                                            fileSizeBytes: 4 << 30, openFiles: 4096))
            #expect(mine.limits == Limits(memoryBytes: 1 << 30, pids: 1024, cpus: 0.5, wallSeconds: 90, graceSeconds: 5, outputBytes: 16 << 20,
                                          fileSizeBytes: 4 << 30, openFiles: 4096, tmpSizeBytes: 32 << 20))
        }

        @Test("the limits that are not cgroups reach the launch spec: /tmp's size, rlimits (core always 0), the wall clock")
        func launchSpec() throws {
            let dir = try FixtureDir()
            try dir.write("mine.toml", """
                schema = 1
                extends = "strict"

                [limits]
                tmp_size = "32M"
                file_size = "1M"
                open_files = 64
                wall = "1500ms"
                grace = "250ms"
                """)
            let profile = try ProfileLoader(searchPath: [dir.path, shippedProfilesDir]).load("mine").profile
            let request = RunRequest(command: ["/usr/bin/true"], workspace: "/host/ws", extraBinds: [], extraEnvironment: [], hostEnvironment: [:],
                                     identity: LaunchSpecBuilderTests.identity, landlockABI: 7)
            let spec = try LaunchSpecBuilder(host: LaunchSpecBuilderTests.host).build(profile: profile, request: request)
            #expect(spec.operations.contains(.tmpfs(path: "/tmp", sizeBytes: 32 << 20, mode: 0o1777)))
            #expect(!spec.operations.contains { if case .tmpfs("/tmp", 256 << 20, _) = $0 { return true } else { return false } })
            #expect(spec.operations.contains(.tmpfs(path: "/dev/shm", sizeBytes: 64 << 20, mode: 0o1777)), "only /tmp is resized")
            #expect(spec.operations.contains(.rlimit(.core, 0)))
            #expect(spec.operations.contains(.rlimit(.fsize, 1 << 20)))
            #expect(spec.operations.contains(.rlimit(.nofile, 64)))
            #expect(spec.operations.contains(.wall(milliseconds: 1500, graceMilliseconds: 250)))
            #expect(spec.layers.contains("wall-clock-limit"))
            // Without those keys: core dumps still off, nothing else.
            let bare = try LaunchSpecBuilder(host: LaunchSpecBuilderTests.host).build(profile: try loadProfile("schema = 1\n").profile, request: request)
            #expect(bare.operations.filter { if case .rlimit = $0 { return true } else { return false } } == [.rlimit(.core, 0)])
            #expect(!bare.operations.contains { if case .wall = $0 { return true } else { return false } })
        }

        @Test("an error in a [limits] that extends strict names the child file and line")
        func errorInChild() throws {
            let dir = try FixtureDir()
            let path = try dir.write("mine.toml", "schema = 1\nextends = \"strict\"\n\n[limits]\npids = 32\nmemory = \"2GB\"\n")
            let e = #expect(throws: OTKError.self) { _ = try ProfileLoader(searchPath: [dir.path, shippedProfilesDir]).load("mine") }
            #expect(e?.location == SourceLocation(file: path, line: 6), "\(String(describing: e))")
        }
    }
}
