import Foundation
import OTKConfig
import OTKModel
@testable import OTKSandbox
import Testing

@Suite("[seccomp] and [landlock] in profiles")
struct SeccompLandlockProfileTests {
    @Test func defaultsAreBuiltInErrnoAndLandlockRequired() throws {
        let p = try loadProfile("schema = 1\n").profile
        #expect(p.seccomp.enabled)
        #expect(p.seccomp.importPath == nil)
        #expect(p.seccomp.action == nil)
        #expect(p.landlock.enforce == .required)
        #expect(p.landlock.minimumABI == 1)
        #expect(p.landlock.writable == nil)
    }

    @Test func unknownActionNamesTheLine() throws {
        let e = try #require(try profileError("schema = 1\n\n[seccomp]\naction = \"trap\"\n"))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("seccomp.action"))
        #expect(e.message.contains("errno, kill, log"))
    }

    @Test func badSyscallNameNamesItsLine() throws {
        let e = try #require(try profileError("schema = 1\n[seccomp]\nallow = [\n  \"read\",\n  \"Bad-Name\",\n]\n"))
        #expect(e.location?.line == 5)
        #expect(e.message.contains("Bad-Name"))
    }

    @Test func nameInAllowAndDenyIsRefused() throws {
        let e = try #require(try profileError("schema = 1\n[seccomp]\nallow = [\"ptrace\"]\ndeny = [\"ptrace\"]\n"))
        #expect(e.message.contains("both"))
        #expect(e.location?.line == 3)
    }

    @Test func duplicateNameIsRefused() throws {
        let e = try #require(try profileError("schema = 1\n[seccomp]\ndeny = [\"bpf\", \"bpf\"]\n"))
        #expect(e.message.contains("twice"))
    }

    @Test func unknownSeccompKey() throws {
        let e = try #require(try profileError("schema = 1\n[seccomp]\nfilter = \"x\"\n"))
        #expect(e.message.contains("unknown key"))
        #expect(e.location?.line == 3)
    }

    @Test func landlockEnforceValues() throws {
        let e = try #require(try profileError("schema = 1\n[landlock]\nenforce = \"maybe\"\n"))
        #expect(e.message.contains("required"))
        #expect(e.location?.line == 3)
        #expect(try loadProfile("schema = 1\n[landlock]\nenforce = \"best_effort\"\n").profile.landlock.enforce == .bestEffort)
    }

    @Test func writableMustLieInAWritableMount() throws {
        let e = try #require(try profileError("schema = 1\n[filesystem]\nread_only = [\"/usr\"]\n[landlock]\nwritable = [\"/usr/lib\"]\n"))
        #expect(e.message.contains("not inside a writable mount"))
        #expect(e.location?.line == 5)
        let ok = try loadProfile("schema = 1\n[landlock]\nwritable = [\"/workspace/out\"]\n").profile
        #expect(ok.landlock.writable == ["/workspace/out"])
    }

    @Test func minimumABIAndPortsAreRangeChecked() throws {
        _ = try #require(try profileError("schema = 1\n[landlock]\nmin_abi = 0\n"))
        let e = try #require(try profileError("schema = 1\n[landlock]\nconnect_tcp = [80, 70000]\n"))
        #expect(e.message.contains("0-65535"))
        let p = try loadProfile("schema = 1\n[landlock]\nconnect_tcp = [443]\nbind_tcp = []\n").profile
        #expect(p.landlock.connectTCP == [443])
        #expect(p.landlock.bindTCP == [])
    }

    @Test func importIsResolvedAgainstTheProfileFile() throws {
        let json = #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#
        let p = try loadProfile("schema = 1\n[seccomp]\nimport = \"sub/../mini.json\"\n", extra: ["mini.json": json]).profile
        #expect(p.seccomp.importPath?.hasSuffix("/mini.json") == true)
        #expect(p.seccomp.importPath?.contains("..") == false)
        #expect(p.seccomp.imported?.rules.first?.names == ["read", "write"])
    }

    @Test func missingImportNamesTheKey() throws {
        let e = try #require(try profileError("schema = 1\n[seccomp]\nimport = \"nope.json\"\n"))
        #expect(e.message.contains("seccomp.import"))
        #expect(e.location?.line == 3)
    }

    @Test func importedContentChangesTheHash() throws {
        let a = #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#
        let b = #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#
        let text = "schema = 1\n[seccomp]\nimport = \"s.json\"\n"
        let ha = try loadProfile(text, extra: ["s.json": a]).sha256
        let hb = try loadProfile(text, extra: ["s.json": b]).sha256
        #expect(ha != hb)
    }
}

@Suite("Effective seccomp policy")
struct SeccompResolverTests {
    private func names(_ p: SeccompPolicy, permitting: Bool) -> Set<String> {
        Set(p.rules.filter { $0.action.permits == permitting && $0.conditions.isEmpty }.flatMap(\.names))
    }

    @Test func builtInDeniesTheIssueList() throws {
        let p = try #require(SeccompResolver.policy(SeccompSettings()))
        #expect(p.defaultAction == .errno(1))
        let denied = names(p, permitting: false)
        for name in ["ptrace", "process_vm_readv", "process_vm_writev", "mount", "fsopen", "move_mount", "pivot_root", "chroot",
                     "setns", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
                     "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module",
                     "delete_module", "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "adjtimex",
                     "iopl", "ioperm"] {
            #expect(denied.contains(name), "\(name) should be denied by name")
        }
        #expect(p.rules.contains { $0.names == ["clone3"] && $0.action == .errno(38) })
        // Nothing is both allowed outright and denied outright.
        #expect(names(p, permitting: true).isDisjoint(with: denied))
        let tiocsti = p.rules.first { $0.names == ["ioctl"] && !$0.action.permits && $0.conditions.first?.valueTwo == 0x5412 }
        #expect(tiocsti?.conditions.first?.op == .maskedEqual)
        #expect(tiocsti?.conditions.first?.value == 0xffff_ffff)
    }

    @Test func killActionKillsForDeniedAndDefault() throws {
        let p = try #require(SeccompResolver.policy(SeccompSettings(action: .kill)))
        #expect(p.defaultAction == .killProcess)
        #expect(p.rules.first { $0.names.contains("ptrace") }?.action == .killProcess)
        #expect(p.rules.first { $0.names == ["clone3"] }?.action == .errno(38))
    }

    @Test func logActionStillDeniesTheNamedCalls() throws {
        let p = try #require(SeccompResolver.policy(SeccompSettings(action: .log)))
        #expect(p.defaultAction == .log)
        #expect(p.rules.first { $0.names.contains("keyctl") }?.action == .errno(1))
    }

    @Test func allowLiftsTheDenialsOfACallButNotThePinnedTerminalChecks() throws {
        let settings = SeccompSettings(allow: [SeccompName("ptrace"), SeccompName("ioctl"), SeccompName("socket")], deny: [SeccompName("mkdir")])
        let p = try #require(SeccompResolver.policy(settings))
        #expect(!names(p, permitting: false).contains("ptrace"))
        #expect(names(p, permitting: true).contains("ptrace"))
        #expect(names(p, permitting: false).contains("mkdir"))
        #expect(p.rules.filter { $0.names == ["ioctl"] && !$0.action.permits }.count == 3)
        #expect(!p.rules.contains { $0.names.contains("socket") && !$0.action.permits })
    }

    @Test func internetSocketsOnlyWithKnownProtocolsAndNoFastOpen() throws {
        let p = try #require(SeccompResolver.policy(SeccompSettings()))
        let inet = p.rules.filter { $0.names == ["socket"] && $0.action.permits && $0.conditions.first?.value == 2 }
        #expect(Set(inet.compactMap { $0.conditions.last?.value }) == [0, 1, 6, 17, 58])
        #expect(p.rules.contains { $0.names == ["socket"] && !$0.action.permits && $0.conditions.count == 2 && $0.conditions[1].value == 58 })
        for name in ["sendto", "sendmsg", "sendmmsg"] {
            let rule = p.rules.first { $0.names == [name] && !$0.action.permits }
            #expect(rule?.pinned == true)
            #expect(rule?.conditions.first?.valueTwo == SeccompBuiltin.msgFastOpen)
        }
        // Allowing sendto by name keeps the Fast Open check.
        let widened = try #require(SeccompResolver.policy(SeccompSettings(allow: [SeccompName("sendto")])))
        #expect(widened.rules.contains { $0.names == ["sendto"] && !$0.action.permits })
    }

    @Test func argumentChecksAreAlsoDenialsSoLogModeKeepsThem() throws {
        let p = try #require(SeccompResolver.policy(SeccompSettings(action: .log)))
        let clone = p.rules.filter { $0.names == ["clone"] && !$0.action.permits }
        #expect(clone.count == 7)
        #expect(clone.allSatisfy { $0.action == .errno(1) && $0.conditions.first?.op == .maskedEqual })
        #expect(p.rules.contains { $0.names == ["unshare"] && !$0.action.permits && $0.conditions.first?.value == 0x80 })
        #expect(p.rules.contains { $0.names == ["socket"] && $0.conditions.first?.op == .greater && $0.conditions.first?.value == 10 })
        #expect(p.rules.contains { $0.names == ["prlimit64"] && $0.conditions.first?.op == .notEqual })
    }

    @Test func disabledHasNoPolicy() {
        #expect(SeccompResolver.policy(SeccompSettings(enabled: false)) == nil)
    }

    @Test func importKeepsItsDefaultUnlessTheProfileSetsOne() throws {
        let imported = SeccompPolicy(defaultAction: .errno(13), rules: [SeccompRule(names: ["read"], action: .allow)], origin: "/x.json")
        #expect(SeccompResolver.policy(SeccompSettings(imported: imported))?.defaultAction == .errno(13))
        #expect(SeccompResolver.policy(SeccompSettings(imported: imported, action: .kill))?.defaultAction == .killProcess)
    }
}

@Suite("Seccomp compiler (libseccomp)")
struct SeccompCompilerTests {
    @Test func builtInCompilesToTwoPrograms() throws {
        let policy = try #require(SeccompResolver.policy(SeccompSettings()))
        let compiled = try SeccompCompiler.compile(policy)
        #expect(compiled.programs.count == 2)
        for program in compiled.programs {
            #expect(program.count % 8 == 0)
            #expect(program.count / 8 > 10)
            #expect(program.count / 8 <= 4096)
        }
        // The wire form: a u32 count before each program.
        let wire = compiled.wire
        let first = Int(wire[0]) | Int(wire[1]) << 8 | Int(wire[2]) << 16 | Int(wire[3]) << 24
        #expect(first == compiled.programs[0].count / 8)
        #expect(wire.count == 8 + compiled.programs.reduce(0) { $0 + $1.count })
    }

    @Test func unknownProfileNameIsAnErrorWithItsLocation() throws {
        let location = OTKModel.SourceLocation(file: "/p.toml", line: 7)
        let settings = SeccompSettings(allow: [SeccompName("not_a_syscall", location: location)])
        let policy = try #require(SeccompResolver.policy(settings))
        let error = #expect(throws: OTKError.self) { _ = try SeccompCompiler.compile(policy) }
        #expect(error?.kind == .badInput)
        #expect(error?.location == location)
        #expect(error?.message.contains("not_a_syscall") == true)
    }

    @Test func unknownNameInAnImportedAllowIsSkippedAndReported() throws {
        let policy = SeccompPolicy(defaultAction: .errno(1),
                                   rules: [SeccompRule(names: ["read", "no_such_call_xyz"], action: .allow)], origin: "/d.json")
        let compiled = try SeccompCompiler.compile(policy)
        #expect(compiled.skipped == ["no_such_call_xyz"])
        let deny = SeccompPolicy(defaultAction: .allow, rules: [SeccompRule(names: ["no_such_call_xyz"], action: .errno(1))], origin: "/d.json")
        #expect(throws: OTKError.self) { _ = try SeccompCompiler.compile(deny) }
    }

    @Test func newerSyscallsResolveByNumber() {
        #expect(SeccompCompiler.number(of: "mseal").number == 462)
        #expect(SeccompCompiler.number(of: "openat").number != nil)
        #expect(SeccompCompiler.number(of: "no_such_call_xyz").number == nil)
    }
}

@Suite("Landlock ruleset from the mounts")
struct LandlockPlanTests {
    let areas: [Landlock.Area] = [.readOnly("/usr"), .writable("/workspace"), .writable("/tmp"), .proc("/proc"), .dev("/dev")]

    private func access(_ plan: Landlock.Plan, _ path: String) -> UInt64? {
        for op in plan.operations { if case .landlockPath(let a, let p, _) = op, p == path { return a } }
        return nil
    }

    @Test func abi7HandlesEverythingAndScopes() throws {
        let plan = try Landlock.plan(LandlockSettings(), areas: areas, etcFiles: true, network: .none, abi: 7, unavailableReason: nil)
        guard case .landlock(let fs, let net, let scoped)? = plan.operations.first else { Issue.record("no ruleset"); return }
        #expect(fs == Landlock.handledFS(abi: 7))
        #expect(fs & Landlock.ioctlDev != 0)
        #expect(net == Landlock.bindTCP | Landlock.connectTCP)   // network none: no TCP port at all
        #expect(scoped == Landlock.scopeSignal | Landlock.scopeAbstractUnix)
        #expect(access(plan, "/usr") == Landlock.read)
        #expect(access(plan, "/workspace") == fs)
        #expect(access(plan, "/") == Landlock.readDir)
        #expect(access(plan, "/usr")! & Landlock.writeFile == 0)
        #expect(plan.warnings.isEmpty)
        #expect(!plan.operations.contains { if case .landlockPort = $0 { return true } else { return false } })
    }

    @Test func abi2HasNoTruncateNoNetNoScope() throws {
        let plan = try Landlock.plan(LandlockSettings(), areas: areas, etcFiles: false, network: .none, abi: 2, unavailableReason: nil)
        guard case .landlock(let fs, let net, let scoped)? = plan.operations.first else { Issue.record("no ruleset"); return }
        #expect(fs & Landlock.truncate == 0)
        #expect(fs & Landlock.refer != 0)
        #expect(net == 0)
        #expect(scoped == 0)
        #expect(plan.warnings.contains { $0.contains("ABI 6") })
        #expect(access(plan, "/dev")! & Landlock.truncate == 0)
    }

    @Test func requiredWithoutLandlockRefuses() {
        let error = #expect(throws: OTKError.self) {
            _ = try Landlock.plan(LandlockSettings(), areas: [], etcFiles: true, network: .none, abi: nil, unavailableReason: "no Landlock here")
        }
        #expect(error?.kind == .isolationUnavailable)
        #expect(error?.message.contains("no Landlock here") == true)
    }

    @Test func requiredBelowMinimumABIRefuses() {
        let error = #expect(throws: OTKError.self) {
            _ = try Landlock.plan(LandlockSettings(minimumABI: 6), areas: [], etcFiles: true, network: .none, abi: 2, unavailableReason: nil)
        }
        #expect(error?.message.contains("ABI 2") == true)
    }

    @Test func bestEffortWithoutLandlockWarns() throws {
        let plan = try Landlock.plan(LandlockSettings(enforce: .bestEffort), areas: areas, etcFiles: true, network: .none, abi: nil, unavailableReason: "off")
        #expect(plan.operations.isEmpty)
        #expect(plan.warnings.count == 1)
    }

    @Test func offAddsNothing() throws {
        let plan = try Landlock.plan(LandlockSettings(enforce: .off), areas: areas, etcFiles: true, network: .none, abi: 7, unavailableReason: nil)
        #expect(plan.operations.isEmpty)
    }

    @Test func writableNarrowsTheMounts() throws {
        let plan = try Landlock.plan(LandlockSettings(writable: ["/workspace/out"]), areas: areas, etcFiles: true, network: .none, abi: 7, unavailableReason: nil)
        #expect(access(plan, "/workspace") == Landlock.read)
        #expect(access(plan, "/tmp") == Landlock.read)
        #expect(access(plan, "/workspace/out") == Landlock.handledFS(abi: 7))
    }

    @Test func loopbackWithoutPortsLeavesTCPToTheNamespace() throws {
        let plan = try Landlock.plan(LandlockSettings(), areas: areas, etcFiles: true, network: .loopback, abi: 7, unavailableReason: nil)
        guard case .landlock(_, let net, _)? = plan.operations.first else { Issue.record("no ruleset"); return }
        #expect(net == 0)
        let ported = try Landlock.plan(LandlockSettings(connectTCP: [8080]), areas: areas, etcFiles: true, network: .host, abi: 7, unavailableReason: nil)
        guard case .landlock(_, let net2, _)? = ported.operations.first else { Issue.record("no ruleset"); return }
        #expect(net2 == Landlock.connectTCP)
        #expect(ported.operations.contains(.landlockPort(access: Landlock.connectTCP, port: 8080)))
    }

    @Test func newOperationsEncode() throws {
        let spec = LaunchSpec(operations: [.landlock(fs: 0xffff, net: 3, scoped: 0), .landlockPath(access: 0xd, path: "/usr", optional: true),
                                           .landlockPort(access: 2, port: 443), .seccomp], layers: [])
        let text = String(decoding: try spec.encoded(), as: UTF8.self).split(separator: "\0").joined(separator: " ")
        #expect(text == "otk-spec-1 landlock ffff 3 0 landlock-path d /usr try landlock-port 2 443 seccomp end")
    }
}

@Suite("Seccomp cache (root only)")
struct SeccompCacheTests {
    let policy = SeccompPolicy(defaultAction: .errno(1), rules: [SeccompRule(names: ["read"], action: .allow)], origin: "built-in")

    /// A root-owned 0700 directory, as the cache requires; nil when the test does not run as root.
    func cacheDirectory() throws -> (FixtureDir, SeccompCache)? {
        guard geteuid() == 0 else { return nil }
        let dir = try FixtureDir()
        chmod(dir.path, 0o700)
        return (dir, SeccompCache(directory: dir.path + "/seccomp"))
    }

    @Test func roundTripsAndRejectsTampering() throws {
        guard let (dir, cache) = try cacheDirectory() else { return }
        let key = SeccompCache.key(for: policy)
        #expect(key.count == 64)
        #expect(cache.load(key) == nil)
        let wire = try SeccompCompiler.compile(policy).wire
        cache.store(key, wire)
        #expect(cache.load(key) == wire)
        let entry = dir.path + "/seccomp/" + key
        // Readable by others: not trusted.
        chmod(entry, 0o644)
        #expect(cache.load(key) == nil)
        chmod(entry, 0o600)
        #expect(cache.load(key) == wire)
        // An entry under another key's name, or truncated, is not used.
        let other = String(repeating: "0", count: 64)
        #expect(rename(entry, dir.path + "/seccomp/" + other) == 0)
        #expect(cache.load(other) == nil)
        #expect(truncate(dir.path + "/seccomp/" + other, 40) == 0)
        #expect(cache.load(other) == nil)
        // A directory that group or others can enter is not trusted at all.
        cache.store(key, wire)
        chmod(dir.path + "/seccomp", 0o755)
        #expect(cache.load(key) == nil)
    }

    @Test func anotherPolicyHasAnotherKey() {
        var other = policy
        other.rules.append(SeccompRule(names: ["write"], action: .allow))
        #expect(SeccompCache.key(for: policy) != SeccompCache.key(for: other))
        var commented = policy
        commented.rules[0].comment = "only a comment"
        #expect(SeccompCache.key(for: policy) == SeccompCache.key(for: commented))
    }

    @Test func wellFormedChecksTheWireFormat() throws {
        let wire = try SeccompCompiler.compile(policy).wire
        #expect(SeccompCache.wellFormed(wire))
        #expect(!SeccompCache.wellFormed(Array(wire.dropLast())))
        #expect(!SeccompCache.wellFormed([0, 0, 0, 0]))
        #expect(!SeccompCache.wellFormed([]))
    }
}

@Suite("Profile allow and deny against the base")
struct SeccompProfileOverrideTests {
    @Test func denyReplacesTheBaseRulesOfThatCall() throws {
        let p = try #require(SeccompResolver.policy(SeccompSettings(deny: [SeccompName("clone3")])))
        let clone3 = p.rules.filter { $0.names.contains("clone3") }
        #expect(clone3.count == 1)
        #expect(clone3.first?.action == .errno(1))
        #expect(clone3.first?.fromProfile == true)
    }

    @Test func anImportedRuleIsNeverTakenForTheProfilesOwn() throws {
        // Even with the comment the profile's own rules carry, an unknown name in an imported allow is skipped, not an error.
        let imported = SeccompPolicy(defaultAction: .errno(1),
                                     rules: [SeccompRule(names: ["read", "no_such_call_xyz"], action: .allow, comment: SeccompResolver.profileAllowComment)],
                                     origin: "/d.json")
        #expect(try SeccompCompiler.compile(imported).skipped == ["no_such_call_xyz"])
    }
}

@Suite("Which limit ended a run")
struct LimitThatEndedTests {
    func outcome(exit: Int32? = nil, signal: Int32? = nil, timedOut: Bool = false) -> SandboxOutcome {
        var o = SandboxOutcome(exitCode: exit, signal: signal, durationNanoseconds: 0, failure: nil)
        o.timedOut = timedOut
        return o
    }

    @Test func onlyAFailedRunWasEndedByALimit() {
        var oom = CgroupStats()
        oom.oomKills = 1
        #expect(SandboxRunner.limitThatEnded(outcome(signal: 9), stats: oom, limits: Limits()) == "memory")
        // A command that survives the OOM kill of a child ended on its own.
        #expect(SandboxRunner.limitThatEnded(outcome(exit: 0), stats: oom, limits: Limits()) == nil)
        #expect(SandboxRunner.limitThatEnded(outcome(exit: 0, timedOut: true), stats: nil, limits: Limits()) == "wall")
    }

    @Test func exit153IsTheFileSizeLimitOnlyUnderOne() {
        #expect(SandboxRunner.limitThatEnded(outcome(exit: 153), stats: nil, limits: Limits()) == nil)
        #expect(SandboxRunner.limitThatEnded(outcome(exit: 153), stats: nil, limits: Limits(fileSizeBytes: 1 << 20)) == "file_size")
        #expect(SandboxRunner.limitThatEnded(outcome(signal: SIGXFSZ), stats: nil, limits: Limits(fileSizeBytes: 1 << 20)) == "file_size")
    }
}

@Suite("Limits fixes")
struct LimitsFixTests {
    @Test func iBNeedsAUnitBeforeIt() {
        #expect(ByteSize.parse("12iB") == nil)
        #expect(ByteSize.parse("2GiB") == 2 << 30)
    }

    @Test func durationErrorsShowTheValue() throws {
        let e = try #require(try profileError("schema = 1\n[limits]\nwall = \"15 minutes\"\n"))
        #expect(e.message.contains("\"15 minutes\""))
        #expect(e.location?.line == 3)
    }

    @Test func aDelegatedCgroupIsFoundAgainFromItsSupervisorLeaf() throws {
        let dir = try FixtureDir()
        let delegated = dir.path + "/user.slice/deleg"
        try FileManager.default.createDirectory(atPath: delegated + "/otk-supervisor", withIntermediateDirectories: true)
        for file in ["cgroup.procs", "cgroup.subtree_control"] { try dir.write("user.slice/deleg/" + file, "") }
        let layout = CgroupLayout(kind: .v2, unifiedMount: dir.path, unifiedControllers: ["memory"], v1Controllers: [:])
        let first = Cgroups.delegatedV2(layout, procSelfCgroup: "0::/user.slice/deleg\n")
        let again = Cgroups.delegatedV2(layout, procSelfCgroup: "0::/user.slice/deleg/otk-supervisor\n")
        #expect(first?.root == delegated)
        #expect(again?.root == delegated, "a second run must not nest another supervisor leaf")
        #expect(Cgroups.delegatedV2(layout, procSelfCgroup: "0::/\n") == nil)
    }
}
