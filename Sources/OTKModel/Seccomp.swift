/// What the kernel does with a system call a seccomp rule (or the default) selects.
public enum SeccompAction: Sendable, Hashable, Codable, CustomStringConvertible {
    case allow
    /// The call fails with this errno and never reaches the kernel's implementation.
    case errno(UInt16)
    /// The whole process dies of SIGSYS.
    case killProcess
    /// Only the calling thread dies (Docker's SCMP_ACT_KILL).
    case killThread
    /// SIGSYS is delivered; the process may handle it.
    case trap
    /// Allowed, and written to the kernel's audit log.
    case log
    /// A ptrace tracer is asked; without one the call fails with ENOSYS.
    case trace(UInt16)

    public var description: String {
        switch self {
        case .allow: return "allow"
        case .errno(let e): return "errno(\(ErrnoName.name(of: e)))"
        case .killProcess: return "kill-process"
        case .killThread: return "kill-thread"
        case .trap: return "trap"
        case .log: return "log"
        case .trace(let v): return "trace(\(v))"
        }
    }

    /// Whether the call goes on to the kernel (possibly logged).
    public var permits: Bool { self == .allow || self == .log }
}

/// How one syscall argument is compared.
public enum SeccompComparison: String, Sendable, Hashable, Codable, CaseIterable {
    case notEqual = "ne", less = "lt", lessOrEqual = "le", equal = "eq", greaterOrEqual = "ge", greater = "gt"
    /// `(arg & value) == valueTwo`.
    case maskedEqual = "masked-eq"
}

/// One argument condition of a rule; all conditions of a rule must hold.
public struct SeccompCondition: Sendable, Hashable, Codable, CustomStringConvertible {
    /// 0...5.
    public var index: UInt8
    public var op: SeccompComparison
    public var value: UInt64
    /// The expected result for `masked-eq`; unused otherwise.
    public var valueTwo: UInt64

    public init(index: UInt8, op: SeccompComparison, value: UInt64, valueTwo: UInt64 = 0) {
        self.index = index
        self.op = op
        self.value = value
        self.valueTwo = valueTwo
    }

    public var description: String {
        let hex = { (v: UInt64) in "0x" + String(v, radix: 16) }
        switch op {
        case .maskedEqual: return "arg\(index) & \(hex(value)) == \(hex(valueTwo))"
        case .notEqual: return "arg\(index) != \(hex(value))"
        case .less: return "arg\(index) < \(hex(value))"
        case .lessOrEqual: return "arg\(index) <= \(hex(value))"
        case .equal: return "arg\(index) == \(hex(value))"
        case .greaterOrEqual: return "arg\(index) >= \(hex(value))"
        case .greater: return "arg\(index) > \(hex(value))"
        }
    }
}

/// One rule: these syscalls, when every condition holds, get this action.
public struct SeccompRule: Sendable, Hashable, Codable {
    public var names: [String]
    public var action: SeccompAction
    public var conditions: [SeccompCondition]
    /// Why the rule exists, shown by `otk profile show`.
    public var comment: String
    /// Where the rule was written (a profile key, or a Docker JSON file with the rule's JSON path).
    public var location: SourceLocation?
    /// Kept even when a profile allows the call by name (TIOCSTI: `allow = ["ioctl"]` must not open the terminal).
    public var pinned: Bool
    /// Written in the profile's own `allow`/`deny`: a name there must be one libseccomp knows.
    public var fromProfile: Bool

    public init(names: [String], action: SeccompAction, conditions: [SeccompCondition] = [], comment: String = "",
                location: SourceLocation? = nil, pinned: Bool = false, fromProfile: Bool = false) {
        self.names = names
        self.action = action
        self.conditions = conditions
        self.comment = comment
        self.location = location
        self.pinned = pinned
        self.fromProfile = fromProfile
    }
}

/// A whole seccomp policy, before compilation: the action for syscalls no rule matches,
/// and the rules. A syscall is denied if any non-permitting rule matches it; otherwise it
/// is allowed if a permitting rule matches; otherwise it gets `defaultAction`.
public struct SeccompPolicy: Sendable, Hashable, Codable {
    public var defaultAction: SeccompAction
    public var rules: [SeccompRule]
    /// "built-in" or the path of the Docker/OCI JSON it came from.
    public var origin: String

    public init(defaultAction: SeccompAction, rules: [SeccompRule], origin: String) {
        self.defaultAction = defaultAction
        self.rules = rules
        self.origin = origin
    }
}

/// The `[seccomp]` section of a profile.
public struct SeccompSettings: Sendable, Hashable, Codable {
    /// The action for calls no rule allows, as a profile names it.
    public enum DefaultAction: String, Sendable, Hashable, Codable, CaseIterable {
        case errno, kill, log
    }

    public var enabled: Bool
    /// nil: the built-in allowlist; otherwise the resolved host path of a Docker/OCI seccomp JSON.
    public var importPath: String?
    /// The imported profile, parsed when the profile was loaded (so its content is part of the profile's hash).
    public var imported: SeccompPolicy?
    /// nil: errno for the built-in list, the JSON's own defaultAction for an import.
    public var action: DefaultAction?
    /// Extra syscalls allowed, with where each was written.
    public var allow: [SeccompName]
    /// Extra syscalls denied; a deny wins over every allow.
    public var deny: [SeccompName]

    public init(enabled: Bool = true, importPath: String? = nil, imported: SeccompPolicy? = nil, action: DefaultAction? = nil,
                allow: [SeccompName] = [], deny: [SeccompName] = []) {
        self.enabled = enabled
        self.importPath = importPath
        self.imported = imported
        self.action = action
        self.allow = allow
        self.deny = deny
    }
}

/// A syscall name written in a profile, with its location for errors about it.
public struct SeccompName: Sendable, Hashable, Codable {
    public var name: String
    public var location: SourceLocation?

    public init(_ name: String, location: SourceLocation? = nil) {
        self.name = name
        self.location = location
    }
}

/// The `[landlock]` section of a profile.
public struct LandlockSettings: Sendable, Hashable, Codable {
    public enum Enforcement: String, Sendable, Hashable, Codable, CaseIterable {
        /// No Landlock ruleset at all.
        case off
        /// Applied when the kernel offers Landlock; a warning otherwise.
        case bestEffort = "best_effort"
        /// The run refuses (exit 4) when the kernel cannot enforce it.
        case required
    }

    public var enforce: Enforcement
    /// The lowest Landlock ABI the run accepts (with `required`).
    public var minimumABI: Int
    /// nil: every writable mount is writable. Otherwise writes are allowed only below these
    /// sandbox paths (which must lie in writable mounts): a narrower rule than the mounts.
    public var writable: [String]?
    /// TCP ports the command may connect to / bind; nil: Landlock does not restrict TCP
    /// (except in network mode `none`, where no port is allowed).
    public var connectTCP: [UInt16]?
    public var bindTCP: [UInt16]?

    public init(enforce: Enforcement = .required, minimumABI: Int = 1, writable: [String]? = nil,
                connectTCP: [UInt16]? = nil, bindTCP: [UInt16]? = nil) {
        self.enforce = enforce
        self.minimumABI = minimumABI
        self.writable = writable
        self.connectTCP = connectTCP
        self.bindTCP = bindTCP
    }
}

/// errno names for messages and for Docker profiles' `errnoRet`.
public enum ErrnoName {
    public static let table: [(String, UInt16)] = [
        ("EPERM", 1), ("ENOENT", 2), ("ESRCH", 3), ("EINTR", 4), ("EIO", 5), ("ENXIO", 6), ("E2BIG", 7), ("ENOEXEC", 8),
        ("EBADF", 9), ("ECHILD", 10), ("EAGAIN", 11), ("ENOMEM", 12), ("EACCES", 13), ("EFAULT", 14), ("EBUSY", 16),
        ("EEXIST", 17), ("EXDEV", 18), ("ENODEV", 19), ("ENOTDIR", 20), ("EISDIR", 21), ("EINVAL", 22), ("ENFILE", 23),
        ("EMFILE", 24), ("ENOTTY", 25), ("EFBIG", 27), ("ENOSPC", 28), ("ESPIPE", 29), ("EROFS", 30), ("EMLINK", 31),
        ("EPIPE", 32), ("ERANGE", 34), ("ENOSYS", 38), ("EOPNOTSUPP", 95), ("EAFNOSUPPORT", 97),
    ]

    public static func name(of value: UInt16) -> String {
        table.first { $0.1 == value }?.0 ?? String(value)
    }

    public static func value(of name: String) -> UInt16? {
        table.first { $0.0 == name }?.1
    }
}
