import OTKModel

/// The host identity a sandbox is mapped to. Never host root.
public struct HostIdentity: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    /// Whether init may call setgroups(2): only when a privileged otk wrote the gid map;
    /// an unprivileged one must deny it before it may write the map at all.
    public var setgroupsAllowed: Bool

    public init(uid: UInt32, gid: UInt32, setgroupsAllowed: Bool) {
        self.uid = uid
        self.gid = gid
        self.setgroupsAllowed = setgroupsAllowed
    }

    /// The unprivileged id a root-run otk maps the sandbox to when the workspace
    /// does not name a better one (its owner): nobody/nogroup.
    public static let unprivilegedDefault: UInt32 = 65534

    /// An unprivileged otk maps the sandbox to itself (the only choice the kernel
    /// allows). A root otk maps it to the workspace's owner when that is not root,
    /// otherwise to nobody, so a sandbox never holds host uid 0; its gid is then always nogroup.
    public static func choose(euid: UInt32, egid: UInt32, workspaceOwner: (uid: UInt32, gid: UInt32)?) -> HostIdentity {
        if euid != 0 { return HostIdentity(uid: euid, gid: egid, setgroupsAllowed: false) }
        // The gid is always nogroup: a workspace's group may be a privileged one (disk, shadow, docker).
        if let owner = workspaceOwner, owner.uid != 0 {
            return HostIdentity(uid: owner.uid, gid: unprivilegedDefault, setgroupsAllowed: true)
        }
        return HostIdentity(uid: unprivilegedDefault, gid: unprivilegedDefault, setgroupsAllowed: true)
    }
}

/// Everything about one `otk sandbox run` besides the profile.
public struct RunRequest: Sendable {
    public var command: [String]
    /// Canonical host path of the workspace.
    public var workspace: String
    /// Extra binds from the command line (`--bind`, `--ro-bind`).
    public var extraBinds: [(bind: BindMount, readOnly: Bool)]
    /// Extra variables from the command line (`--env K=V`); they win over the profile.
    public var extraEnvironment: [(String, String)]
    /// The environment otk was started with; only the profile's `pass` list is taken from it.
    public var hostEnvironment: [String: String]
    public var identity: HostIdentity
    /// A temporary workspace: the sandbox's init empties it when the command ends.
    public var cleanWorkspace: Bool
    /// The host's Landlock ABI (nil: none), and why there is none.
    public var landlockABI: Int?
    public var landlockUnavailableReason: String?
    /// Network mode proxy: the host path of the egress proxy's unix socket.
    public var proxySocket: String?

    public init(command: [String], workspace: String, extraBinds: [(bind: BindMount, readOnly: Bool)] = [],
                extraEnvironment: [(String, String)] = [], hostEnvironment: [String: String] = [:], identity: HostIdentity,
                cleanWorkspace: Bool = false, landlockABI: Int? = nil, landlockUnavailableReason: String? = nil,
                proxySocket: String? = nil) {
        self.proxySocket = proxySocket
        self.cleanWorkspace = cleanWorkspace
        self.landlockABI = landlockABI
        self.landlockUnavailableReason = landlockUnavailableReason
        self.command = command
        self.workspace = workspace
        self.extraBinds = extraBinds
        self.extraEnvironment = extraEnvironment
        self.hostEnvironment = hostEnvironment
        self.identity = identity
    }
}

/// Turns a profile and a request into the launcher's flat operation list.
/// Pure apart from the `HostFileSystem` it is given.
public struct LaunchSpecBuilder: Sendable {
    /// runc's default masked paths: kernel memory, keys and timing side channels.
    public static let procMasked = ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                                    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
                                    "/proc/timer_stats"]
    /// runc's default read-only paths: kernel tunables that must not be written even by a namespaced root.
    public static let procReadOnly = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    public var host: HostFileSystem

    public init(host: HostFileSystem) {
        self.host = host
    }

    /// One mount to place, before sorting.
    private enum Placement {
        case bind(source: String, target: String, readOnly: Bool, location: SourceLocation?)
        case symlink(target: String, path: String)
        case tmpfs(TmpfsMount)
        case proc, dev

        var path: String {
            switch self {
            case .bind(_, let t, _, _): return t
            case .symlink(_, let p): return p
            case .tmpfs(let t): return t.path
            case .proc: return "/proc"
            case .dev: return "/dev"
            }
        }
    }

    public func build(profile: Profile, request: RunRequest) throws(OTKError) -> LaunchSpec {
        guard let program = request.command.first, !program.isEmpty else {
            throw OTKError(.badInput, "no command given", remedy: "write it after `--`: otk sandbox run -- CMD ARGS...")
        }
        var ops: [LaunchOperation] = []
        var layers: [String] = []
        for kind in NamespaceKind.allCases where profile.namespaces.contains(kind) {
            ops.append(.namespace(kind))
            layers.append("\(kind.rawValue)-namespace")
        }
        ops.append(.uidMap(inside: profile.identity.uid, host: request.identity.uid))
        ops.append(.gidMap(inside: profile.identity.gid, host: request.identity.gid))
        ops.append(.setgroups(allow: request.identity.setgroupsAllowed))
        if profile.namespaces.contains(.uts) { ops.append(.hostname(profile.identity.hostname)) }
        if profile.network == .loopback || profile.network == .proxy { ops.append(.loopback) }
        layers.append("network-\(profile.network.rawValue)")
        if profile.network == .proxy && request.proxySocket == nil {
            throw OTKError(.internalError, "network mode proxy without the egress proxy's socket")
        }
        ops.append(.denyUserNamespaces)
        layers.append("no-nested-user-namespaces")
        ops.append(.rootSize(profile.filesystem.rootSizeBytes))

        let placements = try placements(profile: profile, request: request)
        // Parents before children, profile order otherwise: a bind below a tmpfs or
        // another bind needs its mount point to exist already.
        let ordered = placements.enumerated().sorted {
            let (da, db) = (SandboxPath.depth($0.element.path), SandboxPath.depth($1.element.path))
            return da != db ? da < db : $0.offset < $1.offset
        }.map(\.element)
        for placement in ordered {
            switch placement {
            case .bind(let s, let t, let ro, _): ops.append(.bind(source: s, target: t, readOnly: ro, optional: false))
            case .symlink(let target, let path): ops.append(.symlink(target: target, path: path))
            case .tmpfs(let t): ops.append(.tmpfs(path: t.path, sizeBytes: t.sizeBytes, mode: t.mode))
            case .proc:
                ops.append(.proc("/proc"))
                ops += Self.procMasked.map { .mask($0) }
                ops += Self.procReadOnly.map { .readOnly($0) }
            case .dev: ops.append(.dev("/dev"))
            }
        }
        layers.append("private-root")
        if profile.filesystem.proc { layers.append("private-proc") }

        if profile.filesystem.etcFiles {
            let covered = ordered.compactMap { p -> String? in
                if case .bind(_, let t, _, _) = p { return t }
                return nil
            }
            for (path, content) in etcFiles(profile) where !covered.contains(where: { SandboxPath.isWithin(path, $0) }) {
                ops.append(.file(path: path, mode: 0o644, content: content))
            }
        }
        ops += profile.filesystem.hidden.map { .mask($0) }
        if profile.filesystem.rootReadOnly {
            ops.append(.rootReadOnly)
            layers.append("read-only-root")
        }
        ops += environment(profile: profile, request: request).map { .env($0) }
        if profile.network == .proxy {
            ops.append(.proxyRelay(port: ProxyEndpoint.port, socket: ProxyEndpoint.socketPath))
            layers.append("egress-proxy")
        }
        ops += request.command.map { .arg($0) }
        ops.append(.cwd(profile.filesystem.workspace))
        if request.cleanWorkspace {
            ops.append(.clean(profile.filesystem.workspace))
            ops.append(.orphanRmdir(request.workspace))
        }
        layers += ["capabilities-dropped", "no-new-privs", "new-session"]

        let landlock = try Landlock.plan(profile.landlock, areas: landlockAreas(ordered, rootWritable: !profile.filesystem.rootReadOnly),
                                         etcFiles: profile.filesystem.etcFiles, network: profile.network,
                                         abi: request.landlockABI, unavailableReason: request.landlockUnavailableReason)
        ops += landlock.operations
        layers += landlock.layers
        // Core dumps are off: a dump could land in the workspace with what the process held in memory.
        ops.append(.rlimit(.core, 0))
        if let size = profile.limits.fileSizeBytes { ops.append(.rlimit(.fsize, size)) }
        if let files = profile.limits.openFiles { ops.append(.rlimit(.nofile, UInt64(files))) }
        if let wall = profile.limits.wallSeconds {
            ops.append(.wall(milliseconds: max(1, UInt64((wall * 1000).rounded())), graceMilliseconds: UInt64((profile.limits.graceSeconds * 1000).rounded())))
            layers.append("wall-clock-limit")
        }
        if profile.seccomp.enabled {
            ops.append(.seccomp)
            layers.append("seccomp")
        }
        return LaunchSpec(operations: ops, layers: layers, warnings: landlock.warnings)
    }

    private func landlockAreas(_ placements: [Placement], rootWritable: Bool) -> [Landlock.Area] {
        var areas: [Landlock.Area] = rootWritable ? [.writable("/")] : []
        for p in placements {
            switch p {
            case .bind(_, let t, let ro, _): areas.append(ro ? .readOnly(t) : .writable(t))
            case .tmpfs(let t): areas.append(.writable(t.path))
            case .proc: areas.append(.proc("/proc"))
            case .dev: areas.append(.dev("/dev"))
            case .symlink: break
            }
        }
        return areas
    }

    private func placements(profile: Profile, request: RunRequest) throws(OTKError) -> [Placement] {
        var out: [Placement] = []
        let fs = profile.filesystem
        let binds = fs.readOnly.map { ($0, true) } + fs.readWrite.map { ($0, false) } + request.extraBinds.map { ($0.bind, $0.readOnly) }
        // Where the sandbox shows a host directory at its own host path: only a symlink into one
        // of these means inside what it means outside.
        let identityTargets = binds.map(\.0).filter { bind in
            host.realPath(bind.source).map { real in SandboxPath.same(real, bind.target) } ?? false
        }.map(\.target)
        for (bind, readOnly) in binds {
            let source = bind.source.replacingOccurrences(of: "{workspace}", with: request.workspace)
            guard let kind = host.kind(of: source) else {
                if bind.optional { continue }
                throw OTKError(.badInput, "bind source `\(source)` does not exist",
                               remedy: "create it, remove it from the profile, or mark it optional with a trailing `?`",
                               location: bind.location)
            }
            guard let real = host.realPath(source) else {
                if bind.optional { continue }
                throw OTKError(.badInput, "bind source `\(source)` is a symlink that leads nowhere", location: bind.location)
            }
            // The workspace's contents are the untrusted side's: a symlink left there must not
            // make otk bind a host path of its choosing.
            if bind.source.hasPrefix("{workspace}") && !SandboxPath.same(real, source) {
                throw OTKError(.badInput, "bind source `\(source)` goes through a symlink inside the workspace (to `\(real)`)",
                               remedy: "workspace paths are bound only as they are, never through a symlink", location: bind.location)
            }
            // A host symlink such as /bin -> usr/bin stays a symlink when what it points to is shown
            // in the sandbox at the same path; otherwise its target is bound in its place.
            if kind == .symlink, bind.target == source, let link = host.linkTarget(source),
               identityTargets.contains(where: { SandboxPath.isWithin(real, $0) }) {
                out.append(.symlink(target: link, path: bind.target))
                continue
            }
            out.append(.bind(source: real, target: bind.target, readOnly: readOnly, location: bind.location))
        }
        out.append(.bind(source: request.workspace, target: fs.workspace, readOnly: false, location: nil))
        // The egress proxy's socket: read-only is enough to connect to it (a socket's write permission is its mode's).
        if profile.network == .proxy, let socket = request.proxySocket {
            out.append(.bind(source: socket, target: ProxyEndpoint.socketPath, readOnly: true, location: nil))
        }
        // limits.tmp_size sizes the /tmp tmpfs.
        out += fs.tmpfs.map { t in
            var sized = t
            if t.path == "/tmp", let size = profile.limits.tmpSizeBytes { sized.sizeBytes = size }
            return .tmpfs(sized)
        }
        if fs.proc { out.append(.proc) }
        if fs.dev { out.append(.dev) }

        var seen: [String: Placement] = [:]
        for p in out {
            if seen[p.path] != nil {
                throw OTKError(.badInput, "`\(p.path)` is mounted twice in the sandbox",
                               remedy: "remove one of the entries (profile or --bind)")
            }
            seen[p.path] = p
        }
        return out
    }

    private func etcFiles(_ profile: Profile) -> [(String, String)] {
        let id = profile.identity
        let home = profile.filesystem.tmpfs.map(\.path).first { $0.hasPrefix("/home/") } ?? profile.filesystem.workspace
        return [
            ("/etc/passwd", (id.uid == 0 ? "" : "root:x:0:0:root:/root:/usr/sbin/nologin\n")
                + "\(id.userName):x:\(id.uid):\(id.gid):otk sandbox:\(home):/bin/sh\n"
                + (id.uid == 65534 ? "" : "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")),
            ("/etc/group", (id.gid == 0 ? "" : "root:x:0:\n") + "\(id.userName):x:\(id.gid):\n"
                + (id.gid == 65534 ? "" : "nogroup:x:65534:\n")),
            ("/etc/hostname", "\(id.hostname)\n"),
            ("/etc/hosts", "127.0.0.1\tlocalhost \(id.hostname)\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
        ]
    }

    /// The sandbox's whole environment: nothing from the host but the profile's `pass` list.
    public func environment(profile: Profile, request: RunRequest) -> [String] {
        var env: [String: String] = [:]
        for (name, value) in request.hostEnvironment {
            let passed = profile.environment.pass.contains { pattern in
                pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
            }
            if passed && !value.contains("\0") { env[name] = value }
        }
        for (name, value) in profile.environment.set { env[name] = value }
        for (name, value) in request.extraEnvironment { env[name] = value }
        if profile.network == .proxy {
            for (name, value) in ProxyEndpoint.environment {
                // JVM option variables keep what they held; the proxy's properties come last and win.
                if name.hasSuffix("_OPTS"), let held = env[name], !held.isEmpty { env[name] = held + " " + value } else { env[name] = value }
            }
        }
        return env.keys.sorted().map { "\($0)=\(env[$0] ?? "")" }
    }
}
