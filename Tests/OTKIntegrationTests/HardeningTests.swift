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
        let wrapper = [ "/usr/bin/env", "python3", Paths.repository + "/Tests/fixtures/with_session_key.py"]
        let outside = ProbeReport(try run(wrapper + [Paths.probe, "session-keys"]).stdout)
        #expect(outside["session-keys"]?["keys"] as? Int == 1, "the control must see the operator's key")
        let inside = try run(wrapper + probeArgv(["session-keys"]))
        #expect(inside.status == 0, "\(inside.stderr)")
        #expect(ProbeReport(inside.stdout)["session-keys"]?["keys"] as? Int == 0, "the sandbox sees the caller's keys")
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
        try "keep".write(toFile: victim.path + "/file", atomically: true, encoding: .utf8)
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
    func inPty(typed: String, _ argv: [String]) throws -> [String: Any] {
        let result = try run(["/usr/bin/env", "python3", Paths.repository + "/Tests/fixtures/run_in_pty.py", typed] + argv)
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

    @Test("a terminal on stdout is write-only for the command: it cannot read what is typed through it")
    func terminalStdoutIsWriteOnly() throws {
        let script = "if head -c 1 <&1 >/dev/null 2>&1; then echo READ-OK; else echo READ-DENIED; fi"
        let doc = try inPty(typed: "typed", [Paths.otk, "sandbox", "run", "--", "/bin/sh", "-c", script])
        let output = doc["output"] as? String ?? ""
        #expect(output.contains("READ-DENIED"), "\(output)")
        #expect(!output.contains("READ-OK"), "\(output)")
        // The control: with --interactive the terminal is handed over as it is, and the read works.
        let open = try inPty(typed: "typed", [Paths.otk, "sandbox", "run", "--interactive", "--", "/bin/sh", "-c", script])
        #expect((open["output"] as? String ?? "").contains("READ-OK"), "\(open)")
    }

    @Test("--interactive hands the terminal over")
    func interactiveHandsTheTerminalOver() throws {
        let doc = try inPty(typed: "typed-for-the-command", probe(["--interactive"], ["stdin"]))
        #expect(doc["exit"] as? Int == 0, "\(doc)")
        #expect((doc["output"] as? String ?? "").contains("\"content\":\"typed-for-the-command"), "\(doc)")
    }

    @Test("terminal modes the command changes are put back")
    func terminalModesRestored() throws {
        let doc = try inPty(typed: "", [Paths.otk, "sandbox", "run", "--", "/bin/sh", "-c", "stty -echo 0<&1"])
        #expect(doc["exit"] as? Int == 0, "\(doc)")
        #expect(doc["echo_after"] as? Bool == true, "echo is still off after the command ended")
    }

    @Test("SIGTSTP to otk stops the command too, SIGCONT continues it")
    func jobControl() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.otk)
        process.arguments = ["sandbox", "run", "--", "/bin/sh", "-c", "exec sleep 30"]
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let otk = process.processIdentifier
        func sleepPid() -> Int32? {
            descendants(of: otk).first { (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) == "sleep\n" }
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
        kill(otk, SIGTSTP)
        #expect(waitFor(command, "T"), "the command kept running after SIGTSTP")
        #expect(waitFor(otk, "T"), "otk did not stop itself")
        kill(otk, SIGCONT)
        #expect(waitFor(command, "S"), "the command did not continue")
        kill(otk, SIGTERM)
        deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!process.isRunning)
    }
}
