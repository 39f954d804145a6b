import Foundation
import OTKConfig
import OTKModel

/// One line of `otk doctor`.
public struct DoctorCheck: Sendable, Codable {
    public enum State: String, Sendable, Codable { case ok, warning, missing }
    public var name: String
    public var state: State
    public var detail: String
    public var remedy: String?
}

/// Whether one profile can run on this host, found by really launching `true` under it.
public struct ProfileReadiness: Sendable, Codable {
    public var name: String
    public var path: String
    public var runnable: Bool
    public var detail: String
}

public struct DoctorReport: Sendable, Codable {
    public var checks: [DoctorCheck]
    public var profiles: [ProfileReadiness]
}

/// Reports what this host supports and which profiles can therefore run.
public struct Doctor: Sendable {
    public var launcherPath: String
    public var loader: ProfileLoader

    public init(launcherPath: String, loader: ProfileLoader) {
        self.launcherPath = launcherPath
        self.loader = loader
    }

    public func report() -> DoctorReport {
        let facts = HostFacts.read()
        var checks: [DoctorCheck] = []
        let userns = "max_user_namespaces=\(facts.maxUserNamespaces.map(String.init) ?? "?")"
            + (facts.unprivilegedUsernsClone.map { ", unprivileged_userns_clone=\($0)" } ?? "")
            + (facts.apparmorRestrictsUserns.map { ", apparmor_restrict_unprivileged_userns=\($0)" } ?? "")
        let namespaces = probeNamespaces()
        for (kind, err) in namespaces {
            let ok = err == 0
            checks.append(DoctorCheck(name: "\(kind) namespace", state: ok ? .ok : .missing,
                                      detail: ok ? (kind == "user" ? "can be created (\(userns))" : "can be created")
                                                 : "cannot be created: \(String(cString: strerror(err)))",
                                      remedy: ok ? nil : (kind == "user" ? facts.userNamespaceRemedy : "the kernel or a container runtime forbids it")))
        }
        if namespaces.isEmpty {
            checks.append(DoctorCheck(name: "namespaces", state: .missing, detail: "cannot run \(launcherPath) --check",
                                      remedy: "build the package (swift build) or set OTK_LAUNCHER"))
        }
        let cg = facts.cgroup
        let cgDetail: String
        switch cg.kind {
        case .v2: cgDetail = "cgroup v2 at \(cg.unifiedMount ?? "?"), controllers: \(cg.unifiedControllers.joined(separator: " "))"
        case .v1: cgDetail = "cgroup v1: \(cg.v1Controllers.keys.sorted().joined(separator: " "))"
        case .hybrid: cgDetail = "hybrid: v1 controllers \(cg.v1Controllers.keys.sorted().joined(separator: " ")); cgroup2 at \(cg.unifiedMount ?? "?") with \(cg.unifiedControllers.isEmpty ? "no controllers" : cg.unifiedControllers.joined(separator: " "))"
        case .none: cgDetail = "no cgroup hierarchy mounted"
        }
        let delegated = delegationNote(cg)
        checks.append(DoctorCheck(name: "cgroups", state: cg.kind == .none ? .missing : .ok, detail: cgDetail + delegated,
                                  remedy: cg.kind == .none ? "mount cgroup2 at /sys/fs/cgroup" : nil))
        checks.append(seccompCheck(facts))
        checks.append(Self.landlockCheck(abi: facts.landlockABI, reason: facts.landlockReason))
        checks.append(DoctorCheck(name: "kernel", state: .ok, detail: "Linux \(facts.kernelRelease), otk running as uid \(geteuid())", remedy: nil))
        return DoctorReport(checks: checks, profiles: profileReadiness())
    }

    /// Whether the kernel filters syscalls, with which actions, and whether otk's own filter compiles here.
    private func seccompCheck(_ facts: HostFacts) -> DoctorCheck {
        guard facts.seccompAvailable else {
            return DoctorCheck(name: "seccomp", state: .missing, detail: "this kernel has no seccomp",
                               remedy: "a kernel with CONFIG_SECCOMP_FILTER; profiles with seccomp enabled refuse to run")
        }
        let actions = ((try? String(contentsOfFile: "/proc/sys/kernel/seccomp/actions_avail", encoding: .utf8)) ?? "?")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var detail = "filters supported; actions: \(actions); libseccomp \(SeccompCompiler.libraryVersion) for \(SeccompCompiler.nativeArchitecture)"
        do {
            let compiled = try SeccompCompiler.compile(SeccompBuiltin.policy(defaultAction: .errno(1), deny: .errno(1)))
            detail += "; built-in filter: \(compiled.programs.map { String($0.count / 8) }.joined(separator: " + ")) instructions"
            return DoctorCheck(name: "seccomp", state: .ok, detail: detail, remedy: nil)
        } catch {
            return DoctorCheck(name: "seccomp", state: .missing, detail: detail + "; the built-in filter does not compile: \(error.message)",
                               remedy: "install libseccomp 2.5 or later (scripts/install-deps.sh)")
        }
    }

    /// What each Landlock ABI adds, for `otk doctor`.
    static let landlockFeatures: [(abi: Int, what: String)] = [
        (1, "file system access"), (2, "renames and links across directories"), (3, "truncation"),
        (4, "TCP bind and connect by port"), (5, "ioctl on devices"), (6, "scoping of signals and abstract unix sockets"),
        (7, "audit logging of denials"),
    ]

    static func landlockCheck(abi: Int?, reason: String?) -> DoctorCheck {
        guard let abi else {
            return DoctorCheck(name: "landlock", state: .missing, detail: reason ?? "unavailable",
                               remedy: "profiles with `landlock.enforce = \"required\"` (strict, standard) refuse to run; \(reason ?? "")")
        }
        let have = landlockFeatures.filter { $0.abi <= abi }.map(\.what)
        let lack = landlockFeatures.filter { $0.abi > abi }.map { "\($0.what) (ABI \($0.abi))" }
        return DoctorCheck(name: "landlock", state: lack.isEmpty || abi >= 6 ? .ok : .warning,
                           detail: "ABI \(abi): \(have.joined(separator: ", "))" + (lack.isEmpty ? "" : "; not enforced here: \(lack.joined(separator: ", "))"),
                           remedy: abi >= 6 ? nil : "a newer kernel (6.12+ for ABI 6) enforces more; otk applies what this one offers")
    }

    /// Which backend otk uses here, where its runs go, whether this user may create them, and stale runs.
    private func delegationNote(_ cg: CgroupLayout) -> String {
        let (chosen, reason) = Cgroups.managerForThisProcess(cg)
        guard let manager = chosen else {
            return "; otk has no cgroup here: \(reason ?? "unknown"); profiles with memory, pids or cpus limits refuse to run (see docs/limits.md)"
        }
        var note = "; otk uses \(manager.version.rawValue) below \(manager.parents.joined(separator: ", "))"
        if geteuid() != 0 { note += " (delegated to uid \(geteuid()))" }
        let stale = manager.staleRuns()
        if !stale.isEmpty { note += "; \(stale.count) stale run cgroup(s) of killed otk processes, removed by the next run: \(stale.joined(separator: " "))" }
        return note
    }

    /// Runs `otk-launcher --check`: one line per namespace kind, "NAME ERRNO".
    private func probeNamespaces() -> [(String, Int32)] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcherPath)
        process.arguments = ["--check"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let err = Int32(parts[1]) else { return nil }
            return (String(parts[0]), err)
        }
    }

    /// Launches `true` under each profile: the only honest answer to "can it run here".
    private func profileReadiness() -> [ProfileReadiness] {
        loader.list().map { entry in
            do {
                let loaded = try loader.load(entry.path)
                let runner = SandboxRunner(supervisor: Supervisor(launcherPath: launcherPath))
                let result = try runner.run(loaded, RunOptions(command: ["true"], workspace: nil, binds: [], environment: []))
                return ProfileReadiness(name: entry.name, path: entry.path, runnable: result.status == 0,
                                        detail: result.status == 0 ? "runs (layers: \(result.layers.joined(separator: ", ")))" : "`true` exited \(result.status)")
            } catch let failure as SandboxRunError {
                return ProfileReadiness(name: entry.name, path: entry.path, runnable: false, detail: failure.error.description)
            } catch {
                return ProfileReadiness(name: entry.name, path: entry.path, runnable: false, detail: "\(error)")
            }
        }
    }
}
