import ArgumentParser
import Foundation
import OTKConfig
import OTKModel
import OTKPipeline
import OTKPlan
import OTKSandbox

func stackLoader() -> StackLoader {
    StackLoader(searchPath: StackLoader.defaultSearchPath())
}

func warn(_ text: String) {
    FileHandle.standardError.write(Data("otk: \(text)\n".utf8))
}

/// The isolation `--sandbox` names: a profile (strict, standard, a name or a file) or `off`.
func isolation(_ level: String) throws(OTKError) -> Isolation {
    if level == "off" { return .off }
    return .sandbox(try loader().load(level))
}

/// The plan limits of a run: the profile's `[plan]`, otk's defaults elsewhere.
func planLimits(_ isolation: Isolation) -> PlanLimits {
    var limits = PlanLimits()
    guard case .sandbox(let loaded) = isolation else { return limits }
    let p = loaded.profile.plan
    if let n = p.maxFiles { limits.maxFiles = n }
    if let n = p.maxFileBytes { limits.maxFileBytes = Int(clamping: n) }
    if let n = p.maxTotalBytes { limits.maxTotalBytes = Int(clamping: n) }
    // The JSON text holds every file once, escaped or base64-encoded: allow for that, and no more.
    limits.maxPlanBytes = min(limits.maxPlanBytes, limits.maxTotalBytes * 2 + (4 << 20))
    return limits
}

/// Reads at most `limit` bytes of a regular file; a bigger one is refused, never truncated.
func readBounded(_ path: String, limit: Int) throws(OTKError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw OTKError(.badInput, "cannot read `\(path)`: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    return try readBounded(fd: fd, name: path, limit: limit)
}

func readBounded(fd: Int32, name: String, limit: Int) throws(OTKError) -> [UInt8] {
    var st = stat()
    guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw OTKError(.badInput, "`\(name)` is not a regular file") }
    guard st.st_size <= limit else {
        throw OTKError(.badInput, "`\(name)` is \(st.st_size) bytes; plans are limited to \(limit) bytes (the profile's [plan] limits)")
    }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
    var total = 0
    while total < bytes.count {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw OTKError(.badInput, "cannot read `\(name)`: \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        total += n
    }
    guard total <= limit else { throw OTKError(.badInput, "`\(name)` grew past \(limit) bytes while being read") }
    return Array(bytes[0..<total])
}

/// The shell form of an argv, for display only.
func shellWords(_ argv: [String]) -> String {
    argv.map { word in
        let safe = !word.isEmpty && word.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,+@%".unicodeScalars.contains($0) }
        return safe ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// Options `execute` and `run` share.
struct PipelineOptions: ParsableArguments {
    @Option(help: ArgumentHelp("strict, standard, off (no isolation at all), or a profile name or file.", valueName: "LEVEL"))
    var sandbox = "strict"

    @Flag(help: "Print one JSON result document on stdout; the phases' own output goes to stderr.")
    var json = false
}

/// Human progress and summary lines, on stderr so that stdout is the project's own output.
struct Progress {
    var quiet: Bool

    func event(_ event: PipelineEvent) {
        guard !quiet else { return }
        switch event {
        case .starting(let index, let total, let command):
            let net = command.network.map { " net=\($0.rawValue)" } ?? ""
            warn("==> [\(index + 1)/\(total)] \(command.command.phase.rawValue)\(net): \(shellWords(command.command.argv))")
        case .finished(_, let report):
            printRefusals(report.network, prefix: "otk: ==> \(report.name)")
            if report.status != "ok" {
                var why = report.limitHit.map { " (limit: \($0))" } ?? ""
                if let e = report.error { why += ": \(e)" }
                warn("==> \(report.name) failed: \(report.signal.map { "signal \($0)" } ?? "exit \(report.exitCode.map(String.init) ?? "?")")\(why)")
            }
        }
    }

    func summary(_ result: ExecuteResult) {
        guard !quiet else { return }
        var rows = [["phase", "status", "time", "cpu", "peak mem", "limit", "command"]]
        for p in result.phases {
            rows.append([p.name, p.status == "failed" ? "failed (\(p.signal.map { "sig \($0)" } ?? String(p.exitCode ?? -1)))" : p.status,
                         p.duration.map { String(format: "%.2fs", $0) } ?? "-", p.cpu.map { String(format: "%.2fs", $0) } ?? "-",
                         p.peakMemory.map { ByteSize.formatApproximate($0) } ?? "-", p.limitHit ?? "-", shellWords(p.argv)])
        }
        let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var text = "\n"
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() { line += i < 6 ? cell.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) : cell }
            text += String(line.prefix(160)) + "\n"
        }
        text += "project: \(result.projectDir ?? "-")  stack: \(result.stack)/\(result.variant)  sandbox: \(result.sandbox)\n"
        if let run = result.runCmd { text += "run: \(shellWords(run))\n" }
        FileHandle.standardError.write(Data(text.utf8))
    }
}

extension ByteSize {
    /// 12.3M style, for tables.
    static func formatApproximate(_ bytes: UInt64) -> String {
        for (unit, shift) in [("G", 30), ("M", 20), ("k", 10)] where bytes >= (1 << shift) {
            return String(format: "%.1f%@", Double(bytes) / Double(UInt64(1) << shift), unit)
        }
        return "\(bytes)"
    }
}

/// Runs `body` with stdout pointing at stderr, so that the --json document is alone on stdout.
func withStdoutOnStderr<T>(_ enabled: Bool, _ body: () throws -> T) rethrows -> T {
    guard enabled else { return try body() }
    fflush(nil)
    let saved = dup(1)
    dup2(2, 1)
    defer {
        fflush(nil)
        if saved >= 0 {
            dup2(saved, 1)
            close(saved)
        }
    }
    return try body()
}

/// Prints the prepared pipeline for --dry-run.
func describe(_ prepared: PreparedPlan, workspace: String) -> String {
    var out: [String] = []
    out.append("plan:      \(prepared.plan.name) (\(prepared.plan.files.count) files)")
    out.append("stack:     \(prepared.detection.summary)")
    out.append("workspace: \(workspace) (seen as \(prepared.workspaceInside))")
    switch prepared.isolation {
    case .off: out.append("sandbox:   off (no isolation)")
    case .sandbox(let loaded):
        let fs = loaded.profile.filesystem
        out.append("sandbox:   \(loaded.profile.name) \(loaded.sha256) (\(loaded.profile.sources.joined(separator: " <- ")))")
        out.append("mounts of every phase (the profile's):")
        for b in fs.readOnly { out.append("  ro     \(b.source)\(b.optional ? " (if present)" : "")") }
        for b in fs.readWrite { out.append("  rw     \(b.source)") }
        for t in fs.tmpfs { out.append("  tmpfs  \(t.path) (\(ByteSize.format(t.sizeBytes)))") }
        out.append("  rw     \(workspace) -> \(fs.workspace)")
    }
    for t in prepared.toolchains {
        out.append("toolchain: \(t.tool) = \(t.real)\(t.via.map { " (via \($0))" } ?? "")\(t.bind.map { ", bound read-only: \($0)" } ?? "")")
    }
    for c in prepared.caches { out.append("cache:     \(c.name) = \(c.host) -> \(c.inside) (read-write in install, read-only after)") }
    for note in prepared.notes { out.append("note:      \(note)") }
    out.append("commands:")
    for (i, c) in prepared.commands.enumerated() {
        out.append("  \(i + 1). [\(c.command.phase.rawValue)] \(shellWords(c.command.argv))")
        if let p = c.profile {
            out.append("     profile \(p.profile.name) \(p.sha256), network \(p.profile.network.rawValue), wall \(p.profile.limits.wallSeconds.map(DurationText.format) ?? "none")")
            if p.profile.network == .proxy {
                let allow = p.profile.networkAllow.map { "\($0) (profile)" } + c.allow.map { "\($0.pattern) (\($0.source))" }
                out.append("     allow  \(allow.isEmpty ? "nothing: every connection through the proxy is refused" : allow.joined(separator: ", "))")
            }
        }
        for b in c.binds { out.append("     \(b.readOnly ? "ro" : "rw")     \(b.source)\(b.source == b.target ? "" : " -> \(b.target)")") }
        out.append("     env    \(c.environment.map { "\($0.0)=\($0.1)" }.joined(separator: " "))")
    }
    return out.joined(separator: "\n")
}

struct ExecuteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "execute",
        abstract: "Write a plan's files into a new workspace and run its install, build and run phases, each in its own sandbox.",
        discussion: """
            Exit codes: 0 every phase succeeded; 1 a phase failed (its status is in the summary and in --json);
            2 bad input (plan, profile, stack, missing toolchain); 4 the sandbox could not be set up;
            124 a phase hit its wall-clock limit; 137 a phase was killed by its memory or pids limit.
            """)

    @Argument(help: "The plan (JSON, docs/plan-format.md).") var plan: String
    @OptionGroup var options: PipelineOptions
    @Option(help: ArgumentHelp("The new workspace (default ./otk-out/<slug>); an existing name gets -2, -3, ...", valueName: "DIR"))
    var output: String?
    @Flag(help: "Print the resolved phases (every argv, mount and profile) and run nothing.") var dryRun = false
    @Option(name: .customLong("allow-host"), help: ArgumentHelp("Also allow this host to the install phase through the egress proxy, for this run (`host`, `*.suffix`, a literal address; default ports 80 and 443). Repeatable.", valueName: "HOST[:PORT]"),
            transform: allowHostPattern)
    var allowHosts: [HostPattern] = []

    func run() throws {
        do {
            try execute()
        } catch let error as OTKError {
            throw failWithDocument(error, json: options.json)
        }
    }

    func execute() throws {
        let iso = try isolation(options.sandbox)
        let limits = planLimits(iso)
        let bytes = try readBounded(plan, limit: limits.maxPlanBytes)
        let parsed = try PlanParser.parse(bytes, file: plan, limits: limits)
        var pipeline = Pipeline(stacks: try stackLoader().loadAll(), runner: SandboxRunner(supervisor: Supervisor(launcherPath: Supervisor.defaultLauncherPath())))
        pipeline.allowHosts = allowHosts
        var prepared = try pipeline.prepare(parsed, planBytes: bytes, isolation: iso)
        if !allowHosts.isEmpty && !prepared.commands.contains(where: { $0.command.phase == .install && $0.network == .proxy }) {
            throw OTKError(.badInput, "--allow-host adds to the install phase's egress proxy, and this run has none (sandbox `\(options.sandbox)`, stack \(prepared.detection.stack.name)/\(prepared.detection.variant.name))",
                           remedy: "use a profile whose install phase has network mode proxy (strict and standard do), for a stack whose install reaches the network")
        }
        let target = output ?? "otk-out/" + PlanParser.slug(parsed.name)
        let absolute = target.hasPrefix("/") ? target : FileManager.default.currentDirectoryPath + "/" + target
        let parent = (absolute as NSString).deletingLastPathComponent, name = (absolute as NSString).lastPathComponent
        if dryRun {
            let text = describe(prepared, workspace: absolute)
            if options.json { print(jsonString(DryRun(prepared))) } else { print(text) }
            return
        }
        if output == nil {
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        let identity = HostIdentity.choose(euid: geteuid(), egid: getegid(), workspaceOwner: nil)
        let owner: (uid: UInt32, gid: UInt32)? = geteuid() == 0 ? (identity.uid, identity.gid) : nil
        // Caches first: a refused cache must not leave a workspace behind.
        try pipeline.ensureCaches(prepared.caches, owner: identity.uid, group: identity.gid)
        let workspace = try PlanMaterializer.write(Plan(name: parsed.name, files: Pipeline.workspaceFiles(prepared)),
                                                   into: parent, slug: name, owner: owner)
        if case .off = iso {
            prepared = try pipeline.prepare(parsed, planBytes: bytes, isolation: iso, workspace: workspace)
        }
        let progress = Progress(quiet: false)
        if !options.json { warn("workspace \(workspace); stack \(prepared.detection.summary)") }
        for note in prepared.notes { warn("note: \(note)") }
        let result = withStdoutOnStderr(options.json) {
            pipeline.run(prepared, workspace: workspace, onEvent: progress.event)
        }
        for warning in result.warnings { warn("warning: \(warning)") }
        if options.json { print(jsonString(result)) } else { progress.summary(result) }
        if result.exitCode != 0 { throw ExitCode(result.exitCode) }
    }
}

/// The --dry-run --json document.
struct DryRun: Encodable {
    var stack: String
    var variant: String
    var evidence: String
    var notes: [String]
    var toolchains: [ToolchainBinding]
    var caches: [CacheDirectory]
    var phases: [Phase]

    struct Phase: Encodable {
        var name: String
        var argv: [String]
        var profile: String?
        var profileSha256: String?
        var network: String?
        /// Network mode proxy: the allowlist, each entry with where it came from.
        var allow: [String]?
        var mounts: [String]
        var env: [String]
        enum CodingKeys: String, CodingKey {
            case name, argv, profile, network, allow, mounts, env
            case profileSha256 = "profile_sha256"
        }
    }

    init(_ p: PreparedPlan) {
        stack = p.detection.stack.name
        variant = p.detection.variant.name
        evidence = p.detection.summary
        notes = p.notes
        toolchains = p.toolchains
        caches = p.caches
        phases = p.commands.map { c in
            var mounts: [String] = []
            if let profile = c.profile?.profile {
                mounts += profile.filesystem.readOnly.map { "ro \($0.source)" } + profile.filesystem.readWrite.map { "rw \($0.source)" }
                mounts += profile.filesystem.tmpfs.map { "tmpfs \($0.path)" }
            }
            mounts += c.binds.map { "\($0.readOnly ? "ro" : "rw") \($0.source)\($0.source == $0.target ? "" : " -> \($0.target)")" }
            let allow = c.network == .proxy ? (c.profile?.profile.networkAllow.map(\.description) ?? []) + c.allow.map { "\($0.pattern) (\($0.source))" } : nil
            return Phase(name: c.command.phase.rawValue, argv: c.command.argv, profile: c.profile?.profile.name,
                         profileSha256: c.profile?.sha256, network: c.network?.rawValue, allow: allow, mounts: mounts,
                         env: c.environment.map { "\($0.0)=\($0.1)" })
        }
    }
}

struct RunProjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an already-built project (a workspace `otk execute` wrote) in the run phase's sandbox.",
        discussion: "The plan is read from DIR/.otk/plan.json and resolved again: stacks, toolchains and mounts come from otk, never from the workspace.")

    @Argument(help: "The project directory.") var directory: String
    @OptionGroup var options: PipelineOptions

    func run() throws {
        do {
            let iso = try isolation(options.sandbox)
            let limits = planLimits(iso)
            let workspace = URL(fileURLWithPath: directory).standardizedFileURL.path
            // The workspace was writable by the sandbox: nothing in it is followed through a symlink.
            let dirFD = open(workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dirFD >= 0 else { throw OTKError(.badInput, "`\(directory)` is not a directory") }
            defer { close(dirFD) }
            let recordFD = openat(dirFD, PlanParser.reservedDirectory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard recordFD >= 0 else {
                throw OTKError(.badInput, "`\(directory)` has no \(PlanParser.reservedDirectory)/ directory (a symlink is not followed)",
                               remedy: "run `otk execute PLAN` first; `otk run` runs the workspaces it writes")
            }
            defer { close(recordFD) }
            let planName = workspace + "/" + PlanParser.reservedDirectory + "/plan.json"
            let planFD = openat(recordFD, "plan.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard planFD >= 0 else {
                throw OTKError(.badInput, "cannot open `\(planName)`: \(String(cString: strerror(errno))) (a symlink is not followed)")
            }
            defer { close(planFD) }
            let bytes = try readBounded(fd: planFD, name: planName, limit: limits.maxPlanBytes)
            let parsed = try PlanParser.parse(bytes, file: planName, limits: limits)
            let pipeline = Pipeline(stacks: try stackLoader().loadAll(), runner: SandboxRunner(supervisor: Supervisor(launcherPath: Supervisor.defaultLauncherPath())))
            let prepared = try pipeline.prepare(parsed, planBytes: bytes, isolation: iso, workspace: workspace)
            guard prepared.resolved.runCommand != nil else {
                throw OTKError(.badInput, "the plan has no run command, and \(prepared.detection.stack.name)/\(prepared.detection.variant.name) gives none")
            }
            // The sandbox runs as the workspace's owner (SandboxRunner), so the caches must be that user's too.
            var st = stat()
            let ownerOfWorkspace: (uid: UInt32, gid: UInt32)? = fstat(dirFD, &st) == 0 ? (st.st_uid, st.st_gid) : nil
            let identity = HostIdentity.choose(euid: geteuid(), egid: getegid(), workspaceOwner: ownerOfWorkspace)
            try pipeline.ensureCaches(prepared.caches, owner: identity.uid, group: identity.gid)
            let progress = Progress(quiet: options.json)
            let result = withStdoutOnStderr(options.json) {
                pipeline.run(prepared, workspace: workspace, only: [.run], onEvent: progress.event)
            }
            if options.json { print(jsonString(result)) }
            if result.exitCode != 0 { throw ExitCode(result.exitCode) }
        } catch let error as OTKError {
            throw failWithDocument(error, json: options.json)
        }
    }
}

/// With --json, a run that never started still prints one document: the error and the exit code.
func failWithDocument(_ error: OTKError, json: Bool) -> ExitCode {
    let code = fail(error)
    if json {
        struct Doc: Encodable {
            var exitCode: Int32
            var error: SandboxResult.ErrorRef
            var location: String?
            enum CodingKeys: String, CodingKey { case error, location, exitCode = "exit_code" }
        }
        print(jsonString(Doc(exitCode: code.rawValue, error: .init(error), location: error.location?.description)))
    }
    return code
}

struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "detect", abstract: "Show which stack and variant a directory's files would select, and why.")
    @Argument(help: "A project directory, or a plan file (.json).") var path: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        do { try detect() } catch { throw fail(error) }
    }

    func detect() throws(OTKError) {
        do {
            var files: [String] = []
            var named: String?
            if path.hasSuffix(".json") {
                let plan = try PlanParser.parse(try readBounded(path, limit: PlanLimits().maxPlanBytes), file: path)
                files = plan.files.map(\.filename)
                named = plan.stack
            } else {
                files = try Self.listFiles(path)
            }
            let detection = try StackDetector.detect(filenames: files, stacks: try stackLoader().loadAll(), named: named)
            if json {
                struct Doc: Encodable { var stack: String; var variant: String; var scores: [[String: String]] }
                print(jsonString(Doc(stack: detection.stack.name, variant: detection.variant.name,
                                     scores: detection.scores.map { ["stack": $0.stack, "score": String($0.score), "evidence": $0.evidence.joined(separator: " ")] })))
            } else {
                print("\(detection.stack.name)/\(detection.variant.name)")
                for s in detection.scores { print("  \(s.stack): \(s.score) (\(s.evidence.joined(separator: ", ")))") }
            }
        }
    }

    /// Relative paths of the files under `root`, without descending into symlinks or the usual build output.
    static func listFiles(_ root: String) throws(OTKError) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw OTKError(.badInput, "`\(root)` is not a directory") }
        var files: [String] = []
        let skipped: Set<String> = [".git", "node_modules", ".venv", "target", "build", ".otk", "__pycache__"]
        while let entry = walker.nextObject() as? String {
            if skipped.contains((entry as NSString).lastPathComponent) { walker.skipDescendants(); continue }
            if walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular { files.append(entry) }
            if files.count >= 100_000 { break }
        }
        return files
    }
}

struct StacksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stacks", abstract: "List the stack definitions, their markers and variants.")

    func run() throws {
        let stacks: [Stack]
        do { stacks = try stackLoader().loadAll() } catch { throw fail(error) }
        do {
            for stack in stacks {
                print("\(stack.name): \(stack.description)\n  file: \(stack.source)")
                print("  markers: " + stack.markers.map { "\(($0.files + $0.globs).joined(separator: " "))=\($0.weight)" }.joined(separator: "; "))
                for v in stack.variants {
                    print("  - \(v.name)\(v.isDefault ? " (default)" : ""): \(v.description)")
                }
            }
        }
    }
}
