import Foundation
import Testing

/// Status pass-through, stdio, signals, and what is left when otk dies.
@Suite(.serialized) struct LifecycleTests {
    func otk(_ args: [String], probe: [String], as runner: Runner = .invoking) -> [String] {
        runner.prefix + [runner.otk, "sandbox", "run"] + args + ["--ro-bind", "\(runner.probe):\(Paths.probeInside)", "--", Paths.probeInside] + probe
    }

    @Test("the command's exit status and 128+N for a signal are passed through", arguments: Runner.available)
    func statusPassThrough(runner: Runner) throws {
        #expect(try run(otk([], probe: ["exit=42"], as: runner)).status == 42)
        #expect(try run(otk([], probe: ["exit=0"], as: runner)).status == 0)
        #expect(try run(otk([], probe: ["signal=9"], as: runner)).status == 137)
        #expect(try run(otk([], probe: ["signal=15"], as: runner)).status == 143)
    }

    @Test("--json prints one result document with status, signal, duration, profile hash and layers")
    func jsonResult() throws {
        let result = try run(otk(["--json"], probe: ["signal=9"]))
        #expect(result.status == 137)
        let last = try #require(result.stdout.split(separator: "\n").last)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(doc["status"] as? Int == 137)
        #expect(doc["signal"] as? Int == 9)
        #expect(doc["exit_code"] == nil || doc["exit_code"] is NSNull)
        #expect((doc["duration_ms"] as? Double ?? 0) > 0)
        let profile = try #require(doc["profile"] as? [String: Any])
        #expect(profile["name"] as? String == "strict")
        #expect((profile["sha256"] as? String ?? "").range(of: "^sha256:[0-9a-f]{64}$", options: .regularExpression) != nil)
        let layers = doc["layers"] as? [String] ?? []
        for layer in ["user-namespace", "pid-namespace", "net-namespace", "private-root", "capabilities-dropped", "no-new-privs"] {
            #expect(layers.contains(layer), "missing layer \(layer) in \(layers)")
        }
    }

    @Test("stdin, stdout and stderr are connected")
    func stdio() throws {
        let result = try run(otk([], probe: ["stdin"]), input: "hello from the host\n")
        #expect(ProbeReport(result.stdout)["stdin"]?["content"] as? String == "hello from the host\n")
        let err = try run([Paths.otk, "sandbox", "run", "--", "/bin/sh", "-c", "echo to-stderr >&2"])
        #expect(err.stderr.contains("to-stderr"))
    }

    @Test("only the profile's variables and --env reach the command")
    func environment() throws {
        var env = ProcessInfo.processInfo.environment
        env["OTK_TEST_SECRET"] = "leaked"
        env["LC_OTKTEST"] = "passed"
        let result = try run(otk(["--env", "FROM_CLI=yes", "--env", "HOME=/elsewhere"], probe: ["env"]), environment: env)
        let vars = ProbeReport(result.stdout)["env"]?["env"] as? [String] ?? []
        #expect(!vars.contains { $0.hasPrefix("OTK_TEST_SECRET=") })
        #expect(vars.contains("LC_OTKTEST=passed"), "LC_* is in strict's pass list")
        #expect(vars.contains("FROM_CLI=yes"))
        #expect(vars.contains("HOME=/elsewhere"), "--env wins over the profile's set")
        #expect(vars.contains("PATH=/usr/local/bin:/usr/bin:/bin"))
    }

    @Test("SIGTERM to otk reaches the command, and otk reports it", arguments: Runner.available)
    func sigtermIsForwarded(runner: Runner) throws {
        let process = Process()
        let argv = otk([], probe: ["sleep=30"], as: runner)
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let otkPid = try waitForSandbox(process.processIdentifier, runner: runner)
        kill(otkPid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!process.isRunning, "otk did not end after SIGTERM")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(process.terminationStatus == 143, "the command should die of SIGTERM (143), got \(process.terminationStatus)")
    }

    @Test("kill -9 of otk leaves no process of the sandbox behind", arguments: Runner.available)
    func killNineLeavesNothing(runner: Runner) throws {
        let process = Process()
        // A command that forks background children and ignores SIGTERM/SIGHUP: nothing of it may survive.
        // A workspace of the test's own: a killed otk cannot remove a temporary one.
        let workspace = try TemporaryDirectory(owner: runner == .nobody || geteuid() == 0 ? 65534 : geteuid())
        let argv = runner.prefix + [runner.otk, "sandbox", "run", "--workspace", workspace.path, "--",
                                    "/bin/sh", "-c", "trap '' TERM HUP; sleep 300 & sleep 301 & wait"]
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        try process.run()
        let otkPid = try waitForSandbox(process.processIdentifier, runner: runner, minimum: 5)
        let sandbox = descendants(of: otkPid)
        #expect(sandbox.count >= 5, "launcher, init, sh and two sleeps: \(sandbox.count)")
        kill(otkPid, SIGKILL)
        process.waitUntilExit()
        let deadline = Date().addingTimeInterval(10)
        while sandbox.contains(where: isAlive) && Date() < deadline { usleep(20_000) }
        let survivors = sandbox.filter(isAlive)
        #expect(survivors.isEmpty, "still alive after otk was killed: \(survivors.sorted())")
        for pid in survivors { kill(pid, SIGKILL) }
    }

    /// Waits until otk (possibly under setpriv, which execs it) has at least `minimum` descendants; returns otk's pid.
    func waitForSandbox(_ pid: Int32, runner: Runner, minimum: Int = 3) throws -> Int32 {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if descendants(of: pid).count >= minimum { return pid }
            usleep(10_000)
        }
        Issue.record("the sandbox did not start within 10 s")
        throw POSIXError(.ETIMEDOUT)
    }
}
