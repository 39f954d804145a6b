import OTKConfig
import OTKModel
import OTKSandbox

/// The human form of `otk profile show`: the effective profile, every value and where it came from.
enum ProfileDescription {
    static func render(_ loaded: LoadedProfile) -> String {
        let p = loaded.profile
        let fs = p.filesystem
        func binds(_ list: [BindMount]) -> String {
            list.isEmpty ? "(none)" : list.map { b in
                (b.source == b.target ? b.source : "\(b.source) -> \(b.target)") + (b.optional ? " (if present)" : "")
            }.joined(separator: "\n    ")
        }
        var out = """
            profile  \(p.name)  \(loaded.sha256)
            from     \(p.sources.joined(separator: " <- "))
            about    \(p.description)
            namespaces: \(p.namespaces.sorted().map(\.rawValue).joined(separator: " "))
            identity:   uid \(p.identity.uid), gid \(p.identity.gid), user \(p.identity.userName), hostname \(p.identity.hostname)
            network:    \(p.network.rawValue)\(p.phaseNetwork.isEmpty ? "" : " (otk execute: " + p.phaseNetwork.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.rawValue)" }.joined(separator: ", ") + ")")
            allow:      \(p.networkAllow.isEmpty ? "(none)" : p.networkAllow.map(\.description).joined(separator: " ")) (through the egress proxy, in mode proxy)
            root:       tmpfs \(ByteSize.format(fs.rootSizeBytes))\(fs.rootReadOnly ? ", read-only" : ", writable")
            workspace:  \(fs.workspace) (read-write)
            read-only:
                \(binds(fs.readOnly))
            read-write:
                \(binds(fs.readWrite))
            tmpfs:      \(fs.tmpfs.isEmpty ? "(none)" : fs.tmpfs.map { "\($0.path) \(ByteSize.format($0.path == "/tmp" ? p.limits.tmpSizeBytes ?? $0.sizeBytes : $0.sizeBytes)) mode \(String($0.mode, radix: 8))" }.joined(separator: ", "))
            hidden:     \(fs.hidden.isEmpty ? "(none)" : fs.hidden.joined(separator: " "))
            proc:       \(fs.proc ? "private, masked: \(LaunchSpecBuilder.procMasked.count) paths, read-only: \(LaunchSpecBuilder.procReadOnly.joined(separator: " "))" : "none")
            dev:        \(fs.dev ? "minimal (null zero full random urandom tty, private pts, shm)" : "none")
            etc files:  \(fs.etcFiles ? "generated passwd, group, hostname, hosts (each skipped where a bind covers it)" : "none")
            env pass:   \(p.environment.pass.isEmpty ? "(nothing)" : p.environment.pass.joined(separator: " "))
            env set:    \(p.environment.set.keys.sorted().map { "\($0)=\(p.environment.set[$0] ?? "")" }.joined(separator: " "))
            """
        out += "\nalways:     capabilities dropped, no_new_privs, new session, no nested user namespaces, fds closed"
        out += "\n" + limits(p.limits)
        out += "\n" + landlock(p)
        out += "\n" + seccomp(p)
        return out
    }

    static func limits(_ l: Limits) -> String {
        var parts: [String] = []
        if let m = l.memoryBytes { parts.append("memory \(ByteSize.format(m)) (no swap)") }
        if let p = l.pids { parts.append("pids \(p)") }
        if let c = l.cpus { parts.append("cpus \(c)") }
        if let w = l.wallSeconds { parts.append("wall \(DurationText.format(w)) then SIGTERM, SIGKILL after \(DurationText.format(l.graceSeconds))") }
        if let o = l.outputBytes { parts.append("output \(ByteSize.format(o)) per stream") }
        if let f = l.fileSizeBytes { parts.append("file size \(ByteSize.format(f))") }
        if let n = l.openFiles { parts.append("open files \(n)") }
        if let t = l.tmpSizeBytes { parts.append("/tmp \(ByteSize.format(t))") }
        parts.append("core dumps off")
        let cgroup = l.needsCgroup ? " (memory, pids and cpus need cgroups: root or a delegated parent)" : ""
        return "limits:     " + parts.joined(separator: ", ") + cgroup
    }

    static func landlock(_ p: Profile) -> String {
        let l = p.landlock
        guard l.enforce != .off else { return "landlock:   off" }
        var out = "landlock:   \(l.enforce == .required ? "required" : "best effort"), ABI \(l.minimumABI) or later"
        let fs = p.filesystem
        out += "\n    read:     every read-only mount\(fs.etcFiles ? ", the generated /etc files" : ""); every directory may be listed"
        let writableMounts = (fs.rootReadOnly ? [] : ["/"]) + [fs.workspace] + fs.readWrite.map(\.target) + fs.tmpfs.map(\.path)
        out += "\n    write:    " + (l.writable.map { "only below " + ($0.isEmpty ? "(nothing)" : $0.joined(separator: " ")) + " (narrower than the mounts)" }
            ?? "every writable mount (\(writableMounts.joined(separator: " ")))")
        if fs.dev { out += "\n    /dev:     read, write and ioctl on the device files (null, tty, pts, ...)" }
        if fs.proc { out += "\n    /proc:    read and write, within /proc's own permissions" }
        let tcp = { (ports: [UInt16]?) -> String in
            guard let ports else { return p.network == .none ? "no port" : "not restricted by Landlock" }
            return ports.isEmpty ? "no port" : "ports " + ports.map(String.init).joined(separator: " ")
        }
        out += "\n    tcp:      connect \(tcp(l.connectTCP)); bind \(tcp(l.bindTCP)) (ABI 4)"
        out += "\n    scope:    no signals to, and no abstract unix sockets of, processes outside the sandbox (ABI 6)"
        return out
    }

    /// The effective seccomp rule set, as the compiler will see it.
    static func seccomp(_ p: Profile) -> String {
        guard let policy = SeccompResolver.policy(p.seccomp) else { return "seccomp:    off" }
        var out = "seccomp:    \(policy.origin == "built-in" ? "built-in allowlist" : "imported from \(policy.origin)"), for \(SeccompCompiler.nativeArchitecture) (libseccomp \(SeccompCompiler.libraryVersion))"
        out += "\n    default:  \(policy.defaultAction) for every call no rule allows"
        out += "\n    other ABIs (i386 int 0x80, x32): the process is killed"
        let permitting = policy.rules.filter { $0.action.permits }
        let denying = policy.rules.filter { !$0.action.permits }
        out += "\n    allowed (\(Set(permitting.flatMap(\.names)).count) calls):"
        for rule in permitting { out += line(rule) }
        out += "\n    denied, whatever else allows them:"
        for rule in denying { out += line(rule) }
        return out
    }

    private static func line(_ rule: SeccompRule) -> String {
        var head = "\n      \(rule.action)"
        if !rule.conditions.isEmpty { head += " when " + rule.conditions.map(\.description).joined(separator: " and ") }
        if !rule.comment.isEmpty { head += "  # " + rule.comment }
        if let location = rule.location { head += " (\(location))" }
        // Names wrapped at about 100 columns.
        var lines: [String] = []
        var current = "        "
        for name in rule.names {
            if current.count + name.count > 100 { lines.append(current); current = "        " }
            current += name + " "
        }
        lines.append(current)
        return head + "\n" + lines.map { String($0.dropLast()) }.joined(separator: "\n")
    }
}
