import Foundation
import OTKModel

/// Finds and reads the stack definitions (`stacks/NAME.toml`, docs/stacks.md).
public struct StackLoader: Sendable {
    /// Directories searched for `*.toml`; the first directory that has a name wins.
    public var searchPath: [String]

    public init(searchPath: [String]) {
        self.searchPath = searchPath
    }

    /// $OTK_STACK_PATH, the `stacks/` directory of otk's checkout or installation, /etc/otk/stacks.
    public static func defaultSearchPath(environment: [String: String] = ProcessInfo.processInfo.environment,
                                         executable: String = ProfileLoader.runningExecutable()) -> [String] {
        ProfileLoader.searchPath(for: "stacks", variable: "OTK_STACK_PATH", environment: environment, executable: executable)
    }

    /// The stack files in the search path, by name.
    public func list() -> [(name: String, path: String)] {
        ProfileLoader.tomlFiles(in: searchPath)
    }

    /// Every stack in the search path. One broken file is an error: detection must never quietly
    /// run without a stack that would have won.
    public func loadAll() throws(OTKError) -> [Stack] {
        var stacks: [Stack] = []
        for entry in list() {
            stacks.append(try Self.load(file: entry.path, name: entry.name))
        }
        if stacks.isEmpty {
            throw OTKError(.badInput, "no stack definitions found", remedy: "searched \(searchPath.joined(separator: ":")); set OTK_STACK_PATH")
        }
        return stacks
    }

    public static func load(file: String, name: String) throws(OTKError) -> Stack {
        try StackDecoder.decode(try ConfigDocument.parse(try ProfileLoader.read(file), file: file), name: name)
    }
}

/// Turns one stack file into a validated `Stack`; every rule of docs/stacks.md lives here.
enum StackDecoder {
    static let schemaVersion = 1
    /// Placeholders an argv, PATH entry or variable may hold (besides `{cache:NAME}`).
    static let placeholders: Set<String> = ["workspace", "name", "dependencies", "sources", "java_main"]
    /// Placeholders that stand for several argv elements, so they must be a whole element.
    static let splatting: Set<String> = ["dependencies", "sources"]

    static func decode(_ document: ConfigDocument, name: String) throws(OTKError) -> Stack {
        let config = LayeredConfig(layers: [document])
        let top = ConfigReader(config)
        try top.requireOnly(["schema", "description", "markers", "tools", "caches", "phases", "variants"])
        guard let schema = try top.integer("schema", in: 1...Int.max) else {
            throw OTKError(.badInput, "missing `schema = \(schemaVersion)`", location: SourceLocation(file: document.file, line: 1))
        }
        guard schema == schemaVersion else { throw top.error("schema", "schema \(schema) is not supported (this otk reads schema \(schemaVersion))") }
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 >= 0x61 && $0 <= 0x7A || $0 >= 0x30 && $0 <= 0x39 || $0 == 0x2D }) else {
            throw OTKError(.badInput, "stack file name `\(name).toml`: a stack's name is lowercase letters, digits and '-'",
                           location: SourceLocation(file: document.file, line: nil))
        }
        let markers = try decodeMarkers(top, "markers")
        if markers.isEmpty { throw top.error("markers", "a stack needs at least one marker, or it can never be detected") }

        var toolHints: [String: String] = [:]
        if let tools = try top.sub("tools") {
            for key in tools.table.keys.sorted() {
                guard let hint = try tools.string(key), !hint.isEmpty else { throw tools.error(key, "expected the install hint, a non-empty string") }
                toolHints[key] = hint
            }
        }

        var caches: [StackCache] = []
        if let table = try top.sub("caches") {
            for key in table.table.keys.sorted() {
                guard isName(key) else { throw table.error(key, "a cache name is lowercase letters, digits and '-'") }
                guard let r = try table.sub(key) else { continue }
                try r.requireOnly(["env"])
                let env = try r.strings("env") ?? []
                for variable in env where !EnvironmentName.isValid(variable) { throw r.error("env", "`\(variable)` is not a variable name") }
                caches.append(StackCache(name: key, env: env))
            }
        }

        var phases: [String: StackPhaseSettings] = [:]
        if let table = try top.sub("phases") {
            try table.requireOnly(["install", "build", "run"])
            for key in table.table.keys.sorted() {
                guard let r = try table.sub(key) else { continue }
                try r.requireOnly(["network", "wall"])
                phases[key] = StackPhaseSettings(network: try r.bool("network") ?? false, wallSeconds: try r.duration("wall", minimum: 0.001))
            }
        }

        guard let variantTable = try top.sub("variants"), !variantTable.table.isEmpty else {
            throw top.error("variants", "a stack needs at least one variant (`[variants.NAME]`)")
        }
        var variants: [StackVariant] = []
        for key in variantTable.table.keys.sorted() {
            guard isName(key) else { throw variantTable.error(key, "a variant name is lowercase letters, digits and '-'") }
            guard let r = try variantTable.sub(key) else { continue }
            variants.append(try decodeVariant(r, name: key, toolHints: toolHints, caches: Set(caches.map(\.name))))
        }
        let defaults = variants.filter(\.isDefault)
        if defaults.count != 1 {
            var error = variantTable.error(nil, "exactly one variant must say `default = true` (found \(defaults.isEmpty ? "none" : defaults.map(\.name).joined(separator: ", ")))")
            // `variants` has no line of its own (only `[variants.NAME]` headers): point at the second default, or the first variant.
            error.location = variantTable.config.location(of: ["variants"] + (defaults.count > 1 ? [defaults[1].name, "default"] : [variants[0].name]))
            throw error
        }
        return Stack(name: name, description: try top.string("description") ?? "", source: document.file, markers: markers,
                     toolHints: toolHints, caches: caches, phases: phases, variants: variants)
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { $0 >= 0x61 && $0 <= 0x7A || $0 >= 0x30 && $0 <= 0x39 || $0 == 0x2D }
    }

    static func decodeVariant(_ r: ConfigReader, name: String, toolHints: [String: String], caches: Set<String>) throws(OTKError) -> StackVariant {
        try r.requireOnly(["description", "default", "markers", "tools", "caches", "sources", "path", "env", "read_only", "registry", "install", "build", "run"])
        var v = StackVariant(name: name)
        if let registry = try r.string("registry") {
            guard PackageManager(rawValue: registry) != nil else {
                throw r.error("registry", "`\(registry)` is not one of \(PackageManager.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            v.registry = registry
        }
        v.description = try r.string("description") ?? ""
        v.isDefault = try r.bool("default") ?? false
        v.markers = try decodeMarkers(r, "markers")
        v.tools = try r.strings("tools") ?? []
        for tool in v.tools {
            guard !tool.isEmpty, !tool.contains("/") else { throw r.error("tools", "`\(tool)` is not a program name (no '/')") }
            guard toolHints[tool] != nil else { throw r.error("tools", "tool `\(tool)` has no install hint in [tools]", element: tool) }
        }
        v.caches = try r.strings("caches") ?? []
        for cache in v.caches where !caches.contains(cache) {
            throw r.error("caches", "no cache `\(cache)` in [caches]", element: cache)
        }
        v.sources = try r.strings("sources") ?? []
        v.path = try r.strings("path") ?? []
        for entry in v.path { try checkPlaceholders(entry, r, "path", caches: Set(v.caches), whole: false) }
        if let env = try r.sub("env") {
            for key in env.table.keys.sorted() {
                guard EnvironmentName.isValid(key) else { throw env.error(key, "`\(key)` is not a variable name") }
                guard let value = try env.string(key) else { continue }
                try checkPlaceholders(value, env, key, caches: Set(v.caches), whole: false)
                v.env[key] = value
            }
        }
        v.readOnly = try r.strings("read_only") ?? []
        for path in v.readOnly {
            let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard path.hasPrefix("/"), path != "/", !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
                  !parts.dropLast().contains(where: { $0.contains("*") || $0.contains("?") }) else {
                throw r.error("read_only", "`\(path)` is not a clean absolute path (only its last component may hold * or ?)", element: path)
            }
        }
        v.install = try decodeSteps(r, "install", caches: Set(v.caches))
        v.build = try decodeSteps(r, "build", caches: Set(v.caches))
        v.run = try decodeSteps(r, "run", caches: Set(v.caches))
        return v
    }

    static func decodeMarkers(_ r: ConfigReader, _ key: String) throws(OTKError) -> [StackMarker] {
        guard let items = try r.array(key) else { return [] }
        var out: [StackMarker] = []
        for item in items {
            guard case .table(let t) = item else { throw r.error(key, "expected an array of tables such as { files = [\"go.mod\"], weight = 100 }") }
            for k in t.keys.sorted() where !["files", "globs", "weight"].contains(k) {
                throw r.error(key, "unknown key `\(k)` in a marker (known: files, globs, weight)")
            }
            guard case .integer(let weight)? = t["weight"], (1...1000).contains(weight) else {
                throw r.error(key, "every marker needs `weight`, an integer from 1 to 1000")
            }
            let files = try strings(t["files"], r, key, "files")
            let globs = try strings(t["globs"], r, key, "globs")
            if files.isEmpty && globs.isEmpty { throw r.error(key, "a marker needs `files` or `globs`") }
            out.append(StackMarker(files: files, globs: globs, weight: weight))
        }
        return out
    }

    static func decodeSteps(_ r: ConfigReader, _ key: String, caches: Set<String>) throws(OTKError) -> [StackStep] {
        guard let items = try r.array(key) else { return [] }
        var out: [StackStep] = []
        for item in items {
            guard case .table(let t) = item else { throw r.error(key, "expected an array of steps such as { argv = [\"make\"] }") }
            let known = ["argv", "if_files", "unless_files", "if_dependencies", "if_network"]
            for k in t.keys.sorted() where !known.contains(k) {
                throw r.error(key, "unknown key `\(k)` in a step (known: \(known.joined(separator: ", ")))")
            }
            let argv = try strings(t["argv"], r, key, "argv")
            guard !argv.isEmpty, !argv[0].isEmpty else { throw r.error(key, "every step needs a non-empty `argv`") }
            for element in argv { try checkPlaceholders(element, r, key, caches: caches, whole: true) }
            var step = StackStep(argv: argv)
            step.ifFiles = try strings(t["if_files"], r, key, "if_files")
            step.unlessFiles = try strings(t["unless_files"], r, key, "unless_files")
            for (k, value) in [("if_dependencies", t["if_dependencies"]), ("if_network", t["if_network"])] {
                guard let value else { continue }
                guard case .bool(let b) = value else { throw r.error(key, "`\(k)` in a step must be true or false") }
                if k == "if_dependencies" { step.ifDependencies = b } else { step.ifNetwork = b }
            }
            out.append(step)
        }
        return out
    }

    static func strings(_ value: ConfigValue?, _ r: ConfigReader, _ key: String, _ field: String) throws(OTKError) -> [String] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw r.error(key, "`\(field)` must be an array of strings") }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw r.error(key, "`\(field)` must be an array of strings") }
            out.append(s)
        }
        return out
    }

    /// Every `{...}` names a known placeholder; the ones that become several arguments stand alone.
    static func checkPlaceholders(_ text: String, _ r: ConfigReader, _ key: String, caches: Set<String>, whole: Bool) throws(OTKError) {
        for name in Placeholders.names(in: text) {
            if name.hasPrefix("cache:") {
                let cache = String(name.dropFirst(6))
                guard caches.contains(cache) else { throw r.error(key, "`{\(name)}`: the variant does not use cache `\(cache)`", element: text) }
                continue
            }
            guard placeholders.contains(name) else {
                throw r.error(key, "unknown placeholder `{\(name)}` (known: \(placeholders.sorted().joined(separator: ", ")), cache:NAME)", element: text)
            }
            if splatting.contains(name) && (!whole || text != "{\(name)}") {
                throw r.error(key, "`{\(name)}` stands for several arguments: it must be a whole argv element", element: text)
            }
        }
    }
}
