import OTKModel

/// Turns a layered profile configuration into a validated `Profile`.
/// Every rule lives here; the launcher trusts what comes out.
enum ProfileDecoder {
    static let schemaVersion = 1

    static func decode(_ config: LayeredConfig, name: String) throws(OTKError) -> Profile {
        let top = ConfigReader(config)
        try top.requireOnly(["schema", "description", "extends", "namespaces", "identity", "filesystem", "network", "env", "seccomp", "landlock", "limits", "plan"])
        // Every file in the chain states its schema, so an old file cannot be read under new rules.
        for layer in config.layers {
            let reader = ConfigReader(LayeredConfig(layers: [layer]))
            guard let schema = try reader.integer("schema", in: 1...Int.max) else {
                throw OTKError(.badInput, "missing `schema = \(schemaVersion)`", location: SourceLocation(file: layer.file, line: 1))
            }
            guard schema == schemaVersion else {
                throw reader.error("schema", "schema \(schema) is not supported (this otk reads schema \(schemaVersion))")
            }
        }
        let namespaces = try decodeNamespaces(top)
        let (network, phaseNetwork, networkAllow) = try decodeNetwork(top)
        let identity = try decodeIdentity(top)
        let filesystem = try decodeFilesystem(top)
        let environment = try decodeEnvironment(top)
        let seccomp = try decodeSeccomp(top)
        let landlock = try decodeLandlock(top, filesystem: filesystem)
        let limits = try decodeLimits(top)
        if limits.tmpSizeBytes != nil && !filesystem.tmpfs.contains(where: { $0.path == "/tmp" }) {
            throw top.error("limits", "`tmp_size` sizes the tmpfs at /tmp, and this profile has none (add it to filesystem.tmpfs)")
        }

        // Combinations that cannot work are refused here, not discovered halfway through a launch.
        if network != .host && !namespaces.contains(.net) {
            throw top.error("network", "network mode `\(network.rawValue)` needs the net namespace (namespaces.net = true)")
        }
        if network == .host && namespaces.contains(.net) {
            throw top.error("network", "network mode `host` shares the host's network; set namespaces.net = false to say so")
        }
        return Profile(
            name: name,
            description: try top.string("description") ?? "",
            sources: config.layers.map(\.file),
            namespaces: namespaces,
            identity: identity,
            filesystem: filesystem,
            network: network,
            environment: environment,
            seccomp: seccomp,
            landlock: landlock,
            limits: limits,
            phaseNetwork: phaseNetwork,
            plan: try decodePlan(top),
            networkAllow: networkAllow)
    }

    private static func decodePlan(_ top: ConfigReader) throws(OTKError) -> PlanSizeLimits {
        guard let r = try top.sub("plan") else { return PlanSizeLimits() }
        try r.requireOnly(["max_files", "max_file_size", "max_total_size"])
        return PlanSizeLimits(maxFiles: try r.integer("max_files", in: 1...1_000_000),
                              maxFileBytes: try r.size("max_file_size"), maxTotalBytes: try r.size("max_total_size"))
    }

    private static func decodeLimits(_ top: ConfigReader) throws(OTKError) -> Limits {
        var limits = Limits()
        guard let r = try top.sub("limits") else { return limits }
        try r.requireOnly(["memory", "pids", "cpus", "wall", "grace", "output", "file_size", "open_files", "tmp_size"])
        limits.memoryBytes = try r.size("memory")
        if let m = limits.memoryBytes, m < 4 << 20 { throw r.error("memory", "\(ByteSize.format(m)) is too little to start a process (at least 4M)") }
        // The sandbox's init is one of them, and the command another.
        limits.pids = try r.integer("pids", in: 2...4_194_304)
        if let cpus = try r.number("cpus") {
            guard cpus >= 0.01, cpus <= 4096 else { throw r.error("cpus", "\(cpus) is not a number of CPUs between 0.01 and 4096") }
            limits.cpus = cpus
        }
        limits.wallSeconds = try r.duration("wall", minimum: 0.001)
        if let grace = try r.duration("grace", minimum: 0) { limits.graceSeconds = grace }
        limits.outputBytes = try r.size("output")
        limits.fileSizeBytes = try r.size("file_size")
        limits.openFiles = try r.integer("open_files", in: 16...1_048_576)
        limits.tmpSizeBytes = try r.size("tmp_size")
        return limits
    }

    private static func decodeSeccomp(_ top: ConfigReader) throws(OTKError) -> SeccompSettings {
        var settings = SeccompSettings()
        guard let r = try top.sub("seccomp") else { return settings }
        try r.requireOnly(["enabled", "import", "action", "allow", "deny"])
        if let on = try r.bool("enabled") { settings.enabled = on }
        if let path = try r.string("import") {
            guard !path.isEmpty, !path.contains("\0") else { throw r.error("import", "expected the path of a Docker/OCI seccomp JSON file") }
            // Relative to the profile file that says it, like `extends`.
            let base = r.config.definingFile(of: r.path + ["import"]) ?? ""
            settings.importPath = path.hasPrefix("/") ? path : SandboxPath.parent(base) + "/" + path
        }
        if let action = try r.string("action") {
            guard let parsed = SeccompSettings.DefaultAction(rawValue: action) else {
                throw r.error("action", "`\(action)` is not one of \(SeccompSettings.DefaultAction.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.action = parsed
        }
        settings.allow = try syscallNames(r, "allow")
        settings.deny = try syscallNames(r, "deny")
        if let both = settings.allow.first(where: { a in settings.deny.contains { $0.name == a.name } }) {
            throw OTKError(.badInput, "`seccomp`: `\(both.name)` is in both `allow` and `deny`", location: both.location)
        }
        return settings
    }

    /// Syscall names as the kernel spells them; whether the kernel has each is checked when the filter is compiled.
    private static func syscallNames(_ r: ConfigReader, _ key: String) throws(OTKError) -> [SeccompName] {
        var out: [SeccompName] = []
        for name in try r.strings(key) ?? [] {
            let ok = !name.isEmpty && name.utf8.count <= 64
                && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
            guard ok else { throw r.error(key, "`\(name)` is not a system call name (lower-case letters, digits, `_`)", element: name) }
            guard !out.contains(where: { $0.name == name }) else { throw r.error(key, "`\(name)` is listed twice", element: name) }
            out.append(SeccompName(name, location: r.config.location(of: r.path + [key], element: name)))
        }
        return out
    }

    private static func decodeLandlock(_ top: ConfigReader, filesystem fs: Profile.Filesystem) throws(OTKError) -> LandlockSettings {
        var settings = LandlockSettings()
        guard let r = try top.sub("landlock") else { return settings }
        try r.requireOnly(["enforce", "min_abi", "writable", "connect_tcp", "bind_tcp"])
        if let enforce = try r.string("enforce") {
            guard let parsed = LandlockSettings.Enforcement(rawValue: enforce) else {
                throw r.error("enforce", "`\(enforce)` is not one of \(LandlockSettings.Enforcement.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.enforce = parsed
        }
        if let abi = try r.integer("min_abi", in: 1...64) { settings.minimumABI = abi }
        if let paths = try r.strings("writable") {
            let writableMounts = [fs.workspace] + fs.readWrite.map(\.target) + fs.tmpfs.map(\.path)
            for path in paths {
                guard SandboxPath.isClean(path) else { throw r.error("writable", "`\(path)` is not a clean absolute path", element: path) }
                // Landlock can only narrow what the mounts allow: a path outside them would be a promise it cannot keep.
                guard writableMounts.contains(where: { SandboxPath.isWithin(path, $0) }) else {
                    throw r.error("writable", "`\(path)` is not inside a writable mount (the workspace, `read_write` or `tmpfs`)", element: path)
                }
            }
            settings.writable = paths
        }
        settings.connectTCP = try ports(r, "connect_tcp")
        settings.bindTCP = try ports(r, "bind_tcp")
        return settings
    }

    private static func ports(_ r: ConfigReader, _ key: String) throws(OTKError) -> [UInt16]? {
        guard let items = try r.array(key) else { return nil }
        var out: [UInt16] = []
        for item in items {
            guard case .integer(let port) = item, (0...65535).contains(port) else {
                throw r.error(key, "expected TCP port numbers (0-65535), found \(item.typeName == "integer" ? "an out-of-range port" : item.typeName)")
            }
            out.append(UInt16(port))
        }
        return out
    }

    private static func decodeNamespaces(_ top: ConfigReader) throws(OTKError) -> Set<NamespaceKind> {
        var set = Set(NamespaceKind.allCases)
        guard let ns = try top.sub("namespaces") else { return set }
        try ns.requireOnly(Set(NamespaceKind.allCases.map(\.rawValue)))
        for kind in NamespaceKind.allCases {
            guard let on = try ns.bool(kind.rawValue) else { continue }
            if !on && (kind == .user || kind == .mount) {
                throw ns.error(kind.rawValue, "cannot be false: otk always builds a private root inside a user namespace")
            }
            // The sandbox's init kills everything it can signal when the command ends; only in
            // a pid namespace of its own is that just the sandbox.
            if !on && kind == .pid {
                throw ns.error(kind.rawValue, "cannot be false: the sandbox's init must be pid 1 of its own pid namespace to take down everything the command started")
            }
            if !on { set.remove(kind) }
        }
        return set
    }

    /// `mode`, and the phases of `otk execute` whose network differs from it.
    private static func decodeNetwork(_ top: ConfigReader) throws(OTKError) -> (NetworkMode, [String: NetworkMode], [HostPattern]) {
        guard let net = try top.sub("network") else { return (.none, [:], []) }
        try net.requireOnly(["mode", "install", "build", "run", "allow"])
        func mode(_ key: String) throws(OTKError) -> NetworkMode? {
            guard let text = try net.string(key) else { return nil }
            guard let parsed = NetworkMode(rawValue: text) else {
                throw net.error(key, "`\(text)` is not one of \(NetworkMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return parsed
        }
        var phases: [String: NetworkMode] = [:]
        for phase in ["install", "build", "run"] {
            if let m = try mode(phase) { phases[phase] = m }
        }
        var allow: [HostPattern] = []
        for text in try net.strings("allow") ?? [] {
            switch HostPattern.parse(text) {
            case .success(let pattern): allow.append(pattern)
            case .failure(let failure): throw net.error("allow", failure.message, element: text)
            }
        }
        return (try mode("mode") ?? .none, phases, allow)
    }

    private static func decodeIdentity(_ top: ConfigReader) throws(OTKError) -> Profile.Identity {
        var identity = Profile.Identity(uid: 1000, gid: 1000, userName: "sandbox", hostname: "otk")
        guard let id = try top.sub("identity") else { return identity }
        try id.requireOnly(["uid", "gid", "user", "hostname"])
        // 4294967295 is (uid_t)-1, which means "unchanged" to the kernel.
        if let uid = try id.integer("uid", in: 0...4_294_967_294) { identity.uid = UInt32(uid) }
        if let gid = try id.integer("gid", in: 0...4_294_967_294) { identity.gid = UInt32(gid) }
        if let user = try id.string("user") {
            guard isPortableName(user) else { throw id.error("user", "`\(user)` is not a user name ([a-z_][a-z0-9_-]{0,31})") }
            identity.userName = user
        }
        if let host = try id.string("hostname") {
            let ok = !host.isEmpty && host.utf8.count <= 64 && host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
            guard ok else { throw id.error("hostname", "`\(host)` is not a host name (1-64 letters, digits, '-' and '.')") }
            identity.hostname = host
        }
        return identity
    }

    private static func isPortableName(_ s: String) -> Bool {
        guard let first = s.first, first == "_" || (first.isASCII && first.isLowercase), s.utf8.count <= 32 else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    private static func decodeFilesystem(_ top: ConfigReader) throws(OTKError) -> Profile.Filesystem {
        var fs = Profile.Filesystem(rootSizeBytes: 8 << 20, rootReadOnly: true, workspace: "/workspace", readOnly: [], readWrite: [],
                                    tmpfs: [], hidden: [], proc: true, dev: true, etcFiles: true)
        guard let r = try top.sub("filesystem") else { return fs }
        try r.requireOnly(["root_size", "root_read_only", "workspace", "read_only", "read_write", "tmpfs", "hidden", "proc", "dev", "etc_files"])
        if let size = try r.size("root_size") { fs.rootSizeBytes = size }
        if let ro = try r.bool("root_read_only") { fs.rootReadOnly = ro }
        if let ws = try r.string("workspace") {
            guard SandboxPath.isClean(ws), ws != "/" else { throw r.error("workspace", "`\(ws)` is not a clean absolute path below /") }
            fs.workspace = ws
        }
        fs.readOnly = try bindList(r, "read_only")
        fs.readWrite = try bindList(r, "read_write")
        for (index, item) in (try r.array("tmpfs") ?? []).enumerated() {
            fs.tmpfs.append(try tmpfsEntry(r, item, index: index))
        }
        for path in try r.strings("hidden") ?? [] {
            guard SandboxPath.isClean(path), path != "/" else { throw r.error("hidden", "`\(path)` is not a clean absolute path below /", element: path) }
            fs.hidden.append(path)
        }
        if let proc = try r.bool("proc") { fs.proc = proc }
        if let dev = try r.bool("dev") { fs.dev = dev }
        if let etc = try r.bool("etc_files") { fs.etcFiles = etc }

        var targets: [String: String] = [:]
        for bind in fs.readOnly + fs.readWrite {
            // Each entry knows its own line (bindList recorded it from the entry's text).
            if let previous = targets[bind.target] {
                throw OTKError(.badInput, "`\(bind.target)` is mounted twice (from `\(previous)` and `\(bind.source)`)", location: bind.location)
            }
            targets[bind.target] = bind.source
            if bind.target == fs.workspace {
                throw OTKError(.badInput, "`\(bind.target)` is where the workspace goes; bind something else elsewhere", location: bind.location)
            }
        }
        return fs
    }

    /// A bind entry: "PATH", "PATH?" (optional), "SRC:DST", or { source, target, optional }.
    private static func bindList(_ r: ConfigReader, _ key: String) throws(OTKError) -> [BindMount] {
        var out: [BindMount] = []
        for item in try r.array(key) ?? [] {
            var source: String, target: String, optional = false
            var text = ""
            switch item {
            case .string(let s):
                text = s
                var spec = s
                if spec.hasSuffix("?") { optional = true; spec.removeLast() }
                if let colon = spec.firstIndex(of: ":") {
                    source = String(spec[..<colon])
                    target = String(spec[spec.index(after: colon)...])
                } else {
                    source = spec
                    target = spec
                }
            case .table(let t):
                let allowed: Set<String> = ["source", "target", "optional"]
                if let bad = t.keys.sorted().first(where: { !allowed.contains($0) }) {
                    throw r.error(key, "unknown key `\(bad)` in a mount entry (known: optional, source, target)")
                }
                guard case .string(let s)? = t["source"] else { throw r.error(key, "a mount entry needs `source = \"/host/path\"`") }
                source = s
                text = s
                if case .string(let d)? = t["target"] { target = d } else if t["target"] == nil { target = s } else {
                    throw r.error(key, "`target` must be a string", element: s)
                }
                if case .bool(let o)? = t["optional"] { optional = o } else if t["optional"] != nil {
                    throw r.error(key, "`optional` must be true or false", element: s)
                }
            default:
                throw r.error(key, "expected a path string or a { source, target } table, found \(item.typeName)")
            }
            // A workspace-relative source must stay inside the workspace: no `..`, no `.`.
            let sourceOK = SandboxPath.isClean(source) || source == "{workspace}"
                || (source.hasPrefix("{workspace}/") && source != "{workspace}/"
                    && SandboxPath.isClean(String(source.dropFirst("{workspace}".count))))
            guard sourceOK else {
                throw r.error(key, "source `\(source)` is not a clean absolute path (no `..`, `.`, `//` or trailing `/`)", element: text)
            }
            guard SandboxPath.isClean(target), target != "/" else {
                throw r.error(key, "target `\(target)` is not a clean absolute path below /", element: text)
            }
            out.append(BindMount(source: source, target: target, optional: optional, location: r.config.location(of: r.path + [key], element: text)))
        }
        return out
    }

    private static func tmpfsEntry(_ r: ConfigReader, _ item: ConfigValue, index: Int) throws(OTKError) -> TmpfsMount {
        guard case .table(let t) = item else { throw r.error("tmpfs", "expected { path = \"/tmp\", size = \"64M\" }, found \(item.typeName)") }
        let allowed: Set<String> = ["path", "size", "mode"]
        if let bad = t.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw r.error("tmpfs", "unknown key `\(bad)` in tmpfs entry \(index + 1) (known: mode, path, size)")
        }
        guard case .string(let path)? = t["path"], SandboxPath.isClean(path), path != "/" else {
            throw r.error("tmpfs", "tmpfs entry \(index + 1) needs `path`, a clean absolute path below /")
        }
        let location = r.config.location(of: r.path + ["tmpfs"], element: path)
        let where_ = "tmpfs `\(path)`"
        var size: UInt64 = 64 << 20
        switch t["size"] {
        case nil: break
        case .string(let s)?:
            guard let v = ByteSize.parse(s), v > 0, v <= ByteSize.maximum else {
                throw OTKError(.badInput, "\(where_): size `\(s)` is not between 1 byte and 1T", location: location)
            }
            size = v
        case .integer(let i)? where i > 0 && UInt64(i) <= ByteSize.maximum: size = UInt64(i)
        default: throw OTKError(.badInput, "\(where_): size must be a string such as \"64M\"", location: location)
        }
        var mode: UInt32 = 0o1777
        switch t["mode"] {
        case nil: break
        case .string(let s)?:
            guard let m = UInt32(s, radix: 8), m <= 0o7777 else {
                throw OTKError(.badInput, "\(where_): mode `\(s)` is not an octal mode such as \"1777\"", location: location)
            }
            mode = m
        default: throw OTKError(.badInput, "\(where_): mode must be an octal string such as \"1777\"", location: location)
        }
        return TmpfsMount(path: path, sizeBytes: size, mode: mode, location: location)
    }

    private static func decodeEnvironment(_ top: ConfigReader) throws(OTKError) -> Profile.Environment {
        var env = Profile.Environment(pass: [], set: [:])
        guard let r = try top.sub("env") else { return env }
        try r.requireOnly(["pass", "set"])
        for name in try r.strings("pass") ?? [] {
            let base = name.hasSuffix("*") ? String(name.dropLast()) : name
            guard EnvironmentName.isValid(base) || (name.hasSuffix("*") && base.isEmpty == false && EnvironmentName.isValid(base + "X")) else {
                throw r.error("pass", "`\(name)` is not a variable name (or a prefix ending in `*`)", element: name)
            }
            env.pass.append(name)
        }
        if let set = try r.sub("set") {
            for (name, value) in set.table.sorted(by: { $0.key < $1.key }) {
                guard EnvironmentName.isValid(name) else { throw set.error(name, "`\(name)` is not a variable name") }
                guard case .string(let s) = value else { throw set.error(name, "expected a string, found \(value.typeName)") }
                guard !s.contains("\0") else { throw set.error(name, "value contains a NUL byte") }
                env.set[name] = s
            }
        }
        return env
    }
}

/// Environment variable names as POSIX shells accept them.
public enum EnvironmentName {
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
