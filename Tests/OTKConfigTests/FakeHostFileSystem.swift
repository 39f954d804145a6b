import OTKModel
import OTKSandbox

/// A host file system made of a dictionary: path -> kind, canonical path, link target, owner.
struct FakeHost: HostFileSystem {
    struct Entry: Sendable {
        var kind: HostFileKind
        /// nil for a symlink that leads nowhere.
        var real: String?
        var link: String?
        var owner: UInt32
    }

    var entries: [String: Entry] = [:]

    init(_ entries: [String: Entry] = [:]) {
        self.entries = entries
    }

    func kind(of path: String) -> HostFileKind? { entries[path]?.kind }
    func realPath(_ path: String) -> String? { entries[path]?.real }
    func linkTarget(_ path: String) -> String? { entries[path]?.link }
    func owner(of path: String) -> UInt32? { entries[path]?.owner }

    func adding(dirs paths: String..., owner: UInt32 = 0) -> FakeHost {
        var copy = self
        for p in paths { copy.entries[p] = Entry(kind: .directory, real: p, link: nil, owner: owner) }
        return copy
    }

    func adding(file path: String, owner: UInt32 = 0) -> FakeHost {
        var copy = self
        copy.entries[path] = Entry(kind: .file, real: path, link: nil, owner: owner)
        return copy
    }

    /// A symlink at `path` whose text is `link` and which resolves to `real` (nil: dangling).
    func adding(symlink path: String, to link: String, real: String?) -> FakeHost {
        var copy = self
        copy.entries[path] = Entry(kind: .symlink, real: real, link: link, owner: 0)
        return copy
    }
}

/// A profile built in code, strict-like unless told otherwise.
func makeProfile(
    namespaces: Set<NamespaceKind> = Set(NamespaceKind.allCases),
    network: NetworkMode = .none,
    readOnly: [BindMount] = [],
    readWrite: [BindMount] = [],
    tmpfs: [TmpfsMount] = [],
    hidden: [String] = [],
    proc: Bool = true,
    dev: Bool = true,
    etcFiles: Bool = true,
    rootReadOnly: Bool = true,
    workspace: String = "/workspace",
    pass: [String] = [],
    set: [String: String] = [:]
) -> Profile {
    Profile(
        name: "test", description: "", sources: ["/test.toml"], namespaces: namespaces,
        identity: .init(uid: 1000, gid: 1001, userName: "sandbox", hostname: "otk"),
        filesystem: .init(rootSizeBytes: 8 << 20, rootReadOnly: rootReadOnly, workspace: workspace, readOnly: readOnly,
                          readWrite: readWrite, tmpfs: tmpfs, hidden: hidden, proc: proc, dev: dev, etcFiles: etcFiles),
        network: network,
        environment: .init(pass: pass, set: set))
}

func bind(_ path: String, optional: Bool = false, line: Int? = nil) -> BindMount {
    BindMount(source: path, target: path, optional: optional, location: line.map { SourceLocation(file: "/test.toml", line: $0) })
}

func bind(_ source: String, _ target: String, optional: Bool = false, line: Int? = nil) -> BindMount {
    BindMount(source: source, target: target, optional: optional, location: line.map { SourceLocation(file: "/test.toml", line: $0) })
}
