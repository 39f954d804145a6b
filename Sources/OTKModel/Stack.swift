/// The phases of `otk execute`, in the order they run.
public enum PhaseName: String, Sendable, Codable, CaseIterable, Comparable {
    case install
    /// The plan's `post_install` shell commands: after install, under the build phase's sandbox.
    case postInstall = "post_install"
    case build
    case run

    public static func < (a: Self, b: Self) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }

    /// The profile phase whose network and cache access this phase gets.
    public var profilePhase: String { self == .postInstall ? "build" : rawValue }
}

/// Evidence that a project is of a stack (or a variant): when any file of the plan matches,
/// the marker adds its weight, once, however many files match.
public struct StackMarker: Sendable, Hashable, Codable {
    /// Paths relative to the project root, matched exactly (`go.mod`, `src/main.rs`).
    public var files: [String]
    /// Patterns matched against the base name of every file, anywhere (`*.py`); `*` and `?` only.
    public var globs: [String]
    public var weight: Int

    public init(files: [String] = [], globs: [String] = [], weight: Int) {
        self.files = files
        self.globs = globs
        self.weight = weight
    }
}

/// One command of a phase, as a stack defines it, before placeholders are filled in.
public struct StackStep: Sendable, Hashable, Codable {
    /// The argv; elements may hold placeholders (docs/stacks.md).
    public var argv: [String]
    /// Run only when the plan has at least one of these files (paths from the root).
    public var ifFiles: [String]
    /// Run only when the plan has none of these files.
    public var unlessFiles: [String]
    /// Run only when the plan lists `dependencies` (true) or lists none (false).
    public var ifDependencies: Bool?
    /// Run only when the phase has the network (true) or has none (false).
    public var ifNetwork: Bool?

    public init(argv: [String], ifFiles: [String] = [], unlessFiles: [String] = [], ifDependencies: Bool? = nil, ifNetwork: Bool? = nil) {
        self.argv = argv
        self.ifFiles = ifFiles
        self.unlessFiles = unlessFiles
        self.ifDependencies = ifDependencies
        self.ifNetwork = ifNetwork
    }
}

/// A dependency cache of a stack: a host directory outside the workspace, read-write in the
/// install phase and read-only afterwards.
public struct StackCache: Sendable, Hashable, Codable {
    /// The directory's name under otk's cache root, and the `{cache:NAME}` placeholder.
    public var name: String
    /// Variables set to the cache's path inside the sandbox (`PIP_CACHE_DIR`), in every phase.
    public var env: [String]

    public init(name: String, env: [String] = []) {
        self.name = name
        self.env = env
    }
}

/// One way of building a stack's projects (venv + pip, poetry, npm, Maven, CMake, ...).
public struct StackVariant: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    /// Chosen when no variant's markers match.
    public var isDefault: Bool
    public var markers: [StackMarker]
    /// Programs this variant needs on the host, resolved through PATH (shims followed) and bound read-only.
    public var tools: [String]
    /// Names of the stack's caches this variant uses.
    public var caches: [String]
    /// Base-name globs of the files `{sources}` stands for.
    public var sources: [String]
    /// Directories put in front of PATH in every phase (placeholders allowed).
    public var path: [String]
    /// Variables set in every phase (placeholders allowed in the values).
    public var env: [String: String]
    /// Host paths the toolchain reads besides its installation (Debian's JDK reads /etc/java-17-openjdk),
    /// bound read-only where they exist. The last component may hold `*` and `?`.
    public var readOnly: [String] = []
    /// The package manager whose host configuration names the registry the install phase may reach
    /// through the egress proxy ("pip", "npm", "go", "cargo", "maven"); nil: none.
    public var registry: String?
    public var install: [StackStep]
    public var build: [StackStep]
    /// The run command when the plan gives none.
    public var run: [StackStep]

    public init(name: String, description: String = "", isDefault: Bool = false, markers: [StackMarker] = [], tools: [String] = [],
                caches: [String] = [], sources: [String] = [], path: [String] = [], env: [String: String] = [:],
                install: [StackStep] = [], build: [StackStep] = [], run: [StackStep] = []) {
        self.name = name
        self.description = description
        self.isDefault = isDefault
        self.markers = markers
        self.tools = tools
        self.caches = caches
        self.sources = sources
        self.path = path
        self.env = env
        self.install = install
        self.build = build
        self.run = run
    }

    public func steps(_ phase: PhaseName) -> [StackStep] {
        switch phase {
        case .install: return install
        case .build: return build
        case .run: return run
        case .postInstall: return []
        }
    }
}

/// What a stack asks of one phase's sandbox. It can only tighten the profile the run uses.
public struct StackPhaseSettings: Sendable, Hashable, Codable {
    /// Whether the phase uses a registry (the install phase). The profile alone decides the phase's
    /// network; this says whether steps with `if_network` see it, and whether otk notes a cache-only install.
    public var network: Bool
    /// A wall-clock limit lower than the profile's.
    public var wallSeconds: Double?

    public init(network: Bool = false, wallSeconds: Double? = nil) {
        self.network = network
        self.wallSeconds = wallSeconds
    }
}

/// A stack definition (`stacks/NAME.toml`, docs/stacks.md).
public struct Stack: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    /// The file it was read from.
    public var source: String
    public var markers: [StackMarker]
    /// The install hint for each tool a variant names, shown when the tool is missing.
    public var toolHints: [String: String]
    public var caches: [StackCache]
    public var phases: [String: StackPhaseSettings]
    public var variants: [StackVariant]

    public init(name: String, description: String, source: String, markers: [StackMarker], toolHints: [String: String],
                caches: [StackCache], phases: [String: StackPhaseSettings], variants: [StackVariant]) {
        self.name = name
        self.description = description
        self.source = source
        self.markers = markers
        self.toolHints = toolHints
        self.caches = caches
        self.phases = phases
        self.variants = variants
    }

    public func variant(named name: String) -> StackVariant? { variants.first { $0.name == name } }

    public func settings(_ phase: PhaseName) -> StackPhaseSettings { phases[phase.profilePhase] ?? StackPhaseSettings() }
}

/// `{name}` placeholders in stack definitions.
public enum Placeholders {
    /// The names between braces, in order.
    public static func names(in text: String) -> [String] {
        var out: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            rest = rest[rest.index(after: open)...]
            guard let close = rest.firstIndex(of: "}") else { break }
            out.append(String(rest[..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return out
    }

    /// `text` with each `{name}` replaced by `values[name]`; unknown names are left as written.
    public static func fill(_ text: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let after = rest[rest.index(after: open)...]
            // An unclosed brace is literal text, kept once.
            guard let close = after.firstIndex(of: "}") else { return out + rest[open...] }
            let name = String(after[..<close])
            out += values[name] ?? "{\(name)}"
            rest = after[after.index(after: close)...]
        }
        return out + rest
    }
}
