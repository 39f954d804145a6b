import COTKSystem
import Foundation

/// Facts about the host's isolation features, read from /proc and /sys and by asking the kernel.
public struct HostFacts: Sendable {
    public var maxUserNamespaces: Int?
    /// Debian/Ubuntu's kernel.unprivileged_userns_clone, where the kernel has it.
    public var unprivilegedUsernsClone: Int?
    /// Ubuntu's kernel.apparmor_restrict_unprivileged_userns, where the kernel has it.
    public var apparmorRestrictsUserns: Int?
    public var cgroup: CgroupLayout
    public var seccompAvailable: Bool
    /// The Landlock ABI version, or nil when the kernel has none (with the reason).
    public var landlockABI: Int?
    public var landlockReason: String?
    public var kernelRelease: String

    public static func read() -> HostFacts {
        func int(_ path: String) -> Int? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let landlock = landlock()
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return HostFacts(
            maxUserNamespaces: int("/proc/sys/user/max_user_namespaces"),
            unprivilegedUsernsClone: int("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmorRestrictsUserns: int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            cgroup: CgroupLayout.current(),
            seccompAvailable: cotk_seccomp_mode() >= 0,
            landlockABI: landlock.abi,
            landlockReason: landlock.reason,
            kernelRelease: release)
    }

    /// The kernel's Landlock ABI, or nil and why there is none. One syscall: cheap enough for every launch.
    public static func landlock() -> (abi: Int?, reason: String?) {
        let abi = cotk_landlock_abi()
        if abi >= 0 { return (Int(abi), nil) }
        let reason = -abi == Int(EOPNOTSUPP) ? "Landlock is built in but disabled (add `landlock` to the lsm= boot parameter)"
            : -abi == Int(ENOSYS) ? "this kernel has no Landlock (needs Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)"
            : String(cString: strerror(Int32(-abi)))
        return (nil, reason)
    }

    /// Why user namespaces are refused and what to do, from the sysctls that commonly cause it.
    public var userNamespaceRemedy: String {
        if maxUserNamespaces == 0 { return "user.max_user_namespaces is 0: run `sysctl -w user.max_user_namespaces=15000`" }
        if unprivilegedUsernsClone == 0 && geteuid() != 0 {
            return "kernel.unprivileged_userns_clone is 0: run `sysctl -w kernel.unprivileged_userns_clone=1`, or run otk as root"
        }
        if apparmorRestrictsUserns == 1 {
            return "AppArmor restricts unprivileged user namespaces: run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or give otk an AppArmor profile with `userns,`"
        }
        return "the kernel refused; inside a container, start it with user namespaces allowed (e.g. without a seccomp profile that blocks clone/unshare); `otk doctor` shows more"
    }
}

/// Which cgroup hierarchies the host mounts.
public struct CgroupLayout: Sendable, Equatable {
    public enum Kind: String, Sendable { case v1, v2, hybrid, none }
    public var kind: Kind
    /// Mount point of the unified (v2) hierarchy, if any.
    public var unifiedMount: String?
    /// Controllers enabled in the unified hierarchy's root.
    public var unifiedControllers: [String]
    /// v1 controllers and their mount points.
    public var v1Controllers: [String: String]

    /// The controllers cgroup v1 has; anything else in a v1 mount's options is a flag.
    public static let knownV1Controllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
        "perf_event", "hugetlb", "pids", "rdma", "misc",
    ]

    /// Reads /proc/self/mountinfo text. Hybrid means both kinds are mounted: the
    /// v1 hierarchies then hold the controllers, whatever the v2 one shows.
    public static func detect(mountinfo: String, controllersOf: (String) -> [String] = { path in
        ((try? String(contentsOfFile: path + "/cgroup.controllers", encoding: .utf8)) ?? "").split(separator: " ").map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }.filter { !$0.isEmpty }
    }) -> CgroupLayout {
        var unified: String?
        var v1: [String: String] = [:]
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash + 3 < fields.count + 1, fields.count > dash + 2, fields.count > 4 else { continue }
            let mountPoint = String(fields[4])
            let fstype = fields[dash + 1]
            if fstype == "cgroup2" { unified = unified ?? mountPoint }
            if fstype == "cgroup", fields.count > dash + 3 {
                // Super options mix controllers with flags (xattr, clone_children, name=...): keep only controllers.
                for option in fields[dash + 3].split(separator: ",") where knownV1Controllers.contains(String(option)) {
                    v1[String(option)] = mountPoint
                }
            }
        }
        let controllers = unified.map(controllersOf) ?? []
        let kind: Kind = unified != nil && !v1.isEmpty ? .hybrid : unified != nil ? .v2 : v1.isEmpty ? .none : .v1
        return CgroupLayout(kind: kind, unifiedMount: unified, unifiedControllers: controllers, v1Controllers: v1)
    }
}
