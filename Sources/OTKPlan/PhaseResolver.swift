import OTKModel

/// One command of `otk execute`, fully resolved: no placeholder left.
public struct PhaseCommand: Sendable, Equatable, Codable {
    public var phase: PhaseName
    public var argv: [String]

    public init(phase: PhaseName, argv: [String]) {
        self.phase = phase
        self.argv = argv
    }
}

/// What the commands of a plan see: where the workspace and the caches are, and which phases have the network.
public struct PhaseContext: Sendable {
    /// The workspace as the commands see it (`/workspace` in a sandbox).
    public var workspace: String
    /// Each cache's directory as the commands see it, by cache name.
    public var cachePaths: [String: String]
    /// The phases that reach the network (the registry); the others run with the cache alone.
    public var networkPhases: Set<PhaseName>

    public init(workspace: String, cachePaths: [String: String], networkPhases: Set<PhaseName>) {
        self.workspace = workspace
        self.cachePaths = cachePaths
        self.networkPhases = networkPhases
    }
}

/// A plan turned into the exact commands each phase runs, with the environment they run in.
public struct ResolvedPhases: Sendable {
    public var detection: Detection
    /// In order: install, post_install, build, run.
    public var commands: [PhaseCommand]
    /// Variables every phase gets (the variant's, the caches', then the plan's `env`), PATH aside.
    public var environment: [String: String]
    /// Directories in front of the profile's PATH, before the toolchains' own.
    public var pathPrefix: [String]
    /// The run phase's argv; nil when neither the plan nor the stack gives one.
    public var runCommand: [String]?
    /// The caches the variant uses.
    public var caches: [StackCache]
    /// Decisions worth telling the user (no run command, cache-only install, ...).
    public var notes: [String]

    public func commands(_ phase: PhaseName) -> [PhaseCommand] { commands.filter { $0.phase == phase } }
}

/// Fills a stack variant's steps in for one plan. Pure: it reads the plan, never the disk.
public enum PhaseResolver {
    public static func resolve(_ plan: Plan, _ detection: Detection, _ context: PhaseContext) throws(OTKError) -> ResolvedPhases {
        let variant = detection.variant
        let stack = detection.stack
        let files = Set(plan.files.map(\.filename))
        var values = ["workspace": context.workspace, "name": PlanParser.slug(plan.name)]
        for cache in variant.caches {
            guard let path = context.cachePaths[cache] else { throw OTKError(.internalError, "no path for cache `\(cache)`") }
            values["cache:" + cache] = path
        }
        let sources = plan.files.map(\.filename).filter { name in variant.sources.contains { Glob.matches($0, StackDetector.baseName(name)) } }.sorted()
        var notes: [String] = []

        func fill(_ step: StackStep, _ phase: PhaseName) throws(OTKError) -> [String] {
            var argv: [String] = []
            for element in step.argv {
                switch element {
                case "{dependencies}": argv += plan.dependencies
                case "{sources}":
                    if sources.isEmpty {
                        throw OTKError(.badInput, "\(stack.name)/\(variant.name): the \(phase.rawValue) phase compiles the plan's \(variant.sources.joined(separator: " ")) files, and the plan has none",
                                       remedy: "add the sources, or name another stack with \"stack\"")
                    }
                    argv += sources
                default:
                    if Placeholders.names(in: element).contains("java_main") { values["java_main"] = try javaMain(plan) }
                    argv.append(Placeholders.fill(element, values))
                }
            }
            return argv
        }
        func applies(_ step: StackStep, _ phase: PhaseName) -> Bool {
            if !step.ifFiles.isEmpty && !step.ifFiles.contains(where: files.contains) { return false }
            if step.unlessFiles.contains(where: files.contains) { return false }
            if let want = step.ifDependencies, want == plan.dependencies.isEmpty { return false }
            if let want = step.ifNetwork, want != context.networkPhases.contains(phase) { return false }
            return true
        }

        var commands: [PhaseCommand] = []
        for step in variant.install where applies(step, .install) {
            commands.append(PhaseCommand(phase: .install, argv: try fill(step, .install)))
        }
        if stack.settings(.install).network && !context.networkPhases.contains(.install) && !variant.install.isEmpty {
            notes.append("install: the profile gives the install phase no network, so dependencies come from otk's cache only")
        }
        for command in plan.postInstall {
            commands.append(PhaseCommand(phase: .postInstall, argv: ["/bin/sh", "-c", command]))
        }
        if let build = plan.build {
            commands.append(PhaseCommand(phase: .build, argv: argv(of: build)))
        } else {
            for step in variant.build where applies(step, .build) {
                commands.append(PhaseCommand(phase: .build, argv: try fill(step, .build)))
            }
        }
        var runCommand: [String]?
        if let run = plan.run {
            runCommand = argv(of: run)
        } else if let step = variant.run.first(where: { applies($0, .run) }) {
            runCommand = try fill(step, .run)
        } else {
            notes.append("run: neither the plan nor \(stack.name)/\(variant.name) gives a run command; the run phase is skipped")
        }
        if let runCommand { commands.append(PhaseCommand(phase: .run, argv: runCommand)) }

        var environment: [String: String] = [:]
        for (key, value) in variant.env { environment[key] = Placeholders.fill(value, values) }
        for cache in stack.caches where variant.caches.contains(cache.name) {
            for variable in cache.env { environment[variable] = values["cache:" + cache.name] }
        }
        for (key, value) in plan.env { environment[key] = value }
        return ResolvedPhases(detection: detection, commands: commands, environment: environment,
                              pathPrefix: variant.path.map { Placeholders.fill($0, values) }, runCommand: runCommand,
                              caches: stack.caches.filter { variant.caches.contains($0.name) }, notes: notes)
    }

    /// A plan command as an argv: a shell line runs under /bin/sh -c.
    public static func argv(of command: PlanCommand) -> [String] {
        switch command {
        case .shell(let line): return ["/bin/sh", "-c", line]
        case .argv(let argv): return argv
        }
    }

    /// The class with `main` among the plan's `.java` files, qualified by its package.
    static func javaMain(_ plan: Plan) throws(OTKError) -> String {
        var found: [String] = []
        for file in plan.files where file.filename.hasSuffix(".java") {
            let text = String(decoding: file.content, as: UTF8.self)
            guard text.contains("static void main(") || text.contains("static void main (") else { continue }
            let className = String(StackDetector.baseName(file.filename).dropLast(5))
            var package: String?
            for line in text.split(separator: "\n") {
                let trimmed = line.drop { $0 == " " || $0 == "\t" }
                if trimmed.hasPrefix("package ") {
                    package = trimmed.dropFirst(8).prefix { $0 != ";" }.trimmingSpaces()
                    break
                }
            }
            found.append(package.map { "\($0).\(className)" } ?? className)
        }
        guard found.count == 1, let main = found.first else {
            throw OTKError(.badInput, found.isEmpty ? "java: no class of the plan has a `static void main(` method to run"
                                                    : "java: several classes have a main method (\(found.joined(separator: ", ")))",
                           remedy: "give the plan a `run` command, e.g. \"java -cp build Main\"")
        }
        return main
    }

    /// A POSIX shell script that runs `command` from the directory it lives in, with the phase's
    /// PATH additions and variables; `{workspace}` is that directory. Caches are left out: run.sh
    /// is for running the built project by hand, outside otk.
    /// `inSubdirectory`: the script lives one directory below the workspace (`.otk/run.sh`).
    public static func runScript(_ resolved: ResolvedPhases, workspace: String, inSubdirectory: Bool = false) -> String? {
        guard let command = resolved.runCommand else { return nil }
        func quote(_ text: String) -> String {
            // Each literal part single-quoted, the workspace as "$here".
            split(text, on: workspace).map { "'" + split($0, on: "'").joined(separator: "'\\''") + "'" }.joined(separator: "\"$here\"")
        }
        var lines = ["#!/bin/sh", "# Written by otk: runs the project's run command from this directory,",
                     "# directly on this host, WITHOUT a sandbox. `otk run DIR` runs it in the run phase's sandbox.",
                     "here=$(cd \"$(dirname \"$0\")\(inSubdirectory ? "/.." : "")\" && pwd) || exit 1", "cd \"$here\" || exit 1"]
        let cacheValues = Set(resolved.caches.flatMap { cache in cache.env.compactMap { resolved.environment[$0] } })
        for key in resolved.environment.keys.sorted() {
            guard let value = resolved.environment[key], !cacheValues.contains(value) else { continue }
            lines.append("export \(key)=\(quote(value))")
        }
        if !resolved.pathPrefix.isEmpty {
            lines.append("export PATH=" + resolved.pathPrefix.map(quote).joined(separator: ":") + ":\"$PATH\"")
        }
        lines.append("exec " + command.map(quote).joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `text` cut at every occurrence of `separator` (which is not empty).
func split(_ text: String, on separator: String) -> [String] {
    var parts: [String] = []
    var current: [UInt8] = []
    let t = Array(text.utf8), s = Array(separator.utf8)
    var i = 0
    while i < t.count {
        if !s.isEmpty && i + s.count <= t.count && Array(t[i..<(i + s.count)]) == s {
            parts.append(String(decoding: current, as: UTF8.self))
            current = []
            i += s.count
        } else {
            current.append(t[i])
            i += 1
        }
    }
    parts.append(String(decoding: current, as: UTF8.self))
    return parts
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
