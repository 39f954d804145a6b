import Foundation
import OTKConfig
import OTKModel
import OTKPlan
import OTKSandbox

/// How the phases of a plan are isolated: a profile, or nothing at all (`--sandbox off`).
public enum Isolation: Sendable {
    case sandbox(LoadedProfile)
    case off
}

/// A dependency cache: the host directory and where the commands see it.
public struct CacheDirectory: Sendable, Codable, Equatable {
    public var name: String
    public var host: String
    public var inside: String
}

/// One command of the pipeline with everything it runs under, decided before anything runs.
public struct PreparedCommand: Sendable {
    public var command: PhaseCommand
    /// The profile of its phase (network and limits for that phase); nil with `--sandbox off`.
    public var profile: LoadedProfile?
    /// Host paths bound read-only (toolchains, and caches outside the install phase) or read-write.
    public var binds: [(source: String, target: String, readOnly: Bool)]
    public var environment: [(String, String)]
    /// Whether the phase reaches the network.
    public var network: NetworkMode?
    /// Network mode proxy: who the phase may reach besides the profile's `network.allow`.
    public var allow: [NetworkAllowlist.Entry] = []
}

/// A plan with its stack, phases, toolchains and caches resolved: nothing written, nothing run.
public struct PreparedPlan: Sendable {
    public var plan: Plan
    /// The plan as given, kept in the workspace (`.otk/plan.json`) for `otk run`.
    public var planBytes: [UInt8]
    public var resolved: ResolvedPhases
    public var isolation: Isolation
    public var toolchains: [ToolchainBinding]
    public var caches: [CacheDirectory]
    public var commands: [PreparedCommand]
    /// The workspace as the commands see it.
    public var workspaceInside: String
    public var notes: [String]

    public var detection: Detection { resolved.detection }
}

/// The outcome of one command of the pipeline (`--json`: phases[]).
public struct PhaseReport: Sendable, Codable {
    public var name: String
    public var argv: [String]
    /// "ok", "failed", or "not run" (an earlier command failed).
    public var status: String
    public var exitCode: Int32?
    public var signal: Int32?
    /// Seconds.
    public var duration: Double?
    /// CPU seconds, user + system.
    public var cpu: Double?
    public var peakMemory: UInt64?
    /// "wall", "memory", "pids", "file_size" when a limit ended it.
    public var limitHit: String?
    public var error: String?
    /// Network mode proxy: the allowlist and every connection allowed or refused.
    public var network: SandboxResult.NetworkReport?

    enum CodingKeys: String, CodingKey {
        case name, argv, status, signal, duration, cpu, error, network
        case exitCode = "exit_code", peakMemory = "peak_memory", limitHit = "limit_hit"
    }
}

/// The result document of `otk execute` and `otk run`.
public struct ExecuteResult: Sendable, Codable {
    public var projectDir: String?
    public var stack: String
    public var variant: String
    /// The profile name, or "off".
    public var sandbox: String
    public var phases: [PhaseReport]
    public var runCmd: [String]?
    /// otk's own exit code for this run (README's table).
    public var exitCode: Int32
    public var notes: [String]
    public var toolchains: [ToolchainBinding]
    public var caches: [CacheDirectory]
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case stack, variant, sandbox, phases, notes, toolchains, caches, warnings
        case projectDir = "project_dir", runCmd = "run_cmd", exitCode = "exit_code"
    }
}

/// Events of a running pipeline, for live human output.
public enum PipelineEvent: Sendable {
    case starting(index: Int, total: Int, command: PreparedCommand)
    case finished(index: Int, report: PhaseReport)
}

/// Turns a parsed plan into prepared phases, writes the workspace, and runs the phases in order:
/// the first that fails stops the pipeline, and nothing falls back.
public struct Pipeline: Sendable {
    public var stacks: [Stack]
    public var runner: SandboxRunner
    public var environment: [String: String]
    /// `--allow-host`: added to the install phase's allowlist for this run.
    public var allowHosts: [HostPattern] = []
    /// Reads the package managers' host configuration (a file's text, or nil).
    public var readFile: @Sendable (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }
    /// Where caches appear inside a sandbox.
    public static let cacheMount = "/otk-cache"

    public init(stacks: [Stack], runner: SandboxRunner, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.stacks = stacks
        self.runner = runner
        self.environment = environment
    }

    /// The host directory holding the dependency caches: $OTK_CACHE_DIR, else /var/cache/otk-deps for
    /// root, else $XDG_CACHE_HOME/otk/deps or ~/.cache/otk/deps.
    public func cacheRoot() -> String {
        if let dir = environment["OTK_CACHE_DIR"], dir.hasPrefix("/") { return dir }
        if geteuid() == 0 { return "/var/cache/otk-deps" }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/otk/deps" }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache/otk/deps"
    }

    /// Decides everything: stack, variant, each command, its profile, mounts and variables.
    /// `workspace` is the host workspace for `--sandbox off` (the commands see the host).
    public func prepare(_ plan: Plan, planBytes: [UInt8], isolation: Isolation, workspace hostWorkspace: String? = nil) throws(OTKError) -> PreparedPlan {
        let detection = try StackDetector.detect(filenames: plan.files.map(\.filename), stacks: stacks, named: plan.stack)
        let stack = detection.stack, variant = detection.variant
        let what = "stack \(stack.name)/\(variant.name)"
        var notes: [String] = []

        let base: LoadedProfile?
        if case .sandbox(let loaded) = isolation { base = loaded } else { base = nil }
        let workspaceInside = base?.profile.filesystem.workspace ?? hostWorkspace ?? "{workspace}"
        let root = cacheRoot()
        let caches = stack.caches.filter { variant.caches.contains($0.name) }.map {
            CacheDirectory(name: $0.name, host: root + "/" + $0.name, inside: base == nil ? root + "/" + $0.name : Self.cacheMount + "/" + $0.name)
        }

        // The profile of each phase: the run's, with that phase's network and the stack's tighter wall limit.
        var phaseProfiles: [PhaseName: LoadedProfile] = [:]
        var networkPhases = Set<PhaseName>()
        for phase in PhaseName.allCases {
            let settings = stack.settings(phase)
            guard let base else {
                if settings.network { networkPhases.insert(phase) }
                continue
            }
            var profile = base.profile.forPhase(phase.profilePhase)
            if let wall = settings.wallSeconds, wall < (profile.limits.wallSeconds ?? .infinity) { profile.limits.wallSeconds = wall }
            if settings.network && (profile.network == .host || profile.network == .proxy) { networkPhases.insert(phase) }
            let hash = profile == base.profile ? base.sha256 : ((try? ProfileLoader.hash(profile)) ?? base.sha256)
            phaseProfiles[phase] = LoadedProfile(profile: profile, sha256: hash)
        }

        let resolved = try PhaseResolver.resolve(plan, detection, PhaseContext(
            workspace: workspaceInside, cachePaths: Dictionary(uniqueKeysWithValues: caches.map { ($0.name, $0.inside) }),
            networkPhases: networkPhases))
        notes += resolved.notes

        // Toolchains: found on the host, shims followed; bound read-only unless the profile shows them already.
        // Only what the profile shows at its own path: a tool under a bind with another target is not where PATH says.
        let visible = base.map { $0.profile.filesystem.readOnly.filter { $0.source == $0.target }.map(\.source) } ?? ["/"]
        let sandboxPATH = (base?.profile.environment.set["PATH"] ?? environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let toolchains = try ToolchainResolver(environment: environment, visible: visible, sandboxPath: sandboxPATH)
            .resolve(variant.tools, hints: stack.toolHints, for: what)

        var extraReadOnly: [String] = []
        for pattern in variant.readOnly {
            let parent = (pattern as NSString).deletingLastPathComponent, last = (pattern as NSString).lastPathComponent
            let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
            extraReadOnly += names.sorted().filter { Glob.matches(last, $0) }.map { parent + "/" + $0 }
        }

        var pathEntries = resolved.pathPrefix
        for t in toolchains { if let e = t.pathEntry, !pathEntries.contains(e) { pathEntries.append(e) } }
        let path = (pathEntries + sandboxPATH).joined(separator: ":")

        // The install phase's allowlist in network mode proxy: the registry the package manager is
        // configured to use on this host (never the plan's own files), and --allow-host.
        var installAllow: [NetworkAllowlist.Entry] = []
        if phaseProfiles[.install]?.profile.network == .proxy && stack.settings(.install).network {
            if let name = variant.registry, let manager = PackageManager(rawValue: name) {
                let found = RegistryDiscovery(environment: environment, home: environment["HOME"], readFile: readFile).discover(manager)
                for endpoint in found.endpoints {
                    let host: HostPattern.Host = IPAddress(endpoint.host).map { .address($0) } ?? .name(endpoint.host)
                    installAllow.append(.init(pattern: HostPattern(host: host, port: endpoint.port), source: "\(name): \(endpoint.source)"))
                }
                notes += found.notes
            }
            installAllow += allowHosts.map { .init(pattern: $0, source: "--allow-host") }
        }

        var commands: [PreparedCommand] = []
        for command in resolved.commands {
            let profile = phaseProfiles[command.phase]
            var binds: [(source: String, target: String, readOnly: Bool)] = []
            if base != nil {
                var seen = Set<String>()
                for t in toolchains { if let b = t.bind, seen.insert(b).inserted { binds.append((b, b, true)) } }
                for path in extraReadOnly where seen.insert(path).inserted { binds.append((path, path, true)) }
                for c in caches { binds.append((c.host, c.inside, command.phase != .install)) }
            }
            var env = resolved.environment.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            env.append(("PATH", path))
            commands.append(PreparedCommand(command: command, profile: profile, binds: binds, environment: env,
                                            network: profile?.profile.network,
                                            allow: command.phase == .install && profile?.profile.network == .proxy ? installAllow : []))
        }
        if case .off = isolation {
            notes.append("--sandbox off: the phases run directly on this host, with your privileges and network; nothing is isolated")
        }
        return PreparedPlan(plan: plan, planBytes: planBytes, resolved: resolved, isolation: isolation, toolchains: toolchains,
                            caches: caches, commands: commands, workspaceInside: workspaceInside, notes: notes)
    }

    /// The files otk adds to the workspace: the plan itself, and run.sh (in .otk/ when the plan has its own).
    public static func workspaceFiles(_ prepared: PreparedPlan) -> [PlanFile] {
        var files = prepared.plan.files
        files.append(PlanFile(filename: PlanParser.reservedDirectory + "/plan.json", content: prepared.planBytes, mode: 0o644))
        // Any case of run.sh is the plan's own: names that differ only in case clash (PlanParser.filesClash).
        let ownRunScript = files.contains { $0.filename.lowercased() == "run.sh" }
        if let script = PhaseResolver.runScript(prepared.resolved, workspace: prepared.workspaceInside, inSubdirectory: ownRunScript) {
            let name = ownRunScript ? PlanParser.reservedDirectory + "/run.sh" : "run.sh"
            files.append(PlanFile(filename: name, content: Array(script.utf8), mode: 0o755))
        }
        return files
    }

    /// Creates the caches (0700, owned by the sandbox's user); an existing one must be a real
    /// directory owned by that user, or it is refused rather than trusted.
    public func ensureCaches(_ caches: [CacheDirectory], owner: UInt32, group: UInt32) throws(OTKError) {
        for cache in caches {
            let parent = (cache.host as NSString).deletingLastPathComponent
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            } catch {
                throw OTKError(.setupFailed, "cannot create the cache directory `\(parent)`: \(error.localizedDescription)",
                               remedy: "set OTK_CACHE_DIR to a directory you can write")
            }
            if mkdir(cache.host, 0o700) == 0 {
                if geteuid() == 0 && chown(cache.host, owner, group) != 0 {
                    throw OTKError(.setupFailed, "cannot give the cache `\(cache.host)` to uid \(owner): \(String(cString: strerror(errno)))")
                }
                continue
            }
            guard errno == EEXIST else {
                throw OTKError(.setupFailed, "cannot create the cache `\(cache.host)`: \(String(cString: strerror(errno)))",
                               remedy: "set OTK_CACHE_DIR to a directory you can write")
            }
            var st = stat()
            guard lstat(cache.host, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw OTKError(.setupFailed, "the cache `\(cache.host)` is not a directory (a symlink is never followed)",
                               remedy: "remove it; otk creates it again")
            }
            guard st.st_uid == owner else {
                throw OTKError(.setupFailed, "the cache `\(cache.host)` belongs to uid \(st.st_uid), not to uid \(owner), the sandbox's user",
                               remedy: "chown -R \(owner):\(group) \(cache.host), or remove it")
            }
        }
    }

    /// Runs the prepared commands in `workspace` in order; `only` limits them to some phases.
    public func run(_ prepared: PreparedPlan, workspace: String, only: Set<PhaseName>? = nil,
                    onEvent: (PipelineEvent) -> Void) -> ExecuteResult {
        let selected = prepared.commands.filter { only?.contains($0.command.phase) ?? true }
        var reports: [PhaseReport] = []
        var exitCode: Int32 = 0
        var warnings: [String] = []
        for (index, command) in selected.enumerated() {
            let name = command.command.phase.rawValue
            guard exitCode == 0 else {
                reports.append(PhaseReport(name: name, argv: command.command.argv, status: "not run"))
                continue
            }
            onEvent(.starting(index: index, total: selected.count, command: command))
            var report: PhaseReport
            var code: Int32
            if let profile = command.profile {
                (report, code) = runSandboxed(command, profile: profile, workspace: workspace, warnings: &warnings)
            } else {
                (report, code) = runOnHost(command, workspace: workspace)
            }
            report.name = name
            exitCode = code
            reports.append(report)
            onEvent(.finished(index: index, report: report))
        }
        let stack = prepared.detection.stack.name, variant = prepared.detection.variant.name
        let sandbox: String
        if case .sandbox(let loaded) = prepared.isolation { sandbox = loaded.profile.name } else { sandbox = "off" }
        return ExecuteResult(projectDir: workspace, stack: stack, variant: variant, sandbox: sandbox, phases: reports,
                             runCmd: prepared.resolved.runCommand, exitCode: exitCode, notes: prepared.notes,
                             toolchains: prepared.toolchains, caches: prepared.caches, warnings: warnings)
    }

    /// otk's exit code for a phase that ended with `status` and `limit`: 1 for a failed phase, 124 for
    /// the wall-clock limit, 137 for the memory or pids limit.
    static func exitCode(status: Int32, limit: String?) -> Int32 {
        if status == 0 { return 0 }
        switch limit {
        case "wall": return ExitCodes.wallClock
        case "memory", "pids": return ExitCodes.killedByLimit
        default: return 1
        }
    }

    func runSandboxed(_ command: PreparedCommand, profile: LoadedProfile, workspace: String, warnings: inout [String]) -> (PhaseReport, Int32) {
        var report = PhaseReport(name: "", argv: command.command.argv, status: "failed")
        var options = RunOptions(command: command.command.argv, workspace: workspace, binds: command.binds,
                                 environment: command.environment)
        options.allow = command.allow
        do {
            let result = try runner.run(profile, options)
            fill(&report, result)
            warnings += result.warnings
            report.status = result.status == 0 ? "ok" : "failed"
            return (report, Self.exitCode(status: result.status, limit: result.limit))
        } catch let failure as SandboxRunError {
            fill(&report, failure.result)
            warnings += failure.result.warnings
            report.error = failure.error.description
            return (report, Self.setupExitCode(failure.error))
        } catch let error as OTKError {
            report.error = error.description
            return (report, Self.setupExitCode(error))
        } catch {
            report.error = "\(error)"
            return (report, ExitCodes.internalError)
        }
    }

    /// A phase whose command could not start inside the sandbox failed as a phase (1); a sandbox
    /// that could not be built keeps its own code (4: isolation unavailable).
    static func setupExitCode(_ error: OTKError) -> Int32 {
        switch error.kind {
        case .commandNotFound, .commandNotExecutable: return 1
        default: return ExitCodes.code(for: error.kind)
        }
    }

    func fill(_ report: inout PhaseReport, _ result: SandboxResult) {
        report.exitCode = result.exitCode
        report.signal = result.signal
        report.duration = result.durationMs / 1000
        if let r = result.resources {
            report.cpu = (r.userCpuMs + r.systemCpuMs) / 1000
            report.peakMemory = r.peakMemoryBytes
        }
        report.limitHit = result.limit
        report.network = result.network
    }

    /// `--sandbox off`: the command runs as a child of otk, on the host.
    func runOnHost(_ command: PreparedCommand, workspace: String) -> (PhaseReport, Int32) {
        var report = PhaseReport(name: "", argv: command.command.argv, status: "failed")
        var env = environment
        for (k, v) in command.environment { env[k] = v }
        let process = Process()
        let argv = command.command.argv
        if argv[0].contains("/") {
            process.executableURL = URL(fileURLWithPath: argv[0].hasPrefix("/") ? argv[0] : workspace + "/" + argv[0])
            process.arguments = Array(argv.dropFirst())
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = argv
        }
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: workspace)
        var before = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &before)
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            try process.run()
        } catch {
            report.error = "cannot start `\(argv[0])`: \(error.localizedDescription)"
            return (report, 1)
        }
        process.waitUntilExit()
        var after = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &after)
        report.duration = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        report.cpu = seconds(after.ru_utime) - seconds(before.ru_utime) + seconds(after.ru_stime) - seconds(before.ru_stime)
        report.peakMemory = UInt64(after.ru_maxrss) * 1024
        let status: Int32
        if process.terminationReason == .uncaughtSignal {
            report.signal = process.terminationStatus
            status = 128 + process.terminationStatus
        } else {
            report.exitCode = process.terminationStatus
            status = process.terminationStatus
        }
        report.status = status == 0 ? "ok" : "failed"
        return (report, status == 0 ? 0 : 1)
    }
}
