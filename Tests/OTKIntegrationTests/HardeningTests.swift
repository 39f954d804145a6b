import Foundation
import Testing

/// What a hostile command or workspace could do through the edges of a launch: the
/// caller's keyring, the terminal-free stdio, mount points, the cleanup, the result line.
@Suite(.serialized) struct HardeningTests {
    func probeArgv(_ args: [String], workspace: String? = nil) -> [String] {
        [Paths.otk, "sandbox", "run"] + (workspace.map { ["--workspace", $0] } ?? [])
            + ["--ro-bind", "\(Paths.probe):\(Paths.probeInside)", "--", Paths.probeInside] + args
    }

    @Test("the command does not get the caller's session keyring; unsandboxed it does")
    func sessionKeyring() throws {
        let wrapper = [ "/usr/bin/env", "python3", Paths.repository + "/Tests/Fixtures/with_session_key.py"]
        let outside = ProbeReport(try run(wrapper + [Paths.probe, "session-keys"]).stdout)
        #expect(outside["session-keys"]?["keys"] as? Int == 1, "the control must see the operator's key")
        // Two layers: strict's seccomp filter refuses keyctl outright; beneath it, the sandbox has a keyring of its own.
        let inside = try run(wrapper + probeArgv(["session-keys"]))
        #expect(inside.status == 0, "\(inside.stderr)")
        #expect(ProbeReport(inside.stdout)["session-keys"]?.error == "EPERM", "keyctl must be filtered: \(inside.stdout)")
        let noFilter = try DerivedProfile("[seccomp]\nenabled = false")
        let unfiltered = try run(wrapper + [Paths.otk, "sandbox", "run", "--profile", noFilter.path, "--ro-bind", "\(Paths.probe):\(Paths.probeInside)",
                                            "--", Paths.probeInside, "session-keys"])
        #expect(unfiltered.status == 0, "\(unfiltered.stderr)")
        #expect(ProbeReport(unfiltered.stdout)["session-keys"]?["keys"] as? Int == 0, "the sandbox sees the caller's keys")
    }

    @Test("a FIFO where a file mount point goes is refused at once, not waited on")
    func fifoMountPoint() throws {
        let ws = try TemporaryDirectory(owner: geteuid() == 0 ? 65534 : geteuid())
        #expect(mkfifo(ws.path + "/cfg", 0o666) == 0)
        let started = Date()
        let result = try run([Paths.otk, "sandbox", "run", "--workspace", ws.path, "--ro-bind", "/etc/hostname:/workspace/cfg", "--", "true"])
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(result.status == 4)
        #expect(result.stderr.contains("is not a regular file"), "\(result.stderr)")
    }

    @Test("a temporary workspace is emptied inside the sandbox and removed; nothing outside is followed")
    func temporaryWorkspaceCleanup() throws {
        let victim = try TemporaryDirectory(prefix: "otk-it-victim-")
        try "keep".write(toFile: victim.path + "/file", atomically: false, encoding: .utf8)
        chmod(victim.path, 0o777)
        // Deep, read-only, full of symlinks to a host directory the sandbox cannot see.
        let script = "mkdir -p a/b/c && touch a/b/c/f && chmod 555 a/b && ln -s \(victim.path) link && ln -s \(victim.path)/file flink"
            + " && mkdir d && ln -s \(victim.path) d/l && (i=0; while [ $i -lt 300 ]; do mkdir n; cd n; i=$((i+1)); done; touch deep)"
            + " && mkdir z && touch z/f && chmod 000 z && chmod 555 ."
        let result = try run([Paths.otk, "sandbox", "run", "--json", "--", "/bin/sh", "-c", script])
        #expect(result.status == 0, "\(result.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data((result.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any])
        let workspace = try #require(doc["workspace"] as? String)
        #expect(!FileManager.default.fileExists(atPath: workspace), "the temporary workspace is still there")
        #expect((doc["warnings"] as? [String]) == [], "\(doc["warnings"] ?? "")")
        #expect(FileManager.default.fileExists(atPath: victim.path + "/file"), "cleanup followed a symlink out of the workspace")
    }

    @Test("emptying a temporary workspace never enters a bind below it: the operator's data stays")
    func cleanupStaysOnTheWorkspaceMount() throws {
        let data = try TemporaryDirectory(owner: geteuid() == 0 ? 65534 : geteuid(), prefix: "otk-it-data-")
        try "precious".write(toFile: data.path + "/important.txt", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: data.path + "/sub", withIntermediateDirectories: false)
        if geteuid() == 0 { chown(data.path + "/important.txt", 65534, 65534); chown(data.path + "/sub", 65534, 65534) }
        let result = try run([Paths.otk, "sandbox", "run", "--json", "--bind", data.path + ":/workspace/data", "--", "true"])
        #expect(result.status == 0, "\(result.stderr)")
        // The bind's mount point stays in the temporary workspace (reported); remove what this test caused.
        if let line = result.stdout.split(separator: "\n").last,
           let doc = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
           let workspace = doc["workspace"] as? String {
            #expect((doc["warnings"] as? [String])?.first?.contains("left behind") == true)
            try? FileManager.default.removeItem(atPath: workspace)
        }
        #expect(FileManager.default.fileExists(atPath: data.path + "/important.txt"), "the cleanup emptied a bind")
        #expect(FileManager.default.fileExists(atPath: data.path + "/sub"))
        let mode = ((try FileManager.default.attributesOfItem(atPath: data.path))[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o755, "the cleanup changed the bind's mode")
    }

    @Test("a sandbox lost after launch still gets a --json document, with status 70")
    func lostSandboxStillReports() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.otk)
        process.arguments = ["sandbox", "run", "--json", "--", "/bin/sh", "-c", "printf '{\"status\":0}'; exec sleep 30"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let otk = process.processIdentifier
        var monitor: Int32? = nil
        let deadline = Date().addingTimeInterval(10)
        while monitor == nil && Date() < deadline {
            // The monitor is otk's child; wait until the command runs under it.
            if descendants(of: otk).count >= 3 {
                monitor = descendants(of: otk).first { pid in
                    ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(3).first).map(String.init) == String(otk)
                }
            }
            usleep(10_000)
        }
        let victim = try #require(monitor, "the sandbox did not start")
        kill(victim, SIGKILL)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 70)
        let last = try #require(String(decoding: data, as: UTF8.self).split(separator: "\n").last)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(last)")
        #expect(doc["status"] as? Int == 70)
        #expect((doc["error"] as? [String: Any])?["kind"] as? String == "internal")
        if let workspace = doc["workspace"] as? String { try? FileManager.default.removeItem(atPath: workspace) }
    }

    @Test("--bind of a workspace path that goes through a symlink is refused")
    func bindThroughWorkspaceSymlink() throws {
        let ws = try TemporaryDirectory(owner: geteuid() == 0 ? 65534 : geteuid())
        #expect(symlink("/etc", ws.path + "/link") == 0)
        let result = try run([Paths.otk, "sandbox", "run", "--workspace", ws.path, "--ro-bind", ws.path + "/link:/mnt/etc", "--", "true"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("goes through a symlink inside the workspace"), "\(result.stderr)")
    }

    @Test("the host's / can be bound read-only")
    func bindRoot() throws {
        let result = try run([Paths.otk, "sandbox", "run", "--ro-bind", "/:/host", "--", "/bin/sh", "-c", "test -d /host/usr && ! touch /host/x 2>/dev/null"])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("the --json result is a line of its own: a command cannot forge it by leaving its output open")
    func jsonCannotBeForged() throws {
        let result = try run([Paths.otk, "sandbox", "run", "--json", "--", "/bin/sh", "-c", "printf '{\"status\":0,\"exit_code\":0}'; exit 3"])
        #expect(result.status == 3)
        let last = try #require(result.stdout.split(separator: "\n").last)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(doc["status"] as? Int == 3)
        #expect(doc["exit_code"] as? Int == 3)
    }
}

/// otk and the operator's terminal: the command must not read what is typed unless asked,
/// must not leave the terminal changed, and must stop when the job is stopped.
@Suite(.serialized) struct TerminalTests {
    func inPty(typed: String, _ argv: [String], ptyOwner: UInt32? = nil) throws -> [String: Any] {
        var env = ProcessInfo.processInfo.environment
        if let ptyOwner { env["OTK_PTY_OWNER"] = String(ptyOwner) }
        let result = try run(["/usr/bin/env", "python3", Paths.repository + "/Tests/Fixtures/run_in_pty.py", typed] + argv, environment: env)
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
    }

    func probe(_ extra: [String], _ checks: [String]) -> [String] {
        [Paths.otk, "sandbox", "run"] + extra + ["--ro-bind", "\(Paths.probe):\(Paths.probeInside)", "--", Paths.probeInside] + checks
    }

    @Test("a terminal on stdin is not handed to the command; what the operator types stays out")
    func terminalStdinIsNotHandedOver() throws {
        let doc = try inPty(typed: "operator-typed-secret", probe([], ["stdin"]))
        #expect(doc["exit"] as? Int == 0, "\(doc)")
        let output = doc["output"] as? String ?? ""
        #expect(output.contains("\"check\":\"stdin\""), "\(output)")
        #expect(output.contains("\"content\":\"\""), "the command read the terminal: \(output)")
    }

    @Test("the command never holds the terminal: its output is relayed, and no reopening reads what is typed")
    func terminalOutputIsRelayed() throws {
        // Reopening fd 1 read-write through /proc worked on a write-only terminal fd; on the relay pipe it finds nothing typed.
        let script = "[ -t 1 ] && echo IS-TTY || echo NOT-TTY; timeout 2 sh -c 'exec 3<>/proc/self/fd/1; head -c 5 <&3 >/workspace/got'; echo GOT:$(cat /workspace/got 2>/dev/null):END"
        // The terminal belongs to the sandbox's host uid, as an operator's own terminal does when otk maps to them.
        let owner: UInt32 = geteuid() == 0 ? 65534 : geteuid()
        let doc = try inPty(typed: "typed", [Paths.otk, "sandbox", "run", "--", "/bin/sh", "-c", script], ptyOwner: owner)
        let output = doc["output"] as? String ?? ""
        #expect(output.contains("NOT-TTY"), "\(output)")
        #expect(output.contains("GOT::END"), "the command read from the terminal: \(output)")
        // With --interactive the terminal is handed over as it is; reopening it through /proc still fails,
        // because the host's terminal lies outside every path of the Landlock ruleset.
        let handed = try inPty(typed: "typed", [Paths.otk, "sandbox", "run", "--interactive", "--", "/bin/sh", "-c", script], ptyOwner: owner)
        let handedOutput = handed["output"] as? String ?? ""
        #expect(handedOutput.contains("IS-TTY") && handedOutput.contains("GOT::END"), "\(handedOutput)")
        // The control: without Landlock the same reopening reads what is typed.
        let noLandlock = try DerivedProfile("[landlock]\nenforce = \"off\"")
        let open = try inPty(typed: "typed", [Paths.otk, "sandbox", "run", "--profile", noLandlock.path, "--interactive", "--", "/bin/sh", "-c", script],
                             ptyOwner: owner)
        let openOutput = open["output"] as? String ?? ""
        #expect(openOutput.contains("IS-TTY") && openOutput.contains("GOT:typed:END"), "\(openOutput)")
    }

    @Test("a relay write end left in flight on a unix socket does not keep otk waiting")
    func relayDoesNotWaitForInFlightWriters() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs Debian's python3 inside the sandbox")
        // Two datagram socket pairs that hold each other (and stdout/stderr) in flight, then exit:
        // no process holds the write ends, yet the pipe stays open until the kernel's unix GC runs.
        let script = """
            import socket, array, os, time
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM); c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            R = lambda l: [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", l))]
            a.sendmsg([b"x"], R([1, 2, c.fileno(), a.fileno()])); c.sendmsg([b"y"], R([b.fileno(), d.fileno(), a.fileno()]))
            print("in flight", flush=True); os._exit(0)
            """
        let started = Date()
        let doc = try inPty(typed: "", [Paths.otk, "sandbox", "run", "--", "/usr/bin/python3", "-c", script])
        #expect(Date().timeIntervalSince(started) < 10, "otk waited for writers that no longer exist")
        #expect(doc["exit"] as? Int == 0, "\(doc)")
        #expect((doc["output"] as? String ?? "").contains("in flight"))
    }

    @Test("--interactive hands the terminal over")
    func interactiveHandsTheTerminalOver() throws {
        let doc = try inPty(typed: "typed-for-the-command", probe(["--interactive"], ["stdin"]))
        #expect(doc["exit"] as? Int == 0, "\(doc)")
        #expect((doc["output"] as? String ?? "").contains("\"content\":\"typed-for-the-command"), "\(doc)")
    }

    @Test("terminal modes changed by an --interactive command are put back; without it the command has no terminal to change")
    func terminalModesRestored() throws {
        let doc = try inPty(typed: "", [Paths.otk, "sandbox", "run", "--interactive", "--", "/bin/sh", "-c", "stty -echo"])
        #expect(doc["exit"] as? Int == 0, "\(doc)")
        #expect(doc["echo_after"] as? Bool == true, "echo is still off after the command ended")
        let withheld = try inPty(typed: "", [Paths.otk, "sandbox", "run", "--", "/bin/sh", "-c", "stty -echo 0<&1"])
        #expect(withheld["exit"] as? Int != 0, "stty found a terminal: \(withheld)")
        #expect(withheld["echo_after"] as? Bool == true)
    }

    @Test("tty state beyond termios is put back too: exclusive mode set by an --interactive command is cleared")
    func exclusiveModeRestored() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs Debian's python3 inside the sandbox")
        let script = "import fcntl; fcntl.ioctl(0, 0x540C); print('EXCL-SET')"   // TIOCEXCL
        let doc = try inPty(typed: "", [Paths.otk, "sandbox", "run", "--interactive", "--", "/usr/bin/python3", "-c", script])
        #expect(doc["exit"] as? Int == 0, "\(doc)")
        #expect((doc["output"] as? String ?? "").contains("EXCL-SET"), "the command could not set exclusive mode: \(doc)")
        #expect(doc["exclusive_after"] as? Bool == false, "the terminal was left in exclusive mode")
    }

    @Test("SIGTSTP to otk stops the command too, SIGCONT continues it")
    func jobControl() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.otk)
        // A setsid child too: stopping one process group would leave it running.
        process.arguments = ["sandbox", "run", "--", "/bin/sh", "-c", "setsid sleep 29 & exec sleep 30"]
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let otk = process.processIdentifier
        func sleepPid() -> Int32? {
            descendants(of: otk).first { (try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8)) == "sleep\u{0}30\u{0}" }
        }
        func state(_ pid: Int32) -> Character? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
            return stat[stat.index(close, offsetBy: 2)]
        }
        func waitFor(_ pid: Int32, _ wanted: Character) -> Bool {
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline { if state(pid) == wanted { return true }; usleep(10_000) }
            return false
        }
        var deadline = Date().addingTimeInterval(10)
        while sleepPid() == nil && Date() < deadline { usleep(10_000) }
        let command = try #require(sleepPid(), "the command did not start")
        deadline = Date().addingTimeInterval(10)
        var detached: Int32? = nil
        while detached == nil && Date() < deadline {
            detached = descendants(of: otk).first { (try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8)) == "sleep\u{0}29\u{0}" }
            usleep(10_000)
        }
        let setsidChild = try #require(detached, "the setsid child did not start")
        kill(otk, SIGTSTP)
        #expect(waitFor(command, "T"), "the command kept running after SIGTSTP")
        #expect(waitFor(setsidChild, "T"), "a setsid child kept running after SIGTSTP")
        #expect(waitFor(otk, "T"), "otk did not stop itself")
        kill(otk, SIGCONT)
        #expect(waitFor(command, "S"), "the command did not continue")
        #expect(waitFor(setsidChild, "S"), "the setsid child did not continue")
        kill(otk, SIGTERM)
        deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!process.isRunning)
    }
}
