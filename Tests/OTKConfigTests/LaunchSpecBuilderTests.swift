import OTKModel
import OTKSandbox
import Testing

@Suite("LaunchSpecBuilder")
struct LaunchSpecBuilderTests {
    static let identity = HostIdentity(uid: 4242, gid: 4343, setgroupsAllowed: false)
    static let standardTmpfs = [
        TmpfsMount(path: "/tmp", sizeBytes: 256 << 20, mode: 0o1777),
        TmpfsMount(path: "/dev/shm", sizeBytes: 64 << 20, mode: 0o1777),
        TmpfsMount(path: "/home/sandbox", sizeBytes: 64 << 20, mode: 0o700),
    ]
    /// A merged-/usr host.
    static let host = FakeHost()
        .adding(dirs: "/usr", "/etc", "/etc/ssl/certs", "/opt", "/host/ws", "/srv")
        .adding(symlink: "/bin", to: "usr/bin", real: "/usr/bin")
        .adding(symlink: "/lib", to: "usr/lib", real: "/usr/lib")

    func request(_ command: [String] = ["/usr/bin/env", "-i"], extraBinds: [(bind: BindMount, readOnly: Bool)] = [],
                 extraEnvironment: [(String, String)] = [], hostEnvironment: [String: String] = [:]) -> RunRequest {
        RunRequest(command: command, workspace: "/host/ws", extraBinds: extraBinds, extraEnvironment: extraEnvironment,
                   hostEnvironment: hostEnvironment, identity: Self.identity, landlockABI: 7)
    }

    func build(_ profile: Profile, _ request: RunRequest? = nil, host: FakeHost = Self.host) throws -> LaunchSpec {
        try LaunchSpecBuilder(host: host).build(profile: profile, request: request ?? self.request())
    }

    func index(_ ops: [LaunchOperation], _ op: LaunchOperation, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> Int {
        try #require(ops.firstIndex(of: op), "missing \(op)", sourceLocation: sourceLocation)
    }

    // MARK: - the whole sequence

    @Test func strictLikeProfileGivesTheExactSequence() throws {
        let profile = makeProfile(
            network: .loopback,
            readOnly: [bind("/usr"), bind("/bin", optional: true), bind("/lib64", optional: true), bind("/etc/ssl/certs", optional: true)],
            tmpfs: Self.standardTmpfs,
            hidden: ["/usr/secret"],
            pass: ["TERM"],
            set: ["HOME": "/home/sandbox"])
        let spec = try build(profile, request(hostEnvironment: ["TERM": "xterm", "SECRET": "x"]))
        let passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:1000:1001:otk sandbox:/home/sandbox:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        let expected: [LaunchOperation] = [
            .namespace(.user), .namespace(.mount), .namespace(.pid), .namespace(.net),
            .namespace(.ipc), .namespace(.uts), .namespace(.cgroup),
            .uidMap(inside: 1000, host: 4242), .gidMap(inside: 1001, host: 4343), .setgroups(allow: false),
            .hostname("otk"), .loopback, .denyUserNamespaces, .rootSize(8 << 20),
            // depth 1, profile order
            .bind(source: "/usr", target: "/usr", readOnly: true, optional: false),
            .symlink(target: "usr/bin", path: "/bin"),
            .bind(source: "/host/ws", target: "/workspace", readOnly: false, optional: false),
            .tmpfs(path: "/tmp", sizeBytes: 256 << 20, mode: 0o1777),
            .proc("/proc"),
        ] + LaunchSpecBuilder.procMasked.map { .mask($0) } + LaunchSpecBuilder.procReadOnly.map { .readOnly($0) } + [
            .dev("/dev"),
            // depth 2
            .tmpfs(path: "/dev/shm", sizeBytes: 64 << 20, mode: 0o1777),
            .tmpfs(path: "/home/sandbox", sizeBytes: 64 << 20, mode: 0o700),
            // depth 3
            .bind(source: "/etc/ssl/certs", target: "/etc/ssl/certs", readOnly: true, optional: false),
            .file(path: "/etc/passwd", mode: 0o644, content: passwd),
            .file(path: "/etc/group", mode: 0o644, content: "root:x:0:\nsandbox:x:1001:\nnogroup:x:65534:\n"),
            .file(path: "/etc/hostname", mode: 0o644, content: "otk\n"),
            .file(path: "/etc/hosts", mode: 0o644, content: "127.0.0.1\tlocalhost otk\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
            .mask("/usr/secret"),
            .rootReadOnly,
            .env("HOME=/home/sandbox"), .env("TERM=xterm"),
            .arg("/usr/bin/env"), .arg("-i"),
            .cwd("/workspace"),
            // Landlock: every handled right at ABI 7; listing everywhere; reads below read-only mounts and
            // the generated /etc files; everything below writable mounts; devices and /proc as they need.
            .landlock(fs: 0xffff, net: 0, scoped: 3),
            .landlockPath(access: Landlock.readDir, path: "/", optional: false),
            .landlockPath(access: Landlock.readFile | Landlock.readDir, path: "/etc", optional: true),
            .landlockPath(access: Landlock.read, path: "/usr", optional: false),
            .landlockPath(access: 0xffff, path: "/workspace", optional: false),
            .landlockPath(access: 0xffff, path: "/tmp", optional: false),
            .landlockPath(access: Landlock.readFile | Landlock.writeFile | Landlock.readDir | Landlock.truncate, path: "/proc", optional: false),
            .landlockPath(access: Landlock.readFile | Landlock.writeFile | Landlock.readDir | Landlock.truncate | Landlock.ioctlDev,
                          path: "/dev", optional: false),
            .landlockPath(access: 0xffff, path: "/dev/shm", optional: false),
            .landlockPath(access: 0xffff, path: "/home/sandbox", optional: false),
            .landlockPath(access: Landlock.read, path: "/etc/ssl/certs", optional: false),
            .rlimit(.core, 0),
            .seccomp,
        ]
        #expect(spec.operations == expected)
        #expect(spec.layers == [
            "user-namespace", "mount-namespace", "pid-namespace", "net-namespace", "ipc-namespace", "uts-namespace",
            "cgroup-namespace", "network-loopback", "no-nested-user-namespaces", "private-root", "private-proc",
            "read-only-root", "capabilities-dropped", "no-new-privs", "new-session", "landlock-fs", "landlock-scope", "seccomp",
        ])
    }

    @Test func namespacesComeFirstInFixedOrder() throws {
        let spec = try build(makeProfile(namespaces: [.cgroup, .net, .user, .mount, .pid], proc: true))
        let leading = spec.operations.prefix { if case .namespace = $0 { return true } else { return false } }
        #expect(Array(leading) == [.namespace(.user), .namespace(.mount), .namespace(.pid), .namespace(.net), .namespace(.cgroup)])
        #expect(spec.operations.filter { if case .namespace = $0 { return true } else { return false } }.count == 5)
    }

    @Test func parentsBeforeChildrenWhateverTheProfileOrder() throws {
        let host = Self.host.adding(dirs: "/srv/a", "/srv/a/b")
        let profile = makeProfile(readOnly: [bind("/srv/a/b", "/data/a/b"), bind("/srv/a", "/data/a"), bind("/srv", "/data")],
                                  tmpfs: [TmpfsMount(path: "/data/a/b/c/tmp", sizeBytes: 1, mode: 0o700)])
        let ops = try build(profile, host: host).operations
        let data = try index(ops, .bind(source: "/srv", target: "/data", readOnly: true, optional: false))
        let a = try index(ops, .bind(source: "/srv/a", target: "/data/a", readOnly: true, optional: false))
        let b = try index(ops, .bind(source: "/srv/a/b", target: "/data/a/b", readOnly: true, optional: false))
        let tmp = try index(ops, .tmpfs(path: "/data/a/b/c/tmp", sizeBytes: 1, mode: 0o700))
        #expect(data < a && a < b && b < tmp)
    }

    @Test func procIsFollowedImmediatelyByItsMasksAndReadOnlyPaths() throws {
        let ops = try build(makeProfile(tmpfs: Self.standardTmpfs)).operations
        let proc = try index(ops, .proc("/proc"))
        let after = Array(ops[(proc + 1)...].prefix(LaunchSpecBuilder.procMasked.count + LaunchSpecBuilder.procReadOnly.count))
        #expect(after == LaunchSpecBuilder.procMasked.map { .mask($0) } + LaunchSpecBuilder.procReadOnly.map { .readOnly($0) })
        #expect(LaunchSpecBuilder.procMasked.contains("/proc/kcore"))
        #expect(LaunchSpecBuilder.procReadOnly.contains("/proc/sys"))
    }

    @Test func devComesBeforeTheDevShmTmpfs() throws {
        // Listed first in the profile, /dev/shm must still wait for /dev.
        let profile = makeProfile(tmpfs: [TmpfsMount(path: "/dev/shm", sizeBytes: 1 << 20, mode: 0o1777)])
        let ops = try build(profile).operations
        let dev = try index(ops, .dev("/dev"))
        let shm = try index(ops, .tmpfs(path: "/dev/shm", sizeBytes: 1 << 20, mode: 0o1777))
        #expect(dev < shm)
    }

    @Test func rootReadOnlyComesAfterFilesAndHiddenPaths() throws {
        let ops = try build(makeProfile(hidden: ["/usr/secret", "/etc/x"])).operations
        let root = try index(ops, .rootReadOnly)
        let lastFile = try #require(ops.lastIndex { if case .file = $0 { return true } else { return false } })
        let lastMask = try index(ops, .mask("/etc/x"))
        #expect(lastFile < root)
        #expect(lastMask < root)
        let firstEnvOrArg = try #require(ops.firstIndex { if case .arg = $0 { return true } else { return false } })
        #expect(root < firstEnvOrArg)
        #expect(ops.contains(.cwd("/workspace")))
    }

    @Test func noRootReadOnlyWhenTheProfileSaysSo() throws {
        let spec = try build(makeProfile(rootReadOnly: false))
        #expect(!spec.operations.contains(.rootReadOnly))
        #expect(!spec.layers.contains("read-only-root"))
    }

    @Test func noProcMeansNoMasks() throws {
        let spec = try build(makeProfile(namespaces: Set(NamespaceKind.allCases).subtracting([.pid]), proc: false, dev: false))
        #expect(!spec.operations.contains(.proc("/proc")))
        #expect(!spec.operations.contains(.mask("/proc/kcore")))
        #expect(!spec.operations.contains(.dev("/dev")))
        #expect(!spec.layers.contains("private-proc"))
    }

    @Test func argsEnvAndCwdArePresentInOrder() throws {
        let spec = try build(makeProfile(workspace: "/w"), request(["prog", "a b", "", "--x=1"]))
        let args = spec.operations.compactMap { op -> String? in if case .arg(let a) = op { return a } else { return nil } }
        #expect(args == ["prog", "a b", "", "--x=1"])
        #expect(spec.operations.contains(.cwd("/w")))
        #expect(spec.operations.contains(.bind(source: "/host/ws", target: "/w", readOnly: false, optional: false)))
    }

    @Test func uidGidHostnameAndNetworkOps() throws {
        let noUTS = try build(makeProfile(namespaces: Set(NamespaceKind.allCases).subtracting([.uts]))).operations
        #expect(!noUTS.contains(.hostname("otk")))
        #expect(!noUTS.contains(.loopback), "network none keeps loopback down")
        let hostNet = try build(makeProfile(namespaces: Set(NamespaceKind.allCases).subtracting([.net]), network: .host))
        #expect(!hostNet.operations.contains(.loopback))
        #expect(!hostNet.operations.contains(.namespace(.net)))
        #expect(hostNet.layers.contains("network-host"))
        let privileged = HostIdentity(uid: 1000, gid: 1000, setgroupsAllowed: true)
        let r = RunRequest(command: ["x"], workspace: "/host/ws", identity: privileged, landlockABI: 7)
        let ops = try build(makeProfile(), r).operations
        #expect(ops.contains(.setgroups(allow: true)))
        #expect(ops.contains(.uidMap(inside: 1000, host: 1000)))
        #expect(ops.contains(.gidMap(inside: 1001, host: 1000)))
    }

    @Test(arguments: [[String](), [""]])
    func noCommandIsBadInput(command: [String]) throws {
        let error = #expect(throws: OTKError.self) { _ = try build(makeProfile(), request(command)) }
        #expect(error?.kind == .badInput)
    }

    // MARK: - bind sources

    @Test func missingBindSourceIsBadInputWithTheBindsLocation() throws {
        let profile = makeProfile(readOnly: [bind("/usr"), bind("/nonexistent", line: 17)])
        let error = #expect(throws: OTKError.self) { _ = try build(profile) }
        #expect(error?.kind == .badInput)
        #expect(error?.location == OTKModel.SourceLocation(file: "/test.toml", line: 17))
        #expect(error?.message.contains("/nonexistent") == true)
    }

    @Test func missingOptionalBindSourceIsSkipped() throws {
        let profile = makeProfile(readOnly: [bind("/usr"), bind("/lib64", optional: true), bind("/lib32", "/x", optional: true)])
        let ops = try build(profile).operations
        #expect(!ops.contains { if case .bind(_, let t, _, _) = $0 { return t == "/lib64" || t == "/x" } else { return false } })
        #expect(ops.contains(.bind(source: "/usr", target: "/usr", readOnly: true, optional: false)))
    }

    @Test func danglingSymlinkSource() throws {
        let host = Self.host.adding(symlink: "/gone", to: "nowhere", real: nil)
        let error = #expect(throws: OTKError.self) {
            _ = try build(makeProfile(readOnly: [bind("/gone", line: 3)]), host: host)
        }
        #expect(error?.kind == .badInput)
        #expect(error?.location?.line == 3)
        let ops = try build(makeProfile(readOnly: [bind("/gone", optional: true)]), host: host).operations
        #expect(!ops.contains { if case .bind(_, let t, _, _) = $0 { return t == "/gone" } else { return false } })
        #expect(!ops.contains { if case .symlink(_, let p) = $0 { return p == "/gone" } else { return false } })
    }

    @Test func hostSymlinkStaysASymlinkWhenItsTargetIsBound() throws {
        let ops = try build(makeProfile(readOnly: [bind("/bin", optional: true), bind("/usr")])).operations
        #expect(ops.contains(.symlink(target: "usr/bin", path: "/bin")))
        #expect(!ops.contains(.bind(source: "/usr/bin", target: "/bin", readOnly: true, optional: false)))
    }

    @Test func hostSymlinkIsBoundResolvedWhenItsTargetIsNotBound() throws {
        let ops = try build(makeProfile(readOnly: [bind("/bin", optional: true), bind("/etc")])).operations
        #expect(ops.contains(.bind(source: "/usr/bin", target: "/bin", readOnly: true, optional: false)))
        #expect(!ops.contains(.symlink(target: "usr/bin", path: "/bin")))
    }

    @Test func hostSymlinkBoundElsewhereIsBoundResolved() throws {
        let ops = try build(makeProfile(readOnly: [bind("/usr"), bind("/bin", "/mybin")])).operations
        #expect(ops.contains(.bind(source: "/usr/bin", target: "/mybin", readOnly: true, optional: false)))
    }

    @Test func hostSymlinkCoveredByAnExtraBind() throws {
        let extra = (bind: bind("/usr"), readOnly: true)
        let ops = try build(makeProfile(readOnly: [bind("/lib")]), request(extraBinds: [extra])).operations
        #expect(ops.contains(.symlink(target: "usr/lib", path: "/lib")))
    }

    @Test func hostSymlinkIsNotKeptWhenItsTargetPathShowsAnotherHostDirectory() throws {
        let host = Self.host.adding(dirs: "/opt/altusr")
        let ops = try build(makeProfile(readOnly: [bind("/opt/altusr", "/usr"), bind("/bin")]), host: host).operations
        #expect(ops.contains(.bind(source: "/usr/bin", target: "/bin", readOnly: true, optional: false)))
    }

    @Test func bindOfASymlinkedDirectoryUsesItsRealPath() throws {
        let host = Self.host.adding(symlink: "/data", to: "/srv", real: "/srv")
        let ops = try build(makeProfile(readWrite: [bind("/data", "/d")]), host: host).operations
        #expect(ops.contains(.bind(source: "/srv", target: "/d", readOnly: false, optional: false)))
    }

    @Test func workspacePlaceholderIsReplaced() throws {
        let host = Self.host.adding(dirs: "/host/ws/cache")
        let ops = try build(makeProfile(readWrite: [bind("{workspace}/cache", "/cache")]), host: host).operations
        #expect(ops.contains(.bind(source: "/host/ws/cache", target: "/cache", readOnly: false, optional: false)))
    }

    @Test func workspaceSourceThroughASymlinkIsRefused() throws {
        // The workspace is the untrusted side's: a symlink planted there must not pick a host path.
        let host = Self.host.adding(symlink: "/host/ws/cache", to: "/etc", real: "/etc")
        let profile = makeProfile(readWrite: [bind("{workspace}/cache", "/cache", line: 7)])
        let error = try #require(throws: OTKError.self) { try build(profile, host: host) }
        #expect(error.kind == .badInput)
        #expect(error.message.contains("goes through a symlink inside the workspace"))
        #expect(error.location?.line == 7)
    }

    @Test func extraBindsAreMountedAndOrdered() throws {
        let extra = [(bind: bind("/srv", "/workspace/srv"), readOnly: true), (bind: bind("/opt", "/opt"), readOnly: false)]
        let ops = try build(makeProfile(), request(extraBinds: extra)).operations
        let ws = try index(ops, .bind(source: "/host/ws", target: "/workspace", readOnly: false, optional: false))
        let srv = try index(ops, .bind(source: "/srv", target: "/workspace/srv", readOnly: true, optional: false))
        #expect(ops.contains(.bind(source: "/opt", target: "/opt", readOnly: false, optional: false)))
        #expect(ws < srv)
    }

    @Test func samePathMountedTwiceIsBadInput() throws {
        let extra = [(bind: bind("/srv", "/tmp"), readOnly: true)]
        let profile = makeProfile(tmpfs: [TmpfsMount(path: "/tmp", sizeBytes: 1 << 20, mode: 0o1777)])
        let error = #expect(throws: OTKError.self) { _ = try build(profile, request(extraBinds: extra)) }
        #expect(error?.kind == .badInput)
        #expect(error?.message.contains("/tmp") == true)

        let overWorkspace = [(bind: bind("/srv", "/workspace"), readOnly: true)]
        #expect(throws: OTKError.self) { _ = try build(makeProfile(), request(extraBinds: overWorkspace)) }
    }

    // MARK: - generated /etc files

    func files(_ ops: [LaunchOperation]) -> [String] {
        ops.compactMap { if case .file(let p, _, _) = $0 { return p } else { return nil } }
    }

    @Test func etcFilesAreGeneratedWhenEtcIsNotBound() throws {
        #expect(files(try build(makeProfile()).operations) == ["/etc/passwd", "/etc/group", "/etc/hostname", "/etc/hosts"])
    }

    @Test func etcFilesAreSkippedWhenEtcIsBound() throws {
        #expect(files(try build(makeProfile(readOnly: [bind("/usr"), bind("/etc")])).operations).isEmpty)
    }

    @Test func onlyTheBoundEtcFileIsSkipped() throws {
        let host = Self.host.adding(file: "/etc/hosts")
        #expect(files(try build(makeProfile(readOnly: [bind("/etc/hosts")]), host: host).operations)
                == ["/etc/passwd", "/etc/group", "/etc/hostname"])
    }

    @Test func etcFilesCanBeTurnedOff() throws {
        #expect(files(try build(makeProfile(etcFiles: false)).operations).isEmpty)
    }

    @Test func passwdHomeFallsBackToTheWorkspace() throws {
        let ops = try build(makeProfile(workspace: "/w")).operations
        let passwd = ops.compactMap { if case .file("/etc/passwd", _, let c) = $0 { return c } else { return nil } }.first
        #expect(passwd?.contains("sandbox:x:1000:1001:otk sandbox:/w:/bin/sh") == true)
    }

    // MARK: - environment

    func env(_ profile: Profile, _ request: RunRequest) -> [String] {
        LaunchSpecBuilder(host: Self.host).environment(profile: profile, request: request)
    }

    @Test func onlyPassedHostVariablesComeThrough() {
        let host = ["TERM": "xterm", "LANG": "C.UTF-8", "LC_ALL": "C", "LC_TIME": "en_GB", "LCX": "no", "HOME": "/root",
                    "AWS_SECRET_ACCESS_KEY": "s3cr3t", "TERMINAL": "no", "PATH": "/host/bin"]
        let result = env(makeProfile(pass: ["TERM", "LANG", "LC_*"]), request(hostEnvironment: host))
        #expect(result == ["LANG=C.UTF-8", "LC_ALL=C", "LC_TIME=en_GB", "TERM=xterm"])
    }

    @Test func setWinsOverHostAndExtraWinsOverBoth() {
        let profile = makeProfile(pass: ["HOME", "TERM", "PATH"], set: ["HOME": "/home/sandbox", "PATH": "/usr/bin"])
        let r = request(extraEnvironment: [("PATH", "/opt/bin"), ("NEW", "1")],
                        hostEnvironment: ["HOME": "/root", "TERM": "xterm", "PATH": "/host/bin"])
        #expect(env(profile, r) == ["HOME=/home/sandbox", "NEW=1", "PATH=/opt/bin", "TERM=xterm"])
    }

    @Test func laterExtraEnvironmentEntriesWin() {
        let r = request(extraEnvironment: [("A", "1"), ("A", "2")])
        #expect(env(makeProfile(), r) == ["A=2"])
    }

    @Test func hostValuesWithNULAreDropped() {
        let r = request(hostEnvironment: ["TERM": "a\0b", "LANG": "C"])
        #expect(env(makeProfile(pass: ["TERM", "LANG"]), r) == ["LANG=C"])
    }

    @Test func emptyPassListPassesNothing() {
        let r = request(hostEnvironment: ["TERM": "xterm", "PATH": "/bin"])
        #expect(env(makeProfile(), r).isEmpty)
    }

    @Test func environmentReachesTheSpecAsEnvOps() throws {
        let spec = try build(makeProfile(set: ["B": "2", "A": "1"]))
        let envs = spec.operations.compactMap { if case .env(let e) = $0 { return e } else { return nil } }
        #expect(envs == ["A=1", "B=2"])
    }
}

@Suite("HostIdentity.choose")
struct HostIdentityTests {
    @Test func rootWithRootOwnedWorkspaceMapsToNobody() {
        let id = HostIdentity.choose(euid: 0, egid: 0, workspaceOwner: (0, 0))
        #expect(id == HostIdentity(uid: 65534, gid: 65534, setgroupsAllowed: true))
    }

    @Test func rootWithoutAWorkspaceOwnerMapsToNobody() {
        let id = HostIdentity.choose(euid: 0, egid: 0, workspaceOwner: nil)
        #expect(id == HostIdentity(uid: 65534, gid: 65534, setgroupsAllowed: true))
    }

    @Test func rootWithAUserOwnedWorkspaceMapsToTheOwnerAndNogroup() {
        let id = HostIdentity.choose(euid: 0, egid: 0, workspaceOwner: (1000, 1000))
        #expect(id == HostIdentity(uid: 1000, gid: 65534, setgroupsAllowed: true))
    }

    @Test(arguments: [UInt32(0), 6 /* disk */, 42 /* shadow */, 999])
    func rootNeverTakesTheWorkspacesGroup(group: UInt32) {
        // A workspace's group may be a privileged one; the sandbox never joins it.
        let id = HostIdentity.choose(euid: 0, egid: 0, workspaceOwner: (1000, group))
        #expect(id.gid == 65534)
    }

    @Test func unprivilegedMapsToItself() {
        let id = HostIdentity.choose(euid: 1000, egid: 1001, workspaceOwner: (2000, 2000))
        #expect(id == HostIdentity(uid: 1000, gid: 1001, setgroupsAllowed: false))
    }

    @Test(arguments: [UInt32(0), 1, 1000, 65534])
    func neverUIDZero(euid: UInt32) {
        let owners: [(uid: UInt32, gid: UInt32)?] = [nil, (0, 0), (1, 0), (1000, 1000)]
        for owner in owners {
            #expect(HostIdentity.choose(euid: euid, egid: 0, workspaceOwner: owner).uid != 0)
        }
    }
}

extension LaunchSpecBuilderTests {
    @Test func landlockRulesFollowTheMountsAndSeccompComesLast() throws {
        let ops = try build(makeProfile()).operations
        let ruleset = try #require(ops.firstIndex { if case .landlock = $0 { return true } else { return false } })
        #expect(ruleset > (ops.firstIndex { if case .cwd = $0 { return true } else { return false } } ?? Int.max))
        #expect(ops.contains(.landlockPath(access: Landlock.handledFS(abi: 7), path: "/workspace", optional: false)))
        #expect(ops.contains(.landlockPath(access: Landlock.readDir, path: "/", optional: false)))
        #expect(ops.last == .seccomp)
        let noLandlock = RunRequest(command: ["x"], workspace: "/host/ws", identity: Self.identity, landlockABI: nil,
                                    landlockUnavailableReason: "disabled at boot")
        let error = #expect(throws: OTKError.self) { _ = try build(makeProfile(), noLandlock) }
        #expect(error?.kind == .isolationUnavailable)
        #expect(error?.message.contains("disabled at boot") == true)
    }
}
