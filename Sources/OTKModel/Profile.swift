/// Where a value came from: a profile file and the line of its key, for error messages.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int?

    public init(file: String, line: Int?) {
        self.file = file
        self.line = line
    }

    public var description: String { line.map { "\(file):\($0)" } ?? file }
}

/// A Linux namespace kind a profile can ask for.
public enum NamespaceKind: String, Sendable, Codable, CaseIterable, Comparable {
    case user, mount, pid, net, ipc, uts, cgroup

    /// The order of `allCases`: user first, as the kernel creates them.
    public static func < (a: Self, b: Self) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }
}

/// How the sandbox reaches the network.
public enum NetworkMode: String, Sendable, Codable, CaseIterable {
    /// A private network namespace with no interface up: not even loopback works.
    case none
    /// A private network namespace whose only interface, its own loopback, is up.
    case loopback
    /// `loopback`, plus otk's egress proxy at 127.0.0.1:3128 inside it: HTTP and HTTPS (CONNECT)
    /// only, only to the hosts of `network.allow` and what `otk execute` adds for the install phase.
    case proxy
    /// The host's network namespace: no network isolation at all.
    case host
}

/// One host path made visible in the sandbox.
public struct BindMount: Sendable, Hashable, Codable {
    /// Host path; may hold the `{workspace}` placeholder.
    public var source: String
    /// Path inside the sandbox.
    public var target: String
    /// Skip silently when the host path does not exist.
    public var optional: Bool
    public var location: SourceLocation?

    public init(source: String, target: String, optional: Bool, location: SourceLocation? = nil) {
        self.source = source
        self.target = target
        self.optional = optional
        self.location = location
    }
}

/// A tmpfs mounted in the sandbox.
public struct TmpfsMount: Sendable, Hashable, Codable {
    public var path: String
    public var sizeBytes: UInt64
    public var mode: UInt32
    public var location: SourceLocation?

    public init(path: String, sizeBytes: UInt64, mode: UInt32, location: SourceLocation? = nil) {
        self.path = path
        self.sizeBytes = sizeBytes
        self.mode = mode
        self.location = location
    }
}

/// A validated, fully resolved (after `extends`) sandbox profile.
public struct Profile: Sendable, Hashable, Codable {
    public struct Identity: Sendable, Hashable, Codable {
        /// uid and gid inside the sandbox; mapped to an unprivileged host id, never host root.
        public var uid: UInt32
        public var gid: UInt32
        public var userName: String
        public var hostname: String

        public init(uid: UInt32, gid: UInt32, userName: String, hostname: String) {
            self.uid = uid
            self.gid = gid
            self.userName = userName
            self.hostname = hostname
        }
    }

    public struct Filesystem: Sendable, Hashable, Codable {
        /// Size of the tmpfs that becomes `/`.
        public var rootSizeBytes: UInt64
        /// Make `/` itself read-only once it is built.
        public var rootReadOnly: Bool
        /// Where the workspace appears inside; it is always bound read-write.
        public var workspace: String
        public var readOnly: [BindMount]
        public var readWrite: [BindMount]
        public var tmpfs: [TmpfsMount]
        /// Paths masked after everything is mounted (empty directory or /dev/null).
        public var hidden: [String]
        /// A fresh /proc for the sandbox's pid namespace, with runc's masked and read-only paths.
        public var proc: Bool
        /// A minimal /dev: null, zero, full, random, urandom, tty, a private devpts, shm.
        public var dev: Bool
        /// Generate /etc/passwd, /etc/group, /etc/hostname and /etc/hosts for the sandbox user.
        public var etcFiles: Bool

        public init(rootSizeBytes: UInt64, rootReadOnly: Bool, workspace: String, readOnly: [BindMount], readWrite: [BindMount],
                    tmpfs: [TmpfsMount], hidden: [String], proc: Bool, dev: Bool, etcFiles: Bool) {
            self.rootSizeBytes = rootSizeBytes
            self.rootReadOnly = rootReadOnly
            self.workspace = workspace
            self.readOnly = readOnly
            self.readWrite = readWrite
            self.tmpfs = tmpfs
            self.hidden = hidden
            self.proc = proc
            self.dev = dev
            self.etcFiles = etcFiles
        }
    }

    public struct Environment: Sendable, Hashable, Codable {
        /// Host variables passed through; a trailing `*` matches a prefix (`LC_*`).
        public var pass: [String]
        /// Variables set to fixed values (after `pass`, so they win).
        public var set: [String: String]

        public init(pass: [String], set: [String: String]) {
            self.pass = pass
            self.set = set
        }
    }

    public var name: String
    public var description: String
    /// The files this profile was read from, the profile itself first, then what it extends.
    public var sources: [String]
    public var namespaces: Set<NamespaceKind>
    public var identity: Identity
    public var filesystem: Filesystem
    public var network: NetworkMode
    public var environment: Environment
    public var seccomp: SeccompSettings
    public var landlock: LandlockSettings
    public var limits: Limits
    /// The network of one phase of `otk execute` ("install", "build", "run") where it differs from `network`.
    public var phaseNetwork: [String: NetworkMode]
    /// How big a plan run under this profile may be (`[plan]`).
    public var plan: PlanSizeLimits
    /// `network.allow`: who the egress proxy lets through in mode `proxy`.
    public var networkAllow: [HostPattern] = []

    public init(name: String, description: String, sources: [String], namespaces: Set<NamespaceKind>,
                identity: Identity, filesystem: Filesystem, network: NetworkMode, environment: Environment,
                seccomp: SeccompSettings = SeccompSettings(), landlock: LandlockSettings = LandlockSettings(),
                limits: Limits = Limits(), phaseNetwork: [String: NetworkMode] = [:], plan: PlanSizeLimits = PlanSizeLimits(),
                networkAllow: [HostPattern] = []) {
        self.networkAllow = networkAllow
        self.phaseNetwork = phaseNetwork
        self.plan = plan
        self.name = name
        self.description = description
        self.sources = sources
        self.namespaces = namespaces
        self.identity = identity
        self.filesystem = filesystem
        self.network = network
        self.environment = environment
        self.seccomp = seccomp
        self.landlock = landlock
        self.limits = limits
    }
}

extension Profile {
    /// This profile as one phase of `otk execute` runs it: with the phase's network, and the
    /// net namespace that network needs (none for `host`).
    public func forPhase(_ phase: String) -> Profile {
        guard let mode = phaseNetwork[phase], mode != network else { return self }
        return withNetwork(mode)
    }

    /// This profile with another network, and the net namespace that network needs (none for `host`).
    public func withNetwork(_ mode: NetworkMode) -> Profile {
        var copy = self
        copy.network = mode
        if mode == .host { copy.namespaces.remove(.net) } else { copy.namespaces.insert(.net) }
        return copy
    }
}

/// The `[plan]` table: how big a plan may be. nil: otk's default (PlanLimits in OTKPlan).
public struct PlanSizeLimits: Sendable, Hashable, Codable {
    public var maxFiles: Int?
    public var maxFileBytes: UInt64?
    public var maxTotalBytes: UInt64?

    public init(maxFiles: Int? = nil, maxFileBytes: UInt64? = nil, maxTotalBytes: UInt64? = nil) {
        self.maxFiles = maxFiles
        self.maxFileBytes = maxFileBytes
        self.maxTotalBytes = maxTotalBytes
    }
}

/// The `[limits]` table: what one sandboxed command may use. nil: no limit of that kind.
public struct Limits: Sendable, Hashable, Codable {
    /// Memory of the whole sandbox (cgroup), with no swap.
    public var memoryBytes: UInt64?
    /// Processes and threads of the whole sandbox (cgroup).
    public var pids: Int?
    /// CPU time per wall second, in CPUs (1.5 = one and a half CPUs), as a cgroup quota.
    public var cpus: Double?
    /// Wall-clock time of the run; then SIGTERM to every process, and SIGKILL after `grace`.
    public var wallSeconds: Double?
    public var graceSeconds: Double
    /// Bytes of stdout and of stderr each shown and captured; the rest is dropped with a marker.
    public var outputBytes: UInt64?
    /// RLIMIT_FSIZE: the largest file the command may write.
    public var fileSizeBytes: UInt64?
    /// RLIMIT_NOFILE.
    public var openFiles: Int?
    /// Size of the /tmp tmpfs (replaces the size of a `tmpfs` entry for /tmp).
    public var tmpSizeBytes: UInt64?

    public init(memoryBytes: UInt64? = nil, pids: Int? = nil, cpus: Double? = nil, wallSeconds: Double? = nil,
                graceSeconds: Double = 2, outputBytes: UInt64? = nil, fileSizeBytes: UInt64? = nil, openFiles: Int? = nil,
                tmpSizeBytes: UInt64? = nil) {
        self.memoryBytes = memoryBytes
        self.pids = pids
        self.cpus = cpus
        self.wallSeconds = wallSeconds
        self.graceSeconds = graceSeconds
        self.outputBytes = outputBytes
        self.fileSizeBytes = fileSizeBytes
        self.openFiles = openFiles
        self.tmpSizeBytes = tmpSizeBytes
    }

    /// Whether any limit needs a cgroup.
    public var needsCgroup: Bool { memoryBytes != nil || pids != nil || cpus != nil }
}

/// Durations written the way people write them: "500ms", "30s", "15m", "2h", "1h30m", or a bare number of seconds.
public enum DurationText {
    public static let maximumSeconds: Double = 7 * 24 * 3600

    public static func parse(_ text: String) -> Double? {
        if let n = Double(text), n.isFinite { return n }
        var total = 0.0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !digits.isEmpty, let value = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m", "min": total += value * 60
            case "h": total += value * 3600
            default: return nil
            }
        }
        return total
    }

    public static func format(_ seconds: Double) -> String {
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        if seconds == seconds.rounded() { return "\(Int(seconds))s" }
        return "\(Int((seconds * 1000).rounded()))ms"
    }
}
