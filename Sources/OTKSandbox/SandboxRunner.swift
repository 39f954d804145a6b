import Foundation
import OTKConfig
import OTKModel
import OTKProxy

/// The result document of one sandboxed command (`--json`).
public struct SandboxResult: Sendable, Codable {
    public var status: Int32
    public var exitCode: Int32?
    public var signal: Int32?
    public var durationMs: Double
    public var profile: ProfileRef
    public var layers: [String]
    public var workspace: String
    public var hostUid: UInt32
    public var hostGid: UInt32
    public var command: [String]
    public var error: ErrorRef?
    /// Things that went wrong after the command, such as a temporary workspace left behind.
    public var warnings: [String] = []
    /// What the run used, when it ran.
    public var resources: Resources?
    /// The limit that ended the run: "wall", "memory", "pids", "file_size"; nil when none did.
    public var limit: String?
    /// What otk relayed of stdout and stderr (with limits.output or --logs).
    public var output: [OutputReport]?
    /// Network mode proxy: the allowlist and every connection the egress proxy allowed or refused.
    public var network: NetworkReport?

    public struct NetworkReport: Sendable, Codable {
        public var mode: String
        /// Where the proxy is inside the sandbox.
        public var proxy: String
        /// The allowlist: each pattern and where it came from.
        public var allow: [String]
        public var connections: [ProxyRecord]
        /// Connections past the record limit, counted only.
        public var dropped: Int

        public var refused: [ProxyRecord] { connections.filter { $0.decision == "refused" } }
    }

    public struct Resources: Sendable, Codable {
        public var wallMs: Double
        public var userCpuMs: Double
        public var systemCpuMs: Double
        /// The cgroup's peak (whole sandbox) where cgroups count it, else the largest single process.
        public var peakMemoryBytes: UInt64?
        public var peakPids: UInt64?
        public var oomKilled: Bool
        public var pidsLimitHits: UInt64?
        public var cpuThrottledMs: Double?
        /// "v1", "v2", or nil when the run had no cgroup.
        public var cgroup: String?

        enum CodingKeys: String, CodingKey {
            case wallMs = "wall_ms", userCpuMs = "user_cpu_ms", systemCpuMs = "system_cpu_ms", peakMemoryBytes = "peak_memory_bytes"
            case peakPids = "peak_pids", oomKilled = "oom_killed", pidsLimitHits = "pids_limit_hits", cpuThrottledMs = "cpu_throttled_ms"
            case cgroup
        }
    }

    public struct ProfileRef: Sendable, Codable {
        public var name: String
        public var sha256: String
        public var sources: [String]
    }

    public struct ErrorRef: Sendable, Codable {
        public var kind: String
        public var message: String
        public var remedy: String?
        public var step: String?
        public var errno: Int32?

        public init(_ error: OTKError) {
            kind = error.kind.rawValue
            message = error.message
            remedy = error.remedy
            step = error.step
            errno = error.errno
        }
    }

    enum CodingKeys: String, CodingKey {
        case status, signal, profile, layers, workspace, command, error, warnings, resources, limit, output, network
        case exitCode = "exit_code", durationMs = "duration_ms", hostUid = "host_uid", hostGid = "host_gid"
    }
}

/// Options of one `otk sandbox run` besides the profile.
public struct RunOptions: Sendable {
    public var command: [String]
    /// Host directory to mount at the profile's workspace; nil for a fresh temporary one.
    public var workspace: String?
    public var binds: [(source: String, target: String, readOnly: Bool)]
    public var environment: [(String, String)]
    /// Hand otk's terminal to the command as it is. Off by default: a terminal stdin becomes
    /// /dev/null and a terminal stdout/stderr becomes a pipe otk relays, because the command
    /// runs in a session of its own, where job control cannot stop it reading what is typed.
    public var interactive: Bool
    /// A directory for stdout.log and stderr.log (capped like the relayed output).
    public var logDirectory: String?
    /// Network mode proxy: hosts allowed besides the profile's `network.allow` (--allow-host, a registry).
    public var allow: [NetworkAllowlist.Entry] = []

    public init(command: [String], workspace: String?, binds: [(source: String, target: String, readOnly: Bool)],
                environment: [(String, String)], interactive: Bool = false, logDirectory: String? = nil) {
        self.interactive = interactive
        self.logDirectory = logDirectory
        self.command = command
        self.workspace = workspace
        self.binds = binds
        self.environment = environment
    }
}

/// Runs one command under one profile: resolves the workspace and host identity,
/// builds the launch spec, runs it, and explains any failure.
public struct SandboxRunner: Sendable {
    public var supervisor: Supervisor
    public var host: HostFileSystem

    public init(supervisor: Supervisor, host: HostFileSystem = RealHostFileSystem()) {
        self.supervisor = supervisor
        self.host = host
    }

    /// Throws `OTKError` when nothing was launched, `SandboxRunError` when the launch failed during setup.
    public func run(_ loaded: LoadedProfile, _ options: RunOptions) throws -> SandboxResult {
        let workspace = try prepareWorkspace(options.workspace)
        do {
            var result = try launch(loaded, options, in: workspace)
            result.warnings += removeTemporary(workspace)
            return result
        } catch var failure as SandboxRunError {
            failure.result.warnings += removeTemporary(workspace)
            throw failure
        } catch var error as OTKError {
            // e.g. a sandbox lost before it reported: the workspace may still hold what the command wrote.
            let warnings = removeTemporary(workspace)
            if !warnings.isEmpty { error.remedy = ([error.remedy].compactMap { $0 } + warnings).joined(separator: "; ") }
            throw error
        } catch {
            _ = removeTemporary(workspace)
            throw error
        }
    }

    private func launch(_ loaded: LoadedProfile, _ options: RunOptions, in workspace: Workspace) throws -> SandboxResult {
        let landlock = HostFacts.landlock()
        var binds: [(bind: BindMount, readOnly: Bool)] = []
        for b in options.binds {
            let real = try Self.resolveRefusingWorkspaceSymlinks(b.source, workspace: workspace.path, host: host)
            guard SandboxPath.isClean(b.target), b.target != "/" else {
                throw OTKError(.badInput, "bind target `\(b.target)` is not a clean absolute path below /")
            }
            binds.append((BindMount(source: real, target: b.target, optional: false), b.readOnly))
        }
        // Network mode proxy: otk's egress proxy, on a socket only the sandbox's user may connect to.
        var egress: (proxy: EgressProxy, socket: ProxySocket, allowlist: NetworkAllowlist)?
        if loaded.profile.network == .proxy {
            var allowlist = NetworkAllowlist()
            for pattern in loaded.profile.networkAllow { allowlist.add(pattern, source: "profile \(loaded.profile.name)") }
            for entry in options.allow { allowlist.add(entry.pattern, source: entry.source) }
            let socket = try ProxySocket.create()
            let proxy = EgressProxy(allowlist: allowlist)
            do {
                try proxy.start(socketPath: socket.path)
                try socket.handOver(owner: workspace.identity)
            } catch {
                _ = proxy.stop()
                socket.remove()
                throw OTKError(.setupFailed, "network: cannot start the egress proxy: \(error)")
            }
            egress = (proxy, socket, allowlist)
        }
        var networkReport: SandboxResult.NetworkReport?
        func stopProxy() {
            guard let (proxy, socket, allowlist) = egress else { return }
            egress = nil
            let (records, dropped) = proxy.stop()
            socket.remove()
            networkReport = SandboxResult.NetworkReport(
                mode: "proxy", proxy: "127.0.0.1:\(ProxyEndpoint.port)",
                allow: allowlist.entries.map { "\($0.pattern) (\($0.source))" }, connections: records, dropped: dropped)
        }
        defer { stopProxy() }
        let request = RunRequest(command: options.command, workspace: workspace.path, extraBinds: binds,
                                 extraEnvironment: options.environment,
                                 hostEnvironment: ProcessInfo.processInfo.environment, identity: workspace.identity,
                                 cleanWorkspace: workspace.temporary, landlockABI: landlock.abi,
                                 landlockUnavailableReason: landlock.reason, proxySocket: egress?.socket.path)
        var spec = try LaunchSpecBuilder(host: host).build(profile: loaded.profile, request: request)
        if spec.operations.contains(.seccomp), let policy = SeccompResolver.policy(loaded.profile.seccomp) {
            // Cached by policy only when nothing a sandbox can write could have put it there (see SeccompCache).
            let cache = SeccompCache.forThisProcess()
            let key = cache.map { _ in SeccompCache.key(for: policy) }
            if let cache, let key, let wire = cache.load(key) {
                spec.seccompProgram = wire
            } else {
                let compiled = try SeccompCompiler.compile(policy)
                spec.seccompProgram = compiled.wire
                if !compiled.skipped.isEmpty {
                    spec.warnings.append("seccomp: \(policy.origin) allows calls libseccomp \(SeccompCompiler.libraryVersion) does not know; skipped (they stay denied): \(compiled.skipped.joined(separator: " "))")
                } else if let cache, let key {
                    cache.store(key, compiled.wire)
                }
            }
        }
        // One cgroup per run, below otk's own parent; removed on every path out of here.
        var cgroups = try prepareCgroups(loaded.profile.limits)
        var cgroupRun: CgroupRun?
        if let manager = cgroups {
            let created: Result<CgroupRun, OTKError> = Result { () throws(OTKError) in try manager.create(RunName.next(), limits: loaded.profile.limits) }
            switch created {
            case .success(let run):
                cgroupRun = run
                spec.operations += run.operations
                spec.layers.append("cgroup-\(manager.version.rawValue)")
            case .failure(let failure):
                if loaded.profile.limits.needsCgroup { throw failure }
                // Only accounting was lost: no limit needed the cgroup.
                spec.warnings.append("no cgroup for this run (\(failure.message)): the resources in the result are the processes' own counts")
                cgroups = nil
            }
        }
        defer {
            if let cgroups, let cgroupRun {
                cgroups.kill(cgroupRun)
                _ = cgroups.remove(cgroupRun)
            }
        }
        var result = SandboxResult(
            status: 0, exitCode: nil, signal: nil, durationMs: 0,
            profile: .init(name: loaded.profile.name, sha256: loaded.sha256, sources: loaded.profile.sources),
            layers: [], workspace: workspace.path, hostUid: workspace.identity.uid, hostGid: workspace.identity.gid,
            command: options.command, error: nil)
        result.warnings = spec.warnings
        // Launched and lost, never spawned, or refused during setup: still one result document, with the error.
        func failed(_ error: OTKError) -> SandboxRunError {
            stopProxy()
            result.network = networkReport
            result.status = ExitCodes.code(for: error.kind)
            result.error = .init(error)
            return SandboxRunError(error: error, result: result)
        }
        let outcome: SandboxOutcome
        do {
            // With --interactive the command holds the terminal itself: nothing passes through otk to cap or log.
            let output = options.interactive ? OutputOptions(cap: nil, logDirectory: nil)
                : OutputOptions(cap: loaded.profile.limits.outputBytes, logDirectory: options.logDirectory)
            if options.interactive && (loaded.profile.limits.outputBytes != nil || options.logDirectory != nil) {
                result.warnings.append("--interactive hands the terminal over: limits.output and --logs do not apply")
            }
            outcome = try supervisor.run(spec, withholdTerminal: !options.interactive, output: output)
        } catch {
            throw failed(error)
        }
        result.durationMs = Double(outcome.durationNanoseconds) / 1e6
        if let failure = outcome.failure {
            throw failed(Diagnosis.explain(failure, command: options.command.first ?? "", host: HostFacts.read()))
        }
        result.status = outcome.shellStatus
        result.exitCode = outcome.exitCode
        result.signal = outcome.signal
        result.layers = spec.layers
        let stats = cgroupRun.map { run in cgroups?.stats(run) ?? CgroupStats() }
        if let cgroups, let run = cgroupRun {
            cgroups.kill(run)
            result.warnings += cgroups.remove(run)
            cgroupRun = nil
        }
        result.resources = SandboxResult.Resources(
            wallMs: result.durationMs, userCpuMs: Double(outcome.userMicroseconds) / 1000, systemCpuMs: Double(outcome.systemMicroseconds) / 1000,
            peakMemoryBytes: stats?.peakMemoryBytes ?? outcome.maxResidentBytes, peakPids: stats?.peakPids,
            oomKilled: (stats?.oomKills ?? 0) > 0, pidsLimitHits: stats?.pidsLimitHits,
            cpuThrottledMs: stats?.throttledMicroseconds.map { Double($0) / 1000 }, cgroup: cgroups?.version.rawValue)
        result.limit = Self.limitThatEnded(outcome, stats: stats, limits: loaded.profile.limits)
        result.output = outcome.output.isEmpty ? nil : outcome.output
        if outcome.timedOut { result.status = ExitCodes.wallClock }
        stopProxy()
        result.network = networkReport
        return result
    }

    /// Which limit ended the run, from how it ended and what the cgroups counted.
    /// Only a run that failed was ended by a limit: a command that survives an OOM kill of a child, or
    /// forks past the pids limit and recovers, ended on its own (the counts stay in `resources`).
    static func limitThatEnded(_ outcome: SandboxOutcome, stats: CgroupStats?, limits: Limits) -> String? {
        if outcome.timedOut { return "wall" }
        guard outcome.shellStatus != 0 else { return nil }
        if (stats?.oomKills ?? 0) > 0 { return "memory" }
        // The process that passed the file size limit died of SIGXFSZ; a shell running it reports 128 + SIGXFSZ.
        if limits.fileSizeBytes != nil && (outcome.signal == SIGXFSZ || outcome.exitCode == 128 + SIGXFSZ) { return "file_size" }
        if (stats?.pidsLimitHits ?? 0) > 0 { return "pids" }
        return nil
    }

    /// The cgroup manager for this run, after removing what killed otk processes left behind; nil when the
    /// run goes without (no limit needs one and this otk may not create cgroups). Refuses when a limit needs one.
    private func prepareCgroups(_ limits: Limits) throws(OTKError) -> CgroupManager? {
        let layout = CgroupLayout.current()
        let (chosen, reason) = Cgroups.managerForThisProcess(layout)
        guard let manager = chosen else {
            if limits.needsCgroup {
                let v2 = layout.kind == .v2
                throw OTKError(.isolationUnavailable, "cgroups: the profile sets memory, pids or cpus limits, and \(reason ?? "no cgroup is available")",
                               remedy: geteuid() == 0 ? "mount cgroup2 at /sys/fs/cgroup (or the v1 memory, pids and cpu hierarchies); `otk doctor` shows the layout"
                                   : v2 ? "run otk as root, or start it in a cgroup delegated to uid \(geteuid()) (e.g. `systemd-run --user --scope -p Delegate=yes otk ...`; see docs/limits.md)"
                                   : "run otk as root, or have root delegate parents to uid \(geteuid()): mkdir -p DIR && chown -R \(geteuid()) DIR for each DIR in \(Cgroups.manager(for: layout)?.parents.joined(separator: " ") ?? "?") (see docs/limits.md)")
            }
            return nil
        }
        _ = manager.removeStale()
        return manager
    }

    /// The canonical path of a `--bind` source, resolved one component at a time as written,
    /// and every symlink's target the same way (as the kernel walks a path): a symlink met in a
    /// directory inside the workspace is refused, since the command's side chose it, however
    /// the walk gets there (an alias outside, `..`, or a host symlink pointing into the workspace).
    public static func resolveRefusingWorkspaceSymlinks(_ path: String, workspace: String, host: HostFileSystem) throws(OTKError) -> String {
        guard path.hasPrefix("/") else { throw OTKError(.badInput, "bind source `\(path)` is not an absolute path") }
        // Components split on the byte `/`, compared as bytes: see SandboxPath.
        var resolved = "/"
        var pending = SandboxPath.components(path)
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component.isEmpty || SandboxPath.same(component, ".") { continue }
            if SandboxPath.same(component, "..") {
                resolved = SandboxPath.parent(resolved)
                continue
            }
            let candidate = (resolved == "/" ? "" : resolved) + "/" + component
            switch host.kind(of: candidate) {
            case nil:
                throw OTKError(.badInput, "bind source `\(path)` does not exist", remedy: "check the --bind/--ro-bind argument")
            case .symlink?:
                if SandboxPath.isWithin(resolved, workspace) {
                    throw OTKError(.badInput, "bind source `\(path)` goes through a symlink inside the workspace (`\(candidate)`)",
                                   remedy: "workspace paths are bound only as they are, never through a symlink")
                }
                links += 1
                guard links <= 40, let target = host.linkTarget(candidate) else {
                    throw OTKError(.badInput, "bind source `\(path)` goes through too many or unreadable symlinks (`\(candidate)`)")
                }
                // The target is walked like the rest, from / or from the link's own directory.
                if target.utf8.first == UInt8(ascii: "/") {
                    resolved = "/"
                    pending = SandboxPath.components(target) + pending
                } else {
                    pending = SandboxPath.components("/" + target) + pending
                }
            default:
                resolved = candidate
            }
        }
        return resolved
    }

    /// Removes a temporary workspace, which the sandbox's init has emptied as the sandbox user
    /// (the `clean` operation): root never walks what the command left there, it only removes
    /// the empty directory. Anything left is reported, not deleted.
    private func removeTemporary(_ workspace: Workspace) -> [String] {
        guard workspace.temporary, rmdir(workspace.path) != 0, errno != ENOENT else { return [] }
        return ["temporary workspace `\(workspace.path)` was left behind (\(String(cString: strerror(errno)))); inspect and remove it yourself"]
    }

    private struct Workspace {
        var path: String
        var temporary: Bool
        var identity: HostIdentity
    }

    private func prepareWorkspace(_ given: String?) throws(OTKError) -> Workspace {
        let euid = geteuid(), egid = getegid()
        guard let given else {
            let identity = HostIdentity.choose(euid: euid, egid: egid, workspaceOwner: nil)
            var template = Array((NSTemporaryDirectory() + "/otk-workspace-XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else {
                throw OTKError(.internalError, "cannot create a temporary workspace: \(String(cString: strerror(errno)))")
            }
            let path = String(cString: made)
            if euid == 0 && chown(path, identity.uid, identity.gid) != 0 {
                let reason = String(cString: strerror(errno))
                rmdir(path)
                throw OTKError(.internalError, "cannot hand the temporary workspace to uid \(identity.uid): \(reason)")
            }
            return Workspace(path: host.realPath(path) ?? path, temporary: true, identity: identity)
        }
        guard let real = host.realPath(given), host.kind(of: real) == .directory else {
            throw OTKError(.badInput, "workspace `\(given)` is not an existing directory", remedy: "create it first")
        }
        var st = stat()
        guard stat(real, &st) == 0 else { throw OTKError(.badInput, "cannot stat workspace `\(given)`") }
        let identity = HostIdentity.choose(euid: euid, egid: egid, workspaceOwner: (st.st_uid, st.st_gid))
        if euid == 0 && st.st_uid == 0 {
            throw OTKError(.badInput, "workspace `\(given)` is owned by root, and the sandbox never runs as host root, so it could not write there",
                           remedy: "give it to an unprivileged user, e.g. `chown -R \(HostIdentity.unprivilegedDefault):\(HostIdentity.unprivilegedDefault) \(given)`, or omit --workspace for a temporary one")
        }
        if euid != 0 && access(real, W_OK) != 0 {
            throw OTKError(.badInput, "workspace `\(given)` is not writable by uid \(euid)", remedy: "use a directory you own")
        }
        return Workspace(path: real, temporary: false, identity: identity)
    }
}

/// The egress proxy's unix socket: in a directory of its own (0700, otk's), the socket itself
/// given to the sandbox's host user with mode 0600, so no other host user can use the proxy.
struct ProxySocket {
    var directory: String
    var path: String { directory + "/proxy.sock" }

    static func create() throws(OTKError) -> ProxySocket {
        // sun_path holds 108 bytes: a long TMPDIR falls back to /tmp.
        var base = NSTemporaryDirectory()
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        if base.utf8.count > 60 || !base.hasPrefix("/") { base = "/tmp" }
        var template = Array((base + "/otk-proxy-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw OTKError(.setupFailed, "network: cannot create a directory for the egress proxy's socket: \(String(cString: strerror(errno)))")
        }
        return ProxySocket(directory: String(cString: made))
    }

    func handOver(owner: HostIdentity) throws(OTKError) {
        guard chmod(path, 0o600) == 0, geteuid() != 0 || chown(path, owner.uid, owner.gid) == 0 else {
            throw OTKError(.setupFailed, "network: cannot give the proxy socket to uid \(owner.uid): \(String(cString: strerror(errno)))")
        }
    }

    func remove() {
        unlink(path)
        rmdir(directory)
    }
}

/// A failed run, with the result document that describes it.
public struct SandboxRunError: Error, Sendable {
    public var error: OTKError
    public var result: SandboxResult
}

/// The process exit codes of otk, in one place (README has the same table).
public enum ExitCodes {
    public static let badInput: Int32 = 2
    public static let denied: Int32 = 3
    public static let isolationUnavailable: Int32 = 4
    public static let wallClock: Int32 = 124
    /// A phase of `otk execute` ended by its memory or pids limit (128 + SIGKILL, as a shell reports it).
    public static let killedByLimit: Int32 = 137
    public static let internalError: Int32 = 70

    public static func code(for kind: ErrorKind) -> Int32 {
        switch kind {
        case .badInput: return badInput
        case .isolationUnavailable, .setupFailed: return isolationUnavailable
        case .commandNotFound: return 127
        case .commandNotExecutable: return 126
        case .internalError: return internalError
        }
    }
}
