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
            network:    \(p.network.rawValue)
            root:       tmpfs \(ByteSize.format(fs.rootSizeBytes))\(fs.rootReadOnly ? ", read-only" : ", writable")
            workspace:  \(fs.workspace) (read-write)
            read-only:
                \(binds(fs.readOnly))
            read-write:
                \(binds(fs.readWrite))
            tmpfs:      \(fs.tmpfs.isEmpty ? "(none)" : fs.tmpfs.map { "\($0.path) \(ByteSize.format($0.sizeBytes)) mode \(String($0.mode, radix: 8))" }.joined(separator: ", "))
            hidden:     \(fs.hidden.isEmpty ? "(none)" : fs.hidden.joined(separator: " "))
            proc:       \(fs.proc ? "private, masked: \(LaunchSpecBuilder.procMasked.count) paths, read-only: \(LaunchSpecBuilder.procReadOnly.joined(separator: " "))" : "none")
            dev:        \(fs.dev ? "minimal (null zero full random urandom tty, private pts, shm)" : "none")
            etc files:  \(fs.etcFiles ? "generated passwd, group, hostname, hosts (each skipped where a bind covers it)" : "none")
            env pass:   \(p.environment.pass.isEmpty ? "(nothing)" : p.environment.pass.joined(separator: " "))
            env set:    \(p.environment.set.keys.sorted().map { "\($0)=\(p.environment.set[$0] ?? "")" }.joined(separator: " "))
            """
        out += "\nalways:     capabilities dropped, no_new_privs, new session, no nested user namespaces, fds closed"
        return out
    }
}
