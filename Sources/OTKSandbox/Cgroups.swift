import Foundation
import Glibc
import OTKModel

/// The few file operations otk performs on a cgroup hierarchy. The real one never creates
/// files (cgroupfs makes its own); unit tests run the same code against a directory tree.
public struct CgroupFiles: Sendable {
    /// For a tree in a temporary directory standing in for cgroupfs: writes create files.
    public var createsFiles: Bool

    public init(createsFiles: Bool = false) {
        self.createsFiles = createsFiles
    }

    /// 0 or an errno value; EEXIST counts as success only with `existingOK`.
    public func makeDirectory(_ path: String, existingOK: Bool) -> Int32 {
        if mkdir(path, 0o755) == 0 { return 0 }
        return errno == EEXIST && existingOK ? 0 : errno
    }

    public func removeDirectory(_ path: String) -> Int32 {
        rmdir(path) == 0 ? 0 : errno
    }

    /// 0 or an errno value.
    public func write(_ path: String, _ text: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC | (createsFiles ? O_CREAT | O_TRUNC : 0), 0o644)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        return n == bytes.count ? 0 : (n < 0 ? errno : EIO)
    }

    public func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    public func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public func subdirectories(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { name in
            var st = stat()
            return lstat(path + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }.sorted()
    }

    /// "key value" lines (memory.events, cpu.stat, memory.oom_control) as a dictionary.
    public func keyed(_ path: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in (read(path) ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = UInt64(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }

    public func number(_ path: String) -> UInt64? {
        read(path).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// What a run's cgroups counted. nil: this host's cgroups do not say.
public struct CgroupStats: Sendable, Codable, Equatable {
    public var peakMemoryBytes: UInt64?
    /// Processes the kernel's OOM killer killed inside the sandbox.
    public var oomKills: UInt64?
    public var peakPids: UInt64?
    /// How often a fork failed at the pids limit.
    public var pidsLimitHits: UInt64?
    public var cpuUserMicroseconds: UInt64?
    public var cpuSystemMicroseconds: UInt64?
    /// Periods in which the CPU quota throttled the sandbox, and for how long in all.
    public var throttledPeriods: UInt64?
    public var throttledMicroseconds: UInt64?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case peakMemoryBytes = "peak_memory_bytes", oomKills = "oom_kills", peakPids = "peak_pids", pidsLimitHits = "pids_limit_hits"
        case cpuUserMicroseconds = "cgroup_user_us", cpuSystemMicroseconds = "cgroup_system_us"
        case throttledPeriods = "throttled_periods", throttledMicroseconds = "throttled_us"
    }
}

/// One run's cgroups: a directory per hierarchy (v1) or one directory (v2).
public struct CgroupRun: Sendable, Equatable {
    public var version: CgroupVersion
    public var directories: [String]

    /// What the launcher does with them: v1, write the sandbox's pid into each before releasing it;
    /// v2, create the sandbox in it (clone3 with CLONE_INTO_CGROUP).
    public var operations: [LaunchOperation] {
        directories.map { version == .v2 ? .cgroupV2($0) : .cgroupV1($0) }
    }
}

public enum CgroupVersion: String, Sendable, Codable { case v1, v2 }

/// Creates, limits, reads and removes otk's cgroups, only ever below otk's own parent
/// directory (`otk/`, or `otk-UID/` for a delegated user) in each hierarchy it uses; nothing
/// outside it is written.
public protocol CgroupManager: Sendable {
    var version: CgroupVersion { get }
    /// The `otk/` parent directories this manager owns.
    var parents: [String] { get }
    var files: CgroupFiles { get }
    func create(_ name: String, limits: Limits) throws(OTKError) -> CgroupRun
    func stats(_ run: CgroupRun) -> CgroupStats
    /// Kills every process left in the run's cgroups.
    func kill(_ run: CgroupRun)
}

extension CgroupManager {
    /// Removes the run's directories (they must be empty: everything was killed); warnings for any left.
    public func remove(_ run: CgroupRun) -> [String] {
        var warnings: [String] = []
        for dir in run.directories.reversed() {
            var err = files.removeDirectory(dir)
            // A process that was just killed may still be leaving the cgroup.
            var tries = 0
            while err == EBUSY && tries < 50 {
                kill(run)
                usleep(2000)
                err = files.removeDirectory(dir)
                tries += 1
            }
            if err != 0 && err != ENOENT { warnings.append("cgroup `\(dir)` could not be removed: \(String(cString: strerror(err)))") }
        }
        return warnings
    }

    /// Run directories below otk's parents whose otk process is gone (killed before it could remove them).
    public func staleRuns() -> [String] {
        parents.flatMap { parent in
            files.subdirectories(parent).filter { !RunName.isAlive($0) }.map { parent + "/" + $0 }
        }
    }

    /// Kills what is left in stale run directories and removes them; returns what could not be removed.
    public func removeStale() -> [String] {
        var warnings: [String] = []
        for dir in staleRuns() {
            let run = CgroupRun(version: version, directories: [dir])
            warnings += remove(run)
        }
        return warnings
    }

    func fail(_ what: String, _ path: String, _ err: Int32) -> OTKError {
        OTKError(.isolationUnavailable, "cgroups: cannot \(what) `\(path)`: \(String(cString: strerror(err)))",
                 remedy: geteuid() == 0 ? "`otk doctor` shows this host's cgroup layout"
                     : "run otk as root, or in a cgroup delegated to your user (see docs/limits.md)",
                 errno: err)
    }

    func write(_ path: String, _ text: String) throws(OTKError) {
        let err = files.write(path, text)
        if err != 0 { throw fail("write \(text.trimmingCharacters(in: .whitespacesAndNewlines)) to", path, err) }
    }

    func killProcs(in dir: String) {
        for line in (files.read(dir + "/cgroup.procs") ?? "").split(separator: "\n") {
            if let pid = Int32(line), pid > 1 { Glibc.kill(pid, SIGKILL) }
        }
    }
}

/// Names of run directories: `run-PID-STARTTIME-N`, so that a later otk can tell whether the
/// otk process that made one still lives (the start time guards against a reused pid).
public enum RunName {
    nonisolated(unsafe) private static var counter = 0

    public static func next() -> String {
        counter += 1
        return "run-\(getpid())-\(startTime(getpid()) ?? 0)-\(counter)"
    }

    /// The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); nil for a
    /// process that is gone or a zombie (killed, not yet reaped: it will never remove its cgroups).
    static func startTime(_ pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    /// Whether the otk process that named `name` is still running. Names not made by otk count as alive (left alone).
    public static func isAlive(_ name: String) -> Bool {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "run", let pid = Int32(parts[1]), let start = UInt64(parts[2]) else { return true }
        return startTime(pid) == start
    }
}

extension Limits {
    /// The controllers these limits need, in the order otk reports a missing one.
    var cgroupControllers: [String] {
        [("memory", memoryBytes != nil), ("pids", pids != nil), ("cpu", cpus != nil)].filter(\.1).map(\.0)
    }

    /// CPU time per 100 ms period, at least 1 ms (the kernel's minimum quota).
    var cpuQuotaMicroseconds: Int? { cpus.map { max(1000, Int(($0 * 100_000).rounded())) } }
}

extension CgroupLayout {
    /// This process's view of the mounted hierarchies.
    public static func current() -> CgroupLayout {
        detect(mountinfo: (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "")
    }
}

/// cgroup v1: a directory in each of the memory, pids and cpu hierarchies.
public struct CgroupV1Manager: CgroupManager {
    public let version = CgroupVersion.v1
    public var files: CgroupFiles
    /// Mount points of the hierarchies otk uses, by controller.
    public var mounts: [String: String]

    /// otk's parent directory in each hierarchy: `otk` for root, `otk-UID` for a user root delegated one to.
    public var parentName: String

    public init(mounts: [String: String], files: CgroupFiles = CgroupFiles(), parentName: String = Cgroups.parentName()) {
        self.mounts = mounts.filter { ["memory", "pids", "cpu"].contains($0.key) }
        self.files = files
        self.parentName = parentName
    }

    public var parents: [String] { Array(Set(mounts.values)).sorted().map { $0 + "/" + parentName } }

    public func create(_ name: String, limits: Limits) throws(OTKError) -> CgroupRun {
        for controller in limits.cgroupControllers where mounts[controller] == nil {
            throw OTKError(.isolationUnavailable, "cgroups: the profile limits \(controller), and this host mounts no v1 \(controller) hierarchy",
                           remedy: "mount the \(controller) controller, or remove the limit from the profile")
        }
        var run = CgroupRun(version: .v1, directories: [])
        do throws(OTKError) {
            for parent in parents {
                let err = files.makeDirectory(parent, existingOK: true)
                if err != 0 { throw fail("create", parent, err) }
                let dir = parent + "/" + name
                let made = files.makeDirectory(dir, existingOK: false)
                if made != 0 { throw fail("create", dir, made) }
                run.directories.append(dir)
            }
            if let memory = mounts["memory"].map({ $0 + "/\(parentName)/" + name }) {
                if let bytes = limits.memoryBytes {
                    try write(memory + "/memory.limit_in_bytes", "\(bytes)")
                    // No swap: memory+swap equal to memory, where the kernel accounts swap; else keep it out of swap.
                    if files.exists(memory + "/memory.memsw.limit_in_bytes") {
                        try write(memory + "/memory.memsw.limit_in_bytes", "\(bytes)")
                    } else {
                        try write(memory + "/memory.swappiness", "0")
                    }
                }
            }
            if let pids = limits.pids, let dir = mounts["pids"].map({ $0 + "/\(parentName)/" + name }) {
                try write(dir + "/pids.max", "\(pids)")
            }
            if let quota = limits.cpuQuotaMicroseconds, let dir = mounts["cpu"].map({ $0 + "/\(parentName)/" + name }) {
                try write(dir + "/cpu.cfs_period_us", "100000")
                try write(dir + "/cpu.cfs_quota_us", "\(quota)")
            }
        } catch {
            _ = remove(run)
            throw error
        }
        return run
    }

    private func dir(_ run: CgroupRun, _ controller: String) -> String? {
        guard let mount = mounts[controller] else { return nil }
        return run.directories.first { $0.hasPrefix(mount + "/\(parentName)/") }
    }

    public func stats(_ run: CgroupRun) -> CgroupStats {
        var s = CgroupStats()
        if let memory = dir(run, "memory") {
            s.peakMemoryBytes = files.number(memory + "/memory.max_usage_in_bytes")
            // failcnt does not count OOM kills on v1; memory.oom_control's oom_kill does.
            s.oomKills = files.keyed(memory + "/memory.oom_control")["oom_kill"]
        }
        if let pids = dir(run, "pids") {
            s.pidsLimitHits = files.read(pids + "/pids.events").flatMap { text in
                text.split(separator: "\n").first { $0.hasPrefix("max ") }.flatMap { UInt64($0.dropFirst(4)) }
            }
            s.peakPids = files.number(pids + "/pids.peak")
        }
        if let cpu = dir(run, "cpu") {
            let stat = files.keyed(cpu + "/cpu.stat")
            s.throttledPeriods = stat["nr_throttled"]
            s.throttledMicroseconds = stat["throttled_time"].map { $0 / 1000 }
            if let user = files.number(cpu + "/cpuacct.usage_user"), let system = files.number(cpu + "/cpuacct.usage_sys") {
                s.cpuUserMicroseconds = user / 1000
                s.cpuSystemMicroseconds = system / 1000
            }
        }
        return s
    }

    public func kill(_ run: CgroupRun) {
        for dir in run.directories { killProcs(in: dir) }
    }
}

/// cgroup v2: one directory below `otk/` in the unified hierarchy.
public struct CgroupV2Manager: CgroupManager {
    public let version = CgroupVersion.v2
    public var files: CgroupFiles
    /// The unified hierarchy's mount point, or the delegated directory otk may use.
    public var root: String

    public var parentName: String
    /// `root` is a cgroup delegated to this (unprivileged) user, holding otk's own process: otk may
    /// enable controllers in it, after moving itself into a leaf (`otk-supervisor`), since a cgroup
    /// with processes of its own cannot pass controllers down.
    public var delegated: Bool

    public init(root: String, files: CgroupFiles = CgroupFiles(), parentName: String = Cgroups.parentName(), delegated: Bool = false) {
        self.root = root
        self.files = files
        self.parentName = parentName
        self.delegated = delegated
    }

    public var parents: [String] { [root + "/" + parentName] }

    func controllers(_ path: String) -> Set<String> {
        Set((files.read(path) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    public func create(_ name: String, limits: Limits) throws(OTKError) -> CgroupRun {
        let parent = root + "/" + parentName
        if delegated { try passControllersDown() }
        // The root's own subtree_control belongs to whoever runs the host (or delegated the subtree): otk only reads it.
        let offered = controllers(root + "/cgroup.subtree_control")
        for controller in limits.cgroupControllers where !offered.contains(controller) {
            throw OTKError(.isolationUnavailable, "cgroups: the profile limits \(controller), and `\(root)` does not pass the \(controller) controller down",
                           remedy: "enable it for children: echo +\(controller) > \(root)/cgroup.subtree_control")
        }
        let err = files.makeDirectory(parent, existingOK: true)
        if err != 0 { throw fail("create", parent, err) }
        let wanted = ["cpu", "memory", "pids"].filter { offered.contains($0) }
        let enabled = controllers(parent + "/cgroup.subtree_control")
        if !wanted.allSatisfy(enabled.contains) {
            try write(parent + "/cgroup.subtree_control", wanted.map { "+" + $0 }.joined(separator: " "))
        }
        let dir = parent + "/" + name
        let made = files.makeDirectory(dir, existingOK: false)
        if made != 0 { throw fail("create", dir, made) }
        let run = CgroupRun(version: .v2, directories: [dir])
        do throws(OTKError) {
            if let bytes = limits.memoryBytes {
                try write(dir + "/memory.max", "\(bytes)")
                if files.exists(dir + "/memory.swap.max") { try write(dir + "/memory.swap.max", "0") }
            }
            if let pids = limits.pids { try write(dir + "/pids.max", "\(pids)") }
            if let quota = limits.cpuQuotaMicroseconds { try write(dir + "/cpu.max", "\(quota) 100000") }
        } catch {
            _ = remove(run)
            throw error
        }
        return run
    }

    /// In a delegated cgroup: moves otk into a leaf of its own and enables the controllers its
    /// cgroup offers for its children. Only ever inside the cgroup delegated to this user.
    func passControllersDown() throws(OTKError) {
        let available = controllers(root + "/cgroup.controllers").intersection(["cpu", "memory", "pids"])
        guard !available.isSubset(of: controllers(root + "/cgroup.subtree_control")) else { return }
        let leaf = root + "/otk-supervisor"
        let err = files.makeDirectory(leaf, existingOK: true)
        if err != 0 { throw fail("create", leaf, err) }
        try write(leaf + "/cgroup.procs", "\(getpid())")
        try write(root + "/cgroup.subtree_control", available.sorted().map { "+" + $0 }.joined(separator: " "))
    }

    public func stats(_ run: CgroupRun) -> CgroupStats {
        var s = CgroupStats()
        guard let dir = run.directories.first else { return s }
        s.peakMemoryBytes = files.number(dir + "/memory.peak")
        s.oomKills = files.keyed(dir + "/memory.events")["oom_kill"]
        s.peakPids = files.number(dir + "/pids.peak")
        s.pidsLimitHits = files.keyed(dir + "/pids.events")["max"]
        let cpu = files.keyed(dir + "/cpu.stat")
        s.cpuUserMicroseconds = cpu["user_usec"]
        s.cpuSystemMicroseconds = cpu["system_usec"]
        s.throttledPeriods = cpu["nr_throttled"]
        s.throttledMicroseconds = cpu["throttled_usec"]
        return s
    }

    public func kill(_ run: CgroupRun) {
        for dir in run.directories {
            if files.write(dir + "/cgroup.kill", "1") != 0 { killProcs(in: dir) }
        }
    }
}

/// The manager for this host's layout: v2 where the unified hierarchy holds the controllers,
/// v1 on legacy and hybrid hosts (where the unified mount holds none worth using).
public enum Cgroups {
    /// The manager this otk process uses, or nil (with why): root uses otk's parent in each hierarchy;
    /// an unprivileged otk uses, on v2, the cgroup delegated to it, and on v1, parents root made for it.
    public static func managerForThisProcess(_ layout: CgroupLayout, euid: UInt32 = geteuid(),
                                             procSelfCgroup: @autoclosure () -> String = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
        -> (manager: CgroupManager?, reason: String?) {
        guard let manager = manager(for: layout) else { return (nil, "this host mounts no cgroup hierarchy otk can use") }
        if euid == 0 { return (manager, nil) }
        if manager.version == .v2 {
            if let delegated = delegatedV2(layout, procSelfCgroup: procSelfCgroup()) { return (delegated, nil) }
            return (nil, "uid \(euid) runs in no cgroup delegated to it")
        }
        if manager.parents.allSatisfy({ access($0, W_OK) == 0 }) { return (manager, nil) }
        return (nil, "uid \(euid) may not create cgroups (\(manager.parents.joined(separator: ", ")) not writable)")
    }

    /// For an unprivileged otk on cgroup v2: its own cgroup, when delegated to it (writable, as
    /// systemd's Delegate=yes or an administrator's chown makes it).
    public static func delegatedV2(_ layout: CgroupLayout, procSelfCgroup: String) -> CgroupV2Manager? {
        guard let unified = layout.unifiedMount,
              var own = procSelfCgroup.split(separator: "\n").first(where: { $0.hasPrefix("0::") }).map({ String($0.dropFirst(3)) }),
              own != "/" else { return nil }
        // A previous run of this process already moved it into its leaf: the delegated cgroup is the leaf's parent.
        if own.hasSuffix("/otk-supervisor") { own = SandboxPath.parent(own) }
        guard own != "/" else { return nil }
        let dir = unified + own
        guard ["", "/cgroup.procs", "/cgroup.subtree_control"].allSatisfy({ access(dir + $0, W_OK) == 0 }) else { return nil }
        return CgroupV2Manager(root: dir, parentName: "otk", delegated: true)
    }

    /// `otk` when root runs otk; `otk-UID` for a user, in a directory root made and gave to that user.
    public static func parentName(euid: UInt32 = geteuid()) -> String {
        euid == 0 ? "otk" : "otk-\(euid)"
    }

    public static func manager(for layout: CgroupLayout) -> CgroupManager? {
        switch layout.kind {
        case .v2:
            return layout.unifiedMount.map { CgroupV2Manager(root: $0) }
        case .v1, .hybrid:
            let useful = layout.v1Controllers.filter { ["memory", "pids", "cpu"].contains($0.key) }
            if useful.isEmpty, layout.kind == .hybrid, let unified = layout.unifiedMount,
               !Set(layout.unifiedControllers).isDisjoint(with: ["memory", "pids", "cpu"]) {
                return CgroupV2Manager(root: unified)
            }
            return useful.isEmpty ? nil : CgroupV1Manager(mounts: useful)
        case .none:
            return nil
        }
    }
}
