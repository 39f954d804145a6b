/// What kind of failure an error is; the CLI maps each kind to one exit code.
public enum ErrorKind: String, Sendable, Codable {
    /// Bad input: usage, plan, profile, policy, paths (exit 2).
    case badInput = "bad-input"
    /// A layer the profile requires is not available on this host (exit 4).
    case isolationUnavailable = "isolation-unavailable"
    /// The sandbox could not be set up for another reason (exit 4 as well: nothing ran).
    case setupFailed = "setup-failed"
    /// The command could not be executed inside the sandbox (exit 127 or 126, like a shell).
    case commandNotFound = "command-not-found"
    case commandNotExecutable = "command-not-executable"
    /// otk itself failed (exit 70).
    case internalError = "internal"
}

/// The one error type shared by otk's modules: what failed, why, and what to do about it.
public struct OTKError: Error, Sendable, CustomStringConvertible {
    public var kind: ErrorKind
    /// One line naming the object: ``cannot bind `/opt/x` read-only: no such file``.
    public var message: String
    /// What the user can do, when there is something.
    public var remedy: String?
    /// The file and line the problem comes from, when there is one.
    public var location: SourceLocation?
    /// For launcher failures: the setup step and errno.
    public var step: String?
    public var errno: Int32?

    public init(_ kind: ErrorKind, _ message: String, remedy: String? = nil, location: SourceLocation? = nil,
                step: String? = nil, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.remedy = remedy
        self.location = location
        self.step = step
        self.errno = errno
    }

    public var description: String {
        var s = location.map { "\($0): " } ?? ""
        s += message
        if let remedy { s += " (\(remedy))" }
        return s
    }
}
