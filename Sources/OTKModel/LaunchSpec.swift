/// One operation of the launch sequence, executed by otk-launcher in order.
/// The wire names and argument counts are the launcher's `op_table`.
public enum LaunchOperation: Sendable, Hashable {
    case namespace(NamespaceKind)
    case uidMap(inside: UInt32, host: UInt32)
    case gidMap(inside: UInt32, host: UInt32)
    case setgroups(allow: Bool)
    case hostname(String)
    case loopback
    case denyUserNamespaces
    case rootSize(UInt64)
    case bind(source: String, target: String, readOnly: Bool, optional: Bool)
    case tmpfs(path: String, sizeBytes: UInt64, mode: UInt32)
    case proc(String)
    case dev(String)
    case directory(String, mode: UInt32)
    case symlink(target: String, path: String)
    case file(path: String, mode: UInt32, content: String)
    case mask(String)
    case readOnly(String)
    case rootReadOnly
    case env(String)
    case arg(String)
    case cwd(String)
    /// Emptied by the sandbox's init, as the sandbox user, once the command has ended.
    case clean(String)
    /// Load the seccomp programs passed on the launcher's fourth fd, last before execve.
    case seccomp
    /// A Landlock ruleset handling these access rights (filesystem, TCP, scopes), applied before seccomp.
    case landlock(fs: UInt64, net: UInt64, scoped: UInt64)
    /// Access granted beneath a sandbox path; `optional`: skip it when the path does not exist.
    case landlockPath(access: UInt64, path: String, optional: Bool)
    /// TCP access (bind, connect) granted for one port.
    case landlockPort(access: UInt64, port: UInt16)
    /// A cgroup v1 directory the monitor moves the sandbox into before releasing it.
    case cgroupV1(String)
    /// The cgroup v2 directory clone3 creates the sandbox in.
    case cgroupV2(String)
    /// A resource limit set in the payload, soft and hard alike.
    case rlimit(RlimitKind, UInt64)
    /// The wall-clock limit and the grace period between SIGTERM and SIGKILL, in milliseconds.
    case wall(milliseconds: UInt64, graceMilliseconds: UInt64)
    /// A host directory (the emptied temporary workspace) the launcher removes when otk is gone.
    case orphanRmdir(String)
    /// Network mode proxy: a relay in the sandbox accepts TCP on 127.0.0.1:`port` and passes each
    /// connection to the unix socket at `socket` (a path inside the sandbox), otk's egress proxy.
    case proxyRelay(port: UInt16, socket: String)

    var tokens: [String] {
        switch self {
        case .namespace(let k): return ["namespace", k.rawValue]
        case .uidMap(let i, let h): return ["uid", String(i), String(h)]
        case .gidMap(let i, let h): return ["gid", String(i), String(h)]
        case .setgroups(let allow): return ["setgroups", allow ? "allow" : "deny"]
        case .hostname(let h): return ["hostname", h]
        case .loopback: return ["loopback"]
        case .denyUserNamespaces: return ["deny-userns"]
        case .rootSize(let s): return ["root-size", String(s)]
        case .bind(let s, let t, let ro, let opt): return ["bind", s, t, (ro ? "ro" : "rw") + (opt ? ",try" : "")]
        case .tmpfs(let p, let size, let mode): return ["tmpfs", p, String(size), String(mode, radix: 8)]
        case .proc(let p): return ["proc", p]
        case .dev(let p): return ["dev", p]
        case .directory(let p, let mode): return ["dir", p, String(mode, radix: 8)]
        case .symlink(let t, let p): return ["symlink", t, p]
        case .file(let p, let mode, let c): return ["file", p, String(mode, radix: 8), c]
        case .mask(let p): return ["mask", p]
        case .readOnly(let p): return ["readonly", p]
        case .rootReadOnly: return ["root-readonly"]
        case .env(let e): return ["env", e]
        case .arg(let a): return ["arg", a]
        case .cwd(let c): return ["cwd", c]
        case .clean(let p): return ["clean", p]
        case .seccomp: return ["seccomp"]
        case .landlock(let fs, let net, let scoped): return ["landlock", hex(fs), hex(net), hex(scoped)]
        case .landlockPath(let access, let path, let optional): return ["landlock-path", hex(access), path, optional ? "try" : "must"]
        case .landlockPort(let access, let port): return ["landlock-port", hex(access), String(port)]
        case .cgroupV1(let dir): return ["cgroup-v1", dir]
        case .cgroupV2(let dir): return ["cgroup-v2", dir]
        case .rlimit(let kind, let value): return ["rlimit", kind.rawValue, String(value), String(value)]
        case .wall(let ms, let grace): return ["wall", String(ms), String(grace)]
        case .orphanRmdir(let path): return ["orphan-rmdir", path]
        case .proxyRelay(let port, let socket): return ["proxy-relay", String(port), socket]
        }
    }
}

private func hex(_ v: UInt64) -> String { String(v, radix: 16) }

/// The resource limits the launcher sets (setrlimit).
public enum RlimitKind: String, Sendable, Hashable {
    case core, fsize, nofile
}

/// A flat, validated description of one sandbox launch: everything otk-launcher
/// needs, nothing it has to decide.
public struct LaunchSpec: Sendable, Hashable {
    public var operations: [LaunchOperation]
    /// The isolation layers this spec applies, for the result document.
    public var layers: [String]
    /// What a best-effort layer could not do on this host, for the result document.
    public var warnings: [String]
    /// The compiled seccomp programs (the launcher's wire form) when the spec has `.seccomp`.
    public var seccompProgram: [UInt8]?

    public init(operations: [LaunchOperation], layers: [String], warnings: [String] = [], seccompProgram: [UInt8]? = nil) {
        self.operations = operations
        self.layers = layers
        self.warnings = warnings
        self.seccompProgram = seccompProgram
    }

    /// The wire form: NUL-terminated tokens, "otk-spec-1", the operations, "end".
    /// Fails if a token holds a NUL byte, which the format cannot carry.
    public func encoded() throws(OTKError) -> [UInt8] {
        var out: [UInt8] = Array("otk-spec-1".utf8) + [0]
        for op in operations {
            for token in op.tokens {
                let bytes = Array(token.utf8)
                if bytes.contains(0) {
                    throw OTKError(.badInput, "a value for the launch operation `\(op.tokens[0])` contains a NUL byte")
                }
                out += bytes + [0]
            }
        }
        out += Array("end".utf8) + [0]
        return out
    }
}
