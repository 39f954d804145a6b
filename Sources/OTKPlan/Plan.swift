import OTKModel

/// A plan: the project an agent wrote, as otk reads it from JSON (docs/plan-format.md).
///
/// The earlier toolkit's format — `name`, `description`, `files: [{filename, code}]`, `run`,
/// `post_install` — is a subset; `stack`, `dependencies`, `build`, `env` and the per-file
/// `mode` and `encoding` are otk's extensions.
public struct Plan: Sendable, Equatable {
    /// The project's name; the output directory is named after it (`PlanParser.slug`).
    public var name: String
    public var description: String?
    /// The files to write, in the plan's order.
    public var files: [PlanFile]
    /// The command that runs the project; nil when the plan leaves it to the stack.
    public var run: PlanCommand?
    /// Shell commands the earlier toolkit ran after installing; kept in order, run by later phases.
    public var postInstall: [String]
    /// The stack that overrides detection (a name from `stacks/`), when the plan names one.
    public var stack: String?
    /// Package specs for the stack's package manager.
    public var dependencies: [String]
    /// The command that builds the project, when the plan overrides the stack's.
    public var build: PlanCommand?
    /// Environment variables the plan sets for its phases.
    public var env: [String: String]

    public init(name: String, description: String? = nil, files: [PlanFile], run: PlanCommand? = nil,
                postInstall: [String] = [], stack: String? = nil, dependencies: [String] = [],
                build: PlanCommand? = nil, env: [String: String] = [:]) {
        self.name = name
        self.description = description
        self.files = files
        self.run = run
        self.postInstall = postInstall
        self.stack = stack
        self.dependencies = dependencies
        self.build = build
        self.env = env
    }
}

/// A command as a plan gives it: one shell command line, or an argv list run without a shell.
public enum PlanCommand: Sendable, Equatable {
    case shell(String)
    case argv([String])
}

/// How a file's `code` is written in the plan.
public enum PlanEncoding: String, Sendable, Equatable {
    /// The text itself, written as UTF-8 (the default, and the earlier toolkit's only form).
    case utf8
    /// Standard base64 (RFC 4648 §4, padded), for binary files.
    case base64
}

/// One file of a plan, with its content decoded.
public struct PlanFile: Sendable, Equatable {
    /// A relative path, checked by `PlanParser.checkFilename` (docs/plan-format.md).
    public var filename: String
    /// The bytes to write.
    public var content: [UInt8]
    /// The permission bits to set (0...0o777): the plan's `mode`, or the default.
    public var mode: UInt16
    /// How `code` was written in the plan.
    public var encoding: PlanEncoding

    public init(filename: String, content: [UInt8], mode: UInt16? = nil, encoding: PlanEncoding = .utf8) {
        self.filename = filename
        self.content = content
        self.mode = mode ?? PlanFile.defaultMode(for: filename)
        self.encoding = encoding
    }

    /// 0755 for `*.sh` files, 0644 for everything else.
    public static func defaultMode(for filename: String) -> UInt16 {
        filename.hasSuffix(".sh") ? 0o755 : 0o644
    }
}

/// How big a plan may be. A plan over a limit is refused, never truncated.
///
/// The profile sets these for a run; `PlanLimits()` holds the defaults.
public struct PlanLimits: Sendable, Equatable {
    /// The most entries `files` may have.
    public var maxFiles: Int
    /// The most bytes one file may have, after base64 decoding.
    public var maxFileBytes: Int
    /// The most bytes all files may have together.
    public var maxTotalBytes: Int
    /// The largest plan document (the JSON text) read at all.
    public var maxPlanBytes: Int
    /// The longest `filename`, in UTF-8 bytes.
    public var maxPathBytes: Int
    /// The most components a `filename` may have (`a/b/c` has 3).
    public var maxDepth: Int

    public init(maxFiles: Int = 10_000, maxFileBytes: Int = 16 << 20, maxTotalBytes: Int = 128 << 20,
                maxPlanBytes: Int = 256 << 20, maxPathBytes: Int = 1024, maxDepth: Int = 32) {
        self.maxFiles = maxFiles
        self.maxFileBytes = maxFileBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxPlanBytes = maxPlanBytes
        self.maxPathBytes = maxPathBytes
        self.maxDepth = maxDepth
    }
}
