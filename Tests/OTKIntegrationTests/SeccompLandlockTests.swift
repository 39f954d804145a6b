import Foundation
import Testing

/// The seccomp filter and the Landlock ruleset, proved from inside the sandbox with the probe.
/// Every refusal has a contrast: the same check with the layer switched off in a profile that
/// extends strict (or the probe run unsandboxed) gets past it, so each assertion can fail.
@Suite(.serialized) struct SeccompLandlockTests {
    static let strictProfile = Paths.repository + "/profiles/strict.toml"
    /// The host user the sandbox writes as (as in IsolationTests): nobody when otk runs as root.
    static let hostUser: UInt32 = geteuid() == 0 ? 65534 : geteuid()

    /// Calls the probe knows that strict's filter denies by name (EPERM, or SIGSYS under `action = "kill"`).
    static let deniedSyscalls: [String] = {
        var names = [
            "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "fsopen", "fsmount", "fsconfig",
            "fspick", "open_tree", "move_mount", "mount_setattr", "pivot_root", "chroot", "setns", "bpf",
            "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl",
            "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
            "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
            "personality", "clone-newuser", "clone-newns", "clone-newnet", "unshare-newuser", "unshare-newns",
            "unshare-newtime", "prlimit-init", "pidfd_getfd", "kcmp", "syslog", "quotactl", "vhangup",
        ]
        #if arch(x86_64)
        names += ["iopl", "ioperm", "modify_ldt", "lookup_dcookie"]
        #endif
        return names
    }()
    /// Calls strict allows (or allows with these arguments): the filter must not be deny-everything.
    static let allowedSyscalls = ["getpid", "personality-query", "unshare-files", "prlimit-self"]
    static let deniedSockets = ["socket=netlink", "socket=packet", "socket=vsock", "socket=alg", "socket=bluetooth",
                                "socket=key", "socket=xdp", "socketpair=inet"]
    static let allowedSockets = ["socket=unix", "socket=inet", "socket=inet6", "socketpair=unix"]

    /// Every check of the battery, for one sandbox launch.
    static var battery: [String] {
        deniedSyscalls.map { "syscall=\($0)" } + ["syscall=clone3"] + allowedSyscalls.map { "syscall=\($0)" }
            + deniedSockets + allowedSockets + ["identity"]
    }

    /// The host's Landlock ABI as `otk doctor` reports it (0 when it reports none).
    static let landlockABI: Int = {
        guard let doctor = try? run([Paths.otk, "doctor"]) else { return 0 }
        for line in doctor.stdout.split(separator: "\n") where line.contains("landlock:") {
            guard let range = line.range(of: "ABI ") else { continue }
            return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        return 0
    }()

    let profiles: TemporaryDirectory

    init() throws {
        profiles = try TemporaryDirectory(prefix: "otk-it-profiles-")
    }

    /// Writes a profile extending strict (by absolute path); `body` starts on line 4 of the file.
    func profile(_ name: String, _ body: String) throws -> String {
        let path = profiles.path + "/\(name).toml"
        try "schema = 1\nextends = \"\(Self.strictProfile)\"\n\n\(body)\n".write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    /// The probe inside `otk sandbox run --profile PROFILE`.
    func sandboxed(_ profile: String, workspace: String? = nil, extra: [String] = [], _ checks: [String]) throws -> Completed {
        try run([Paths.otk, "sandbox", "run", "--profile", profile] + (workspace.map { ["--workspace", $0] } ?? []) + extra
                + ["--ro-bind", "\(Paths.probe):\(Paths.probeInside)", "--", Paths.probeInside] + checks)
    }

    /// Runs the checks in one launch and returns the report, requiring a line for each.
    func report(_ profile: String, workspace: String? = nil, extra: [String] = [], _ checks: [String]) throws -> ProbeReport {
        let result = try sandboxed(profile, workspace: workspace, extra: extra, checks)
        #expect(result.status == 0, "otk failed under \(profile): \(result.stderr)")
        let r = ProbeReport(result.stdout)
        for check in checks { _ = try #require(r[check], "no probe output for \(check) under \(profile): \(result.stderr)") }
        return r
    }

    func expectKilled(_ r: ProbeReport, _ check: String, _ context: String) {
        let line = r[check]
        #expect(line?.ok == false && line?.error == "KILLED_BY_SIGNAL" && line?["signal"] as? Int == 31,
                "\(check) under \(context): \(line?.fields.description ?? "no output"), expected KILLED_BY_SIGNAL 31")
    }

    func expectError(_ r: ProbeReport, _ check: String, _ error: String, _ context: String) {
        let line = r[check]
        #expect(line?.ok == false && line?.error == error, "\(check) under \(context): \(line?.fields.description ?? "no output"), expected \(error)")
    }

    // MARK: 1. The denied battery

    @Test("strict: every denied call and socket family answers EPERM, clone3 ENOSYS; the allowed controls work")
    func deniedBatteryUnderStrict() throws {
        let r = try report("strict", Self.battery)
        for name in Self.deniedSyscalls { expectError(r, "syscall=\(name)", "EPERM", "strict") }
        expectError(r, "syscall=clone3", "ENOSYS", "strict")
        for name in Self.allowedSyscalls {
            #expect(r["syscall=\(name)"]?.ok == true, "syscall=\(name) must be allowed: \(r["syscall=\(name)"]?.fields.description ?? "")")
        }
        for check in Self.deniedSockets { expectError(r, check, "EPERM", "strict") }
        for check in Self.allowedSockets { #expect(r[check]?.ok == true, "\(check) must be allowed: \(r[check]?.fields.description ?? "")") }
        #expect(r["identity"]?["seccomp"] as? Int == 2)
    }

    @Test("action = kill: the same battery dies of SIGSYS, so it is seccomp, not missing capabilities, that refuses")
    func deniedBatteryKilled() throws {
        let kill = try profile("kill", "[seccomp]\naction = \"kill\"")
        let r = try report(kill, Self.battery)
        for name in Self.deniedSyscalls { expectKilled(r, "syscall=\(name)", "action = kill") }
        for check in Self.deniedSockets { expectKilled(r, check, "action = kill") }
        for name in Self.allowedSyscalls {
            #expect(r["syscall=\(name)"]?.ok == true, "syscall=\(name) under action = kill: \(r["syscall=\(name)"]?.fields.description ?? "")")
        }
        for check in Self.allowedSockets { #expect(r[check]?.ok == true, "\(check) under action = kill") }
        #expect(r["identity"]?["seccomp"] as? Int == 2)
    }

    @Test("action = kill: clone3 still answers ENOSYS, so libc falls back to clone and threads work")
    func clone3UnderKill() throws {
        let kill = try profile("kill", "[seccomp]\naction = \"kill\"")
        let r = try report(kill, ["syscall=clone3", "syscall=getpid"])
        // SeccompBuiltin gives clone3 errno(ENOSYS) whatever the action, and `otk profile show` says so.
        expectError(r, "syscall=clone3", "ENOSYS", "action = kill")
        // What that means for real programs: glibc >= 2.34 starts threads with clone3.
        let python = "/usr/bin/python3"
        if FileManager.default.isExecutableFile(atPath: python) {
            let threaded = try run([Paths.otk, "sandbox", "run", "--profile", kill, "--", python, "-c",
                                    "import threading; t = threading.Thread(target=lambda: print('thread ran')); t.start(); t.join()"])
            #expect(threaded.status == 0 && threaded.stdout.contains("thread ran"),
                    "a threaded program under action = kill: status \(threaded.status), stdout \(threaded.stdout), stderr \(threaded.stderr)")
        }
    }

    @Test("enabled = false: the kernel alone lets an unprivileged namespaced user make the calls strict refuses")
    func batteryWithoutSeccomp() throws {
        let off = try profile("seccomp-off", "[seccomp]\nenabled = false")
        let r = try report(off, Self.battery)
        #expect(r["identity"]?["seccomp"] as? Int == 0, "the filter is still loaded")
        var mustGetPast = ["syscall=ptrace", "syscall=process_vm_readv", "syscall=keyctl", "syscall=add_key",
                           "syscall=personality", "syscall=userfaultfd", "syscall=kcmp", "syscall=pidfd_getfd",
                           "syscall=prlimit-init", "syscall=unshare-newuser", "syscall=clone3", "socket=netlink"]
        // io_uring is refused by the kernel itself when the host disabled it.
        let ioUringDisabled = (try? String(contentsOfFile: "/proc/sys/kernel/io_uring_disabled", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if ioUringDisabled == nil || ioUringDisabled == "0" { mustGetPast.append("syscall=io_uring_setup") }
        for check in mustGetPast {
            let line = try #require(r[check])
            #expect(line.ok || line.error != "EPERM", "\(check) is EPERM without seccomp: strict's EPERM for it proves nothing")
        }
        // Nested user namespaces are capped at 0 (a layer of its own), which says ENOSPC, not EPERM.
        expectError(r, "syscall=unshare-newuser", "ENOSPC", "seccomp disabled")
        #expect(r["syscall=clone3"]?.ok == true, "clone3 without seccomp: \(r["syscall=clone3"]?.fields.description ?? "")")
        #expect(r["socketpair=inet"]?.error == "EOPNOTSUPP", "the kernel's own answer for an inet socketpair")
    }

    // MARK: 2. Other ABIs

    @Test("int 0x80 and x32 kill the process under strict; unsandboxed int80 works and x32 is not killed")
    func otherABIs() throws {
        #if arch(x86_64)
        let r = try report("strict", ["int80", "x32"])
        expectKilled(r, "int80", "strict")
        expectKilled(r, "x32", "strict")
        let off = try report(try profile("seccomp-off", "[seccomp]\nenabled = false"), ["int80"])
        #expect(off["int80"]?.ok == true, "int80 without seccomp in the sandbox: \(off["int80"]?.fields.description ?? "")")
        let outside = ProbeReport(try run([Paths.probe, "int80", "x32"]).stdout)
        #expect(outside["int80"]?.ok == true, "int80 unsandboxed: \(outside["int80"]?.fields.description ?? "no output")")
        let x32 = try #require(outside["x32"])
        #expect(x32.error != "KILLED_BY_SIGNAL", "x32 unsandboxed: \(x32.fields)")
        #endif
    }

    // MARK: 3. TIOCSTI and TIOCLINUX

    @Test("TIOCSTI (also with high bits set) and TIOCLINUX are refused by the filter; unsandboxed the high-bits form injects")
    func terminalInjection() throws {
        let checks = ["tiocsti", "tiocsti-high", "tioclinux"]
        let strict = try report("strict", checks)
        for check in checks { expectError(strict, check, "EPERM", "strict") }
        // Under action = kill the same three die of SIGSYS: the filter's rule, not the kernel, refused.
        let killed = try report(try profile("kill", "[seccomp]\naction = \"kill\""), checks)
        for check in checks { expectKilled(killed, check, "action = kill") }

        let off = try report(try profile("seccomp-off", "[seccomp]\nenabled = false"), checks)
        let tiocsti = try #require(off["tiocsti"])
        // With dev.tty.legacy_tiocsti = 0 the kernel itself needs CAP_SYS_ADMIN for TIOCSTI, and says EPERM.
        let legacy = (try? String(contentsOfFile: "/proc/sys/dev/tty/legacy_tiocsti", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if legacy != "0" {
            #expect(tiocsti.ok && tiocsti["injected"] as? Bool == true, "tiocsti without seccomp: \(tiocsti.fields)")
            #expect(off["tiocsti-high"]?.ok == true, "tiocsti-high without seccomp: \(off["tiocsti-high"]?.fields.description ?? "")")
        }
        // TIOCLINUX is a virtual-console ioctl: on a pty the kernel answers ENOTTY.
        #expect(off["tioclinux"]?.error != "EPERM", "tioclinux without seccomp: \(off["tioclinux"]?.fields.description ?? "")")

        // The kernel drops the command's high 32 bits: a filter comparing all 64 would let this one through.
        let outside = ProbeReport(try run([Paths.probe, "tiocsti-high"]).stdout)
        let high = try #require(outside["tiocsti-high"])
        #expect(high.ok && high["injected"] as? Bool == true, "tiocsti-high unsandboxed: \(high.fields)")
    }

    // MARK: 4. The filter is really loaded

    @Test("/proc/self/status inside strict says Seccomp 2 (filter) and NoNewPrivs 1; with seccomp disabled, Seccomp 0")
    func statusShowsTheFilter() throws {
        let argv = ["--", "/bin/grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"]
        let strict = try run([Paths.otk, "sandbox", "run", "--profile", "strict"] + argv)
        #expect(strict.status == 0, "\(strict.stderr)")
        #expect(strict.stdout.contains("Seccomp:\t2\n"), "\(strict.stdout)")
        #expect(strict.stdout.contains("NoNewPrivs:\t1\n"), "\(strict.stdout)")
        let off = try run([Paths.otk, "sandbox", "run", "--profile", try profile("seccomp-off", "[seccomp]\nenabled = false")] + argv)
        #expect(off.status == 0, "\(off.stderr)")
        #expect(off.stdout.contains("Seccomp:\t0\n"), "\(off.stdout)")
        #expect(off.stdout.contains("NoNewPrivs:\t1\n"), "no_new_privs is a layer of its own: \(off.stdout)")
        // The probe's own reading agrees.
        let identity = try #require(try report("strict", ["identity"])["identity"])
        #expect(identity["seccomp"] as? Int == 2 && identity["no_new_privs"] as? Int == 1, "\(identity.fields)")
    }

    // MARK: 5. Landlock narrower than the mounts

    @Test("landlock.writable: only /workspace/out takes writes though the whole workspace and /tmp are read-write mounts")
    func landlockNarrowsWrites() throws {
        let workspace = try TemporaryDirectory(owner: Self.hostUser)
        try FileManager.default.createDirectory(atPath: workspace.path + "/out", withIntermediateDirectories: false)
        chown(workspace.path + "/out", Self.hostUser, Self.hostUser)
        let checks = ["write=/workspace/out/f", "write=/workspace/f", "write=/tmp/x"]

        let narrowed = try report(try profile("narrow", "[landlock]\nwritable = [\"/workspace/out\"]"), workspace: workspace.path, checks)
        #expect(narrowed["write=/workspace/out/f"]?.ok == true, "\(narrowed["write=/workspace/out/f"]?.fields.description ?? "")")
        expectError(narrowed, "write=/workspace/f", "EACCES", "landlock.writable = [/workspace/out]")
        expectError(narrowed, "write=/tmp/x", "EACCES", "landlock.writable = [/workspace/out]")

        // The same narrowing with Landlock off: the mounts alone let every write through.
        let off = try report(try profile("narrow-off", "[landlock]\nwritable = [\"/workspace/out\"]\nenforce = \"off\""),
                             workspace: workspace.path, checks)
        for check in checks { #expect(off[check]?.ok == true, "\(check) with landlock off: \(off[check]?.fields.description ?? "")") }
        // And strict itself (Landlock on, not narrowed) follows the mounts.
        let strict = try report("strict", workspace: workspace.path, checks)
        for check in checks { #expect(strict[check]?.ok == true, "\(check) under strict: \(strict[check]?.fields.description ?? "")") }
    }

    // MARK: 6. Landlock required but unavailable

    @Test("landlock.min_abi above the kernel's: required refuses with exit 4, best_effort runs and warns")
    func landlockMinimumABI() throws {
        let required = try run([Paths.otk, "sandbox", "run", "--profile", try profile("abi64", "[landlock]\nmin_abi = 64"), "--", "true"])
        #expect(required.status == 4, "status \(required.status): \(required.stderr)")
        #expect(required.stderr.lowercased().contains("landlock"), "\(required.stderr)")
        #expect(required.stderr.contains("ABI 64"), "\(required.stderr)")

        let bestEffort = try run([Paths.otk, "sandbox", "run", "--json", "--profile",
                                  try profile("abi64-best", "[landlock]\nmin_abi = 64\nenforce = \"best_effort\""), "--", "true"])
        #expect(bestEffort.status == 0, "\(bestEffort.stderr)")
        let last = try #require(bestEffort.stdout.split(separator: "\n").last)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(last)")
        #expect(doc["status"] as? Int == 0)
        let warnings = doc["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.lowercased().contains("landlock") }, "warnings: \(warnings)")
        if let workspace = doc["workspace"] as? String { try? FileManager.default.removeItem(atPath: workspace) }
    }

    // MARK: 7. Landlock signal scope

    @Test("landlock scope (ABI 6): the command cannot signal the sandbox's init; with landlock off it can",
          .enabled(if: SeccompLandlockTests.landlockABI >= 6, "needs Landlock ABI 6 (signal scoping)"))
    func landlockSignalScope() throws {
        let strict = try report("strict", ["signal0=1"])
        expectError(strict, "signal0=1", "EPERM", "strict")
        // Not the filter: kill is allowed, and seccomp off changes nothing.
        let seccompOff = try report(try profile("seccomp-off", "[seccomp]\nenabled = false"), ["signal0=1"])
        expectError(seccompOff, "signal0=1", "EPERM", "seccomp disabled, landlock on")
        let off = try report(try profile("landlock-off", "[landlock]\nenforce = \"off\""), ["signal0=1"])
        #expect(off["signal0=1"]?.ok == true, "signal0=1 with landlock off: \(off["signal0=1"]?.fields.description ?? "")")
    }

    // MARK: 8. Unix sockets on host paths

    @Test("a unix socket listening in the host's /tmp is out of reach from strict; bound in, it is reachable")
    func hostUnixSocket() throws {
        let services = try HostServices()
        let path = services.unixPath
        #expect(path.hasPrefix("/tmp/"), "\(path)")
        let inside = try report("strict", ["unix=\(path)"])
        expectError(inside, "unix=\(path)", "ENOENT", "strict")
        // Landlock does not govern connect(2) on a path: bound into the sandbox, the same socket answers.
        // So it is the mount layer (the host's /tmp is not there) that stops the connection.
        let directory = (path as NSString).deletingLastPathComponent
        let bound = try report("strict", extra: ["--ro-bind", "\(directory):/hostsock"], ["unix=/hostsock/host.sock"])
        #expect(bound["unix=/hostsock/host.sock"]?.ok == true, "\(bound["unix=/hostsock/host.sock"]?.fields.description ?? "")")
        let outside = ProbeReport(try run([Paths.probe, "unix=\(path)"]).stdout)
        #expect(outside["unix=\(path)"]?.ok == true, "unsandboxed: \(outside["unix=\(path)"]?.fields.description ?? "no output")")
    }

    // MARK: 9. Seccomp profile errors

    @Test("an unknown call in seccomp.allow fails at compile time with exit 2 and the file:line")
    func unknownSyscallName() throws {
        let path = try profile("unknown", "[seccomp]\nallow = [\"not_a_syscall\"]")
        for argv in [["sandbox", "run", "--profile", path, "--", "true"], ["profile", "show", path]] {
            let result = try run([Paths.otk] + argv)
            #expect(result.status == 2, "otk \(argv.joined(separator: " ")): status \(result.status)")
            #expect(result.stderr.contains("\(path):5:"), "\(result.stderr)")
            #expect(result.stderr.contains("`not_a_syscall` is not a system call"), "\(result.stderr)")
        }
        // The same call in deny is a promise that cannot be kept: refused too.
        let denied = try profile("unknown-deny", "[seccomp]\ndeny = [\"not_a_syscall\"]")
        let result = try run([Paths.otk, "sandbox", "run", "--profile", denied, "--", "true"])
        #expect(result.status == 2 && result.stderr.contains("\(denied):5:"), "status \(result.status): \(result.stderr)")
        // The contrast: a real name is accepted.
        let good = try profile("known", "[seccomp]\nallow = [\"ptrace\"]")
        let ok = try run([Paths.otk, "sandbox", "run", "--profile", good, "--", "true"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test("a malformed name in seccomp.deny exits 2 naming its line; a name in both allow and deny exits 2")
    func malformedAndContradictoryNames() throws {
        let bad = try profile("bad-name", "[seccomp]\ndeny = [\n  \"ptrace\",\n  \"Bad-Name\",\n]")
        let badResult = try run([Paths.otk, "sandbox", "run", "--profile", bad, "--", "true"])
        #expect(badResult.status == 2, "status \(badResult.status): \(badResult.stderr)")
        #expect(badResult.stderr.contains("\(bad):7:"), "the line of `Bad-Name`: \(badResult.stderr)")
        #expect(badResult.stderr.contains("Bad-Name"), "\(badResult.stderr)")

        let both = try profile("both", "[seccomp]\nallow = [\"ptrace\"]\ndeny = [\"keyctl\", \"ptrace\"]")
        let bothResult = try run([Paths.otk, "sandbox", "run", "--profile", both, "--", "true"])
        #expect(bothResult.status == 2, "status \(bothResult.status): \(bothResult.stderr)")
        #expect(bothResult.stderr.contains("\(both):5:") || bothResult.stderr.contains("\(both):6:"), "\(bothResult.stderr)")
        #expect(bothResult.stderr.contains("`ptrace` is in both `allow` and `deny`"), "\(bothResult.stderr)")
    }

    // MARK: 10. What otk says about the layers

    @Test("`otk profile show strict` lists the denied calls and the TIOCSTI rule; `otk doctor` reports seccomp and the Landlock ABI")
    func showAndDoctor() throws {
        let show = try run([Paths.otk, "profile", "show", "strict"])
        #expect(show.status == 0, "\(show.stderr)")
        let deniedSection = try #require(show.stdout.range(of: "denied").map { String(show.stdout[$0.lowerBound...]) },
                                         "no denied section: \(show.stdout)")
        let words = Set(deniedSection.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        for name in ["ptrace", "keyctl", "io_uring_setup", "clone3"] {
            #expect(words.contains(name), "`\(name)` is not in the denied section")
        }
        let tiocsti = deniedSection.split(separator: "\n").first { $0.contains("TIOCSTI") }
        #expect(tiocsti?.contains("0x5412") == true, "the TIOCSTI rule: \(tiocsti.map(String.init) ?? "missing")")

        let doctor = try run([Paths.otk, "doctor"])
        let lines = doctor.stdout.split(separator: "\n")
        #expect(lines.contains { $0.contains("seccomp:") }, "\(doctor.stdout)")
        #expect(lines.contains { $0.contains("landlock:") && $0.contains("ABI") }, "\(doctor.stdout)")
    }

    /// Calls Landlock's TCP rules do not see (MPTCP, TCP Fast Open) and the terminal's line discipline.
    static let sideDoorScript = """
    import ctypes, errno, os, pty, socket
    def attempt(name, f):
        try:
            f()
            print(name, "ok")
        except OSError as e:
            print(name, errno.errorcode.get(e.errno, e.errno))
    attempt("mptcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).close())
    attempt("tcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 6).close())
    attempt("fastopen", lambda: socket.socket().sendto(b"x", 0x20000000, ("127.0.0.1", 9)))
    master, slave = pty.openpty()
    libc = ctypes.CDLL(None, use_errno=True)
    def setd():
        if libc.ioctl(slave, 0x5423, ctypes.byref(ctypes.c_int(0))) != 0:   # TIOCSETD N_TTY
            raise OSError(ctypes.get_errno(), "TIOCSETD")
    attempt("tiocsetd", setd)
    """

    @Test("MPTCP sockets, TCP Fast Open and TIOCSETD are refused by the filter; with it off they get through to the kernel")
    func sideDoors() throws {
        let path = profiles.path + "/side-doors.py"
        try Self.sideDoorScript.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(profiles.path, 0o755)
        chmod(path, 0o644)
        let argv = ["--ro-bind", "\(path):/side-doors.py", "--", "/usr/bin/python3", "/side-doors.py"]
        let strict = try run([Paths.otk, "sandbox", "run", "--profile", Self.strictProfile] + argv)
        #expect(strict.status == 0, "\(strict.stderr)")
        #expect(strict.stdout.split(separator: "\n") == ["mptcp EPERM", "tcp ok", "fastopen EPERM", "tiocsetd EPERM"], "\(strict.stdout)")
        let off = try run([Paths.otk, "sandbox", "run", "--profile", try profile("side-doors-off", "[seccomp]\nenabled = false")] + argv)
        #expect(off.status == 0, "\(off.stderr)")
        let lines = off.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4 && lines[0] != "mptcp EPERM" && lines[2] != "fastopen EPERM" && lines[3] == "tiocsetd ok", "\(off.stdout)")
    }
}
