import Foundation
import Testing

/// The strict profile checked from inside, with the probe, against real host targets;
/// and the same probe run unsandboxed, which must succeed where the sandbox refuses,
/// so that every assertion here can fail.
@Suite(.serialized) struct IsolationTests {
    /// A host secret outside the workspace, readable by everyone on the host.
    let secretDirectory: TemporaryDirectory
    let secret: String
    let token = "otk-secret-\(UInt64.random(in: 0...UInt64.max))"

    init() throws {
        secretDirectory = try TemporaryDirectory(prefix: "otk-it-secret-")
        secret = secretDirectory.path + "/secret.txt"
        try token.write(toFile: secret, atomically: false, encoding: .utf8)
        chmod(secret, 0o644)
    }

    /// The checks both runs make. `mountDir` differs: inside, the workspace; outside, a scratch directory.
    /// `killTarget` is a host process the checks try to SIGKILL.
    func checks(_ s: HostServices, mountDir: String, scratchName: String, killTarget: Int32) -> [String] {
        let t = s.targetPid
        return [
            "identity", "pids", "fds",
            "read=\(secret)", "read=/etc/shadow", "read=/root", "exists=/sys",
            "rewrite=/proc/sys/kernel/hostname",
            "write=/usr/\(scratchName)", "write=/etc/\(scratchName)", "write=/\(scratchName)",
            "kill=\(killTarget)",
            "mount=\(mountDir)",
            "unshare-user", "unshare-mount", "unshare-net", "pivot-root", "setuid0",
            "ptrace=\(t)", "signal0=\(t)",
            "unix=\(s.unixPath)", "abstract=\(s.abstractName)",
            "tcp=127.0.0.1:\(s.tcpPort)", "tcp=[::1]:\(s.tcpPort)", "udp=127.0.0.1:\(s.udpPort)",
            "sethostname",
            "sysv-msg=\(s.sysvKey("msg"))", "sysv-shm=\(s.sysvKey("shm"))", "sysv-sem=\(s.sysvKey("sem"))",
        ]
    }

    /// Runs otk with an extra open fd 7 (a host file) that the sandbox must not inherit.
    func sandboxed(_ runner: Runner, workspace: String, profile: String = "strict", _ probeArgs: [String]) throws -> Completed {
        let otk = [runner.otk, "sandbox", "run", "--profile", profile, "--workspace", workspace,
                   "--ro-bind", "\(runner.probe):\(Paths.probeInside)", "--", Paths.probeInside] + probeArgs
        return try run(runner.prefix + ["/bin/sh", "-c", "exec 7<\"$0\"; exec \"$@\"", secret] + otk)
    }

    @Test("strict: the probe can do none of the escapes from inside", arguments: Runner.available)
    func strictRefusesFromInside(runner: Runner) throws {
        let services = try HostServices()
        let workspace = try TemporaryDirectory(owner: runner == .nobody ? 65534 : (geteuid() == 0 ? 65534 : geteuid()))
        let hostname = ProcessInfo.processInfo.hostName
        let scratch = "otk-probe-\(UInt32.random(in: 0...UInt32.max))"
        let result = try sandboxed(runner, workspace: workspace.path,
                                   checks(services, mountDir: "/workspace", scratchName: scratch, killTarget: services.targetPid)
                                   + ["write=/tmp/\(scratch)", "keep=/workspace/owned"])
        #expect(result.status == 0, "otk failed: \(result.stderr)")
        let r = ProbeReport(result.stdout)

        let identity = try #require(r["identity"])
        #expect(identity["uid"] as? [Int] == [1000, 1000, 1000])
        #expect(identity["gid"] as? [Int] == [1000, 1000, 1000])
        for set in ["cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb"] {
            #expect(identity[set] as? String == "0000000000000000", "\(set) is \(identity[set] ?? "missing")")
        }
        #expect(identity["no_new_privs"] as? Int == 1)
        #expect(identity["pid"] as? Int == 2, "the command is pid 2, after the sandbox's init")
        #expect(identity["hostname"] as? String == "otk")
        let groups = identity["groups"] as? [Int] ?? []
        #expect(!groups.contains(0), "host group 0 leaked in")
        #expect(identity["sid"] as? Int == 2, "the command leads its own session")

        #expect(r["pids"]?["pids"] as? [Int] == [1, 2], "sees \(r["pids"]?["pids"] ?? "?")")
        #expect(r["fds"]?["fds"] as? [Int] == [], "inherited fds: \(r["fds"]?["targets"] ?? "?")")

        let refusals: [(String, Set<String>)] = [
            ("read=\(secret)", ["ENOENT"]), ("read=/etc/shadow", ["ENOENT"]), ("read=/root", ["ENOENT"]), ("exists=/sys", ["ENOENT"]),
            ("rewrite=/proc/sys/kernel/hostname", ["EROFS", "EACCES"]),
            ("write=/usr/\(scratch)", ["EROFS"]), ("write=/etc/\(scratch)", ["EROFS"]), ("write=/\(scratch)", ["EROFS"]),
            ("kill=\(services.targetPid)", ["ESRCH"]),
            ("mount=/workspace", ["EPERM"]),
            // The seccomp filter answers first (EPERM); the layers beneath are shown in SeccompLandlockTests.
            ("unshare-user", ["EPERM"]), ("unshare-mount", ["EPERM"]), ("unshare-net", ["EPERM"]),
            ("pivot-root", ["EPERM"]), ("setuid0", ["EPERM", "EINVAL"]),
            ("ptrace=\(services.targetPid)", ["EPERM"]), ("signal0=\(services.targetPid)", ["ESRCH"]),
            ("unix=\(services.unixPath)", ["ENOENT"]), ("abstract=\(services.abstractName)", ["ECONNREFUSED"]),
            // From Landlock ABI 4 every TCP port is refused under network none (EACCES) before the empty namespace could be.
            ("tcp=127.0.0.1:\(services.tcpPort)", SeccompLandlockTests.landlockABI >= 4 ? ["EACCES"] : ["ENETUNREACH"]),
            ("tcp=[::1]:\(services.tcpPort)", SeccompLandlockTests.landlockABI >= 4 ? ["EACCES"] : ["ENETUNREACH", "EADDRNOTAVAIL"]),
            ("udp=127.0.0.1:\(services.udpPort)", ["ENETUNREACH", "ETIMEDOUT", "ECONNREFUSED"]),
            ("sethostname", ["EPERM"]),
            ("sysv-msg=\(services.sysvKey("msg"))", ["ENOENT"]), ("sysv-shm=\(services.sysvKey("shm"))", ["ENOENT"]),
            ("sysv-sem=\(services.sysvKey("sem"))", ["ENOENT"]),
        ]
        for (check, errors) in refusals {
            let line = try #require(r[check], "no probe output for \(check)")
            #expect(!line.ok, "\(check) succeeded inside the sandbox")
            #expect(errors.contains(line.error), "\(check) failed with \(line.error), expected one of \(errors.sorted())")
        }
        #expect(r["write=/tmp/\(scratch)"]?.ok == true, "the sandbox's /tmp must be writable")
        #expect(r["keep=/workspace/owned"]?.ok == true, "the workspace must be writable")

        // On the host: the file the sandbox made belongs to an unprivileged uid, the target lives, the hostname is the same.
        let attributes = try FileManager.default.attributesOfItem(atPath: workspace.path + "/owned")
        let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value
        #expect(owner == (runner == .nobody || geteuid() == 0 ? 65534 : geteuid()))
        #expect(owner != 0, "a sandbox wrote a file as host root")
        #expect(isAlive(services.targetPid), "the sandbox killed a host process")
        #expect(ProcessInfo.processInfo.hostName == hostname)
        #expect(!FileManager.default.fileExists(atPath: "/usr/\(scratch)"))
    }

    @Test("unsandboxed, the same probe succeeds, so the sandbox assertions can fail")
    func controlSucceedsOutside() throws {
        try #require(geteuid() == 0, "the full control run needs root")
        let services = try HostServices()
        let mountDir = try TemporaryDirectory()
        let scratch = "otk-probe-\(UInt32.random(in: 0...UInt32.max))"
        // A disposable host process for the real SIGKILL (the shared target must live on).
        let victim = Process()
        victim.executableURL = URL(fileURLWithPath: "/bin/sleep")
        victim.arguments = ["300"]
        try victim.run()
        defer { if victim.isRunning { victim.terminate() } }
        let result = try run(["/bin/sh", "-c", "exec 7<\"$0\"; exec \"$@\"", secret, Paths.probe]
                             + checks(services, mountDir: mountDir.path, scratchName: scratch, killTarget: victim.processIdentifier))
        #expect(result.status == 0, "probe failed: \(result.stderr)")
        let r = ProbeReport(result.stdout)
        #expect((r["pids"]?["pids"] as? [Int] ?? []).count > 2)
        let fds = r["fds"]?["fds"] as? [Int] ?? []
        #expect(fds.contains(7), "fd 7 should be inherited unsandboxed")
        #expect(r["read=\(secret)"]?["content"] as? String == token)
        let deadline = Date().addingTimeInterval(5)
        while victim.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!victim.isRunning && victim.terminationReason == .uncaughtSignal && victim.terminationStatus == SIGKILL,
                "the control's kill did not kill")
        let mustSucceed = checks(services, mountDir: mountDir.path, scratchName: scratch, killTarget: victim.processIdentifier).filter {
            !["identity", "pids", "fds"].contains($0) && !$0.hasPrefix("exists=")
        }
        for check in mustSucceed {
            let line = try #require(r[check], "no probe output for \(check)")
            #expect(line.ok, "\(check) failed unsandboxed (\(line.error)): the matching sandbox assertion proves nothing")
        }
        #expect(r["exists=/sys"]?.ok == true)
        #expect(isAlive(services.targetPid), "ptrace must detach, signal 0 must not kill")
    }

    @Test("as nobody, unsandboxed, the shared-resource checks succeed too")
    func nobodyControlSucceedsOutside() throws {
        try #require(Runner.available.contains(.nobody), "needs root to switch to nobody")
        let services = try HostServices()
        let checks = ["read=\(secret)", "unix=\(services.unixPath)", "abstract=\(services.abstractName)",
                      "tcp=127.0.0.1:\(services.tcpPort)", "udp=127.0.0.1:\(services.udpPort)", "unshare-user",
                      "sysv-msg=\(services.sysvKey("msg"))", "sysv-shm=\(services.sysvKey("shm"))", "sysv-sem=\(services.sysvKey("sem"))"]
        let result = try run(Runner.nobody.prefix + [Runner.nobody.probe] + checks)
        let r = ProbeReport(result.stdout)
        for check in checks {
            #expect(r[check]?.ok == true, "\(check) failed for nobody unsandboxed (\(r[check]?.error ?? "no output"))")
        }
    }

    @Test("standard: private loopback is up, the host's listeners are still out of reach", arguments: Runner.available)
    func standardLoopback(runner: Runner) throws {
        let services = try HostServices()
        let workspace = try TemporaryDirectory(owner: runner == .nobody || geteuid() == 0 ? 65534 : geteuid())
        let result = try sandboxed(runner, workspace: workspace.path, profile: "standard",
                                   ["tcp=127.0.0.1:\(services.tcpPort)", "unix=\(services.unixPath)", "read=/etc/hostname", "read=/etc/shadow", "write=/etc/otk-x"])
        #expect(result.status == 0, "otk failed: \(result.stderr)")
        let r = ProbeReport(result.stdout)
        // ECONNREFUSED, not ENETUNREACH: the sandbox's own loopback answered, nobody listens on it.
        #expect(r["tcp=127.0.0.1:\(services.tcpPort)"]?.error == "ECONNREFUSED")
        #expect(r["unix=\(services.unixPath)"]?.error == "ENOENT")
        #expect(r["read=/etc/hostname"]?.ok == true, "standard binds /etc read-only")
        #expect(r["read=/etc/shadow"]?.error == "EACCES", "host secrets in /etc stay unreadable to the sandbox user")
        #expect(r["write=/etc/otk-x"]?.error == "EROFS")
    }
}
