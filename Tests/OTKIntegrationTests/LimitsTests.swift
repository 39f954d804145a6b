import Foundation
import Testing

/// This host's cgroup v1 hierarchies, by controller, from /proc/self/mountinfo.
enum V1Hierarchies {
    static let mounts: [String: String] = {
        guard let mountinfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [:] }
        var out: [String: String] = [:]
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), fields.count > dash + 3, fields[dash + 1] == "cgroup" else { continue }
            for option in fields[dash + 3].split(separator: ",") where ["memory", "pids", "cpu", "cpuacct"].contains(String(option)) {
                out[String(option)] = String(fields[4])
            }
        }
        return out
    }()

    /// Root, and the memory, pids and cpu controllers on v1: what these tests exercise.
    static let usable = geteuid() == 0 && ["memory", "pids", "cpu"].allSatisfy { mounts[$0] != nil }

    /// The hierarchies' mount points (co-mounted ones once).
    static var directories: [String] { Array(Set(mounts.values)).sorted() }

    /// The run directories (`<hierarchy>/<parent>/run-PID-...`) of the otk process `pid`, as root's or nobody's.
    static func runDirectories(of pid: Int32) -> [String] {
        var out: [String] = []
        for hierarchy in directories {
            for parent in ["otk", "otk-65534"] {
                let dir = hierarchy + "/" + parent
                for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix("run-\(pid)-") {
                    out.append(dir + "/" + name)
                }
            }
        }
        return out.sorted()
    }

    /// The directory of the otk process `pid`'s run in one controller's hierarchy, once it exists.
    static func runDirectory(of pid: Int32, controller: String, parent: String) -> String? {
        guard let mount = mounts[controller] else { return nil }
        let dir = mount + "/" + parent
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).first { $0.hasPrefix("run-\(pid)-") }.map { dir + "/" + $0 }
    }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func procs(_ dir: String) -> [Int32] {
        (read(dir + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }
    }
}

/// Resource limits enforced on real runs on a cgroup v1 host: memory, pids, CPU quota, the
/// wall clock, the output cap, file size and open files; and no cgroup of a run is left behind,
/// whether otk ends normally or is SIGKILLed. (cgroup v2 is tested in a VM: CgroupV2VMTests.)
@Suite(.serialized, .enabled(if: V1Hierarchies.usable, "needs root and cgroup v1 memory, pids and cpu hierarchies (cgroup v2 is tested in a VM)"))
struct LimitsTests {
    /// One run of otk under a profile that extends strict with `limits`, with --json.
    struct Outcome {
        var status: Int32
        /// The command's stdout, without otk's result line.
        var stdout: String
        var stderr: String
        var doc: [String: Any]
        var otkPid: Int32
        var seconds: Double

        var resources: [String: Any] { doc["resources"] as? [String: Any] ?? [:] }
        var limit: String? { doc["limit"] as? String }
        func number(_ key: String) -> Double? { (resources[key] as? NSNumber)?.doubleValue }
        var report: String {
            "status \(status) after \(String(format: "%.2f", seconds)) s\n--- result\n\(doc)\n--- stderr (first 2000 bytes)\n\(stderr.prefix(2000))"
        }
    }

    /// Runs `command` under strict with `[limits]` `limits`, stopped with SIGKILL after `timeout`
    /// seconds; then checks that no cgroup of the run is left.
    func limited(_ limits: String, _ command: [String], runner: Runner = .invoking, options: [String] = [],
                 timeout: Double = 20, sourceLocation: SourceLocation = #_sourceLocation) throws -> Outcome {
        let profile = try DerivedProfile("[limits]\n" + limits, name: "limited")
        let argv = runner.prefix + [runner.otk, "sandbox", "run", "--json", "--profile", profile.path] + options + ["--"] + command
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        let pid = process.processIdentifier
        let timedOut = LockedFlag()
        let watchdog = DispatchWorkItem {
            timedOut.set()
            kill(pid, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let errData = LockedData()
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        while !errData.isSet { usleep(1000) }
        let seconds = Date().timeIntervalSince(start)
        #expect(!timedOut.isSet, "otk did not end within \(timeout) s", sourceLocation: sourceLocation)
        if timedOut.isSet { usleep(500_000) } // the launcher's monitor cleans up after a killed otk
        expectNoRunCgroups(of: pid, sourceLocation: sourceLocation)

        var lines = String(decoding: outData, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last == "" { lines.removeLast() }
        var doc: [String: Any] = [:]
        if let last = lines.last, last.hasPrefix("{"),
           let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] {
            doc = object
            lines.removeLast()
            // otk prints the result on a line of its own: the newline before it is otk's, not the command's.
            if lines.last == "" { lines.removeLast() }
        }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        let outcome = Outcome(status: status, stdout: lines.joined(separator: "\n"), stderr: String(decoding: errData.get(), as: UTF8.self),
                              doc: doc, otkPid: pid, seconds: seconds)
        #expect(!doc.isEmpty, "no --json result line: \(outcome.report)", sourceLocation: sourceLocation)
        #expect(doc["status"] as? Int == Int(status), "the result's status is otk's: \(outcome.report)", sourceLocation: sourceLocation)
        #expect(outcome.resources["cgroup"] as? String == "v1", "\(outcome.report)", sourceLocation: sourceLocation)
        return outcome
    }

    /// No `run-PID-*` directory of the otk process `pid` in any hierarchy. (Only this run's: other
    /// suites run otk with strict's cgroup limits at the same time.)
    func expectNoRunCgroups(of pid: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        let left = V1Hierarchies.runDirectories(of: pid)
        #expect(left.isEmpty, "cgroups of otk \(pid) left behind: \(left)", sourceLocation: sourceLocation)
    }

    // MARK: memory

    @Test("memory: a process past the limit is OOM-killed; status 137, limit \"memory\", oom_killed", arguments: Runner.available)
    func memoryHog(runner: Runner) throws {
        let r = try limited("memory = \"64M\"", ["/usr/bin/python3", "-c", "b = bytearray(300 << 20)"], runner: runner)
        #expect(r.status == 137, "\(r.report)")
        #expect(r.doc["signal"] as? Int == 9, "\(r.report)")
        #expect(r.limit == "memory", "\(r.report)")
        #expect(r.resources["oom_killed"] as? Bool == true, "\(r.report)")
        let peak = r.number("peak_memory_bytes") ?? 0
        #expect(peak > 32 * 1048576 && peak <= 64 * 1048576, "the cgroup's peak, at most the limit: \(r.report)")
        #expect(r.stderr.contains("memory limit"), "\(r.report)")
    }

    @Test("memory: a run that stays under the limit is not marked")
    func memoryUnderLimit() throws {
        let r = try limited("memory = \"64M\"", ["/usr/bin/python3", "-c", "b = bytearray(8 << 20); print(len(b))"])
        #expect(r.status == 0, "\(r.report)")
        #expect(r.stdout == "8388608", "\(r.report)")
        #expect(r.limit == nil, "\(r.report)")
        #expect(r.resources["oom_killed"] as? Bool == false, "\(r.report)")
        #expect((r.number("peak_memory_bytes") ?? 0) >= 8 * 1048576, "\(r.report)")
    }

    // MARK: pids

    @Test("pids: a fork bomb stops at the limit and the run ends by itself", arguments: Runner.available)
    func forkBomb(runner: Runner) throws {
        // The wall limit only bounds a broken run; the bomb must end long before it.
        let r = try limited("pids = 32\nwall = \"15s\"", ["/bin/sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 1; echo survived"],
                            runner: runner)
        #expect(r.limit != "wall" && r.status != 124, "the bomb did not end by itself: \(r.report)")
        #expect(r.seconds < 10, "\(r.report)")
        #expect((r.number("pids_limit_hits") ?? 0) > 0, "\(r.report)")
        let peak = try #require(r.number("peak_pids"), "\(r.report)")
        #expect(peak <= 32 && peak > 8, "\(r.report)")
        #expect(r.stdout.contains("survived"), "\(r.report)")
    }

    // MARK: cpu

    @Test("cpus: a spinner under a 0.2 CPU quota is throttled by the cgroup")
    func cpuQuota() throws {
        let spin = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1: pass\n"
        let r = try limited("cpus = 0.2", ["/usr/bin/python3", "-c", spin])
        #expect(r.status == 0, "\(r.report)")
        #expect(r.limit == nil, "\(r.report)")
        #expect((r.number("cpu_throttled_ms") ?? 0) > 0, "the cgroup's cpu.stat counts throttled time: \(r.report)")
        // 0.2 CPUs for about a second: far less CPU time than the second of spinning.
        let cpu = (r.number("user_cpu_ms") ?? 0) + (r.number("system_cpu_ms") ?? 0)
        #expect(cpu < 600, "\(r.report)")
    }

    // MARK: wall clock

    @Test("wall: at the limit the run ends with status 124 and limit \"wall\"")
    func wallClock() throws {
        let r = try limited("wall = \"1s\"\ngrace = \"1s\"", ["/bin/sleep", "30"])
        #expect(r.status == 124, "\(r.report)")
        #expect(r.limit == "wall", "\(r.report)")
        #expect(r.stderr.contains("wall-clock limit"), "\(r.report)")
        #expect(r.seconds >= 0.9 && r.seconds < 5, "\(r.report)")
    }

    @Test("wall: a setsid daemon that ignores SIGTERM is killed after the grace period, and stays dead after otk returns")
    func wallClockKillsDaemon() throws {
        let workspace = try TemporaryDirectory(owner: geteuid() == 0 ? 65534 : geteuid())
        let marker = workspace.path + "/marker"
        // Double-forked into a session of its own, ignoring SIGTERM; the command ignores it too
        // (and so do the sleeps it starts), so only the SIGKILL after the grace period ends them.
        // (`\$`: expanded by the daemon's shell, not by the command's while it builds the daemon's argument.)
        let daemon = "trap '' TERM; i=0; while :; do i=\\$((i+1)); echo \\$i > /workspace/marker.tmp; mv /workspace/marker.tmp /workspace/marker; sleep 0.1; done"
        let script = "trap '' TERM; (setsid sh -c \"\(daemon)\" &); while :; do sleep 0.1; done"
        let r = try limited("wall = \"1s\"\ngrace = \"1s\"", ["/bin/sh", "-c", script], options: ["--workspace", workspace.path])
        #expect(r.status == 124, "\(r.report)")
        #expect(r.limit == "wall", "\(r.report)")
        #expect(r.stderr.contains("wall-clock limit"), "\(r.report)")
        let wallMs = r.number("wall_ms") ?? 0
        #expect(wallMs >= 1900 && wallMs < 6000, "SIGTERM at 1 s is ignored; SIGKILL at 2 s: \(r.report)")
        let first = VerifyMarker.read(marker)
        #expect((Int(first ?? "") ?? 0) >= 5, "the daemon ran and wrote its marker: \(first ?? "nil")")
        usleep(600_000)
        #expect(VerifyMarker.read(marker) == first, "the daemon still writes after otk returned")
    }

    // MARK: output

    @Test("output: 1k of each stream is shown and logged, then a marker; the rest is counted as discarded")
    func outputCap() throws {
        let logs = try TemporaryDirectory()
        let script = "head -c 5000000 /dev/zero | tr '\\0' x; head -c 3000 /dev/zero | tr '\\0' y >&2"
        let r = try limited("output = \"1k\"", ["/bin/sh", "-c", script], options: ["--logs", logs.path])
        #expect(r.status == 0, "\(r.report)")
        let outMarker = "\n[otk: stdout truncated at 1k (limits.output); the rest is discarded]\n"
        let errMarker = "\n[otk: stderr truncated at 1k (limits.output); the rest is discarded]\n"
        let expectedOut = String(repeating: "x", count: 1024) + outMarker
        let expectedErr = String(repeating: "y", count: 1024) + errMarker
        // The command's stdout as otk relayed it, without the result line (and the newline before it, otk's).
        #expect(r.stdout + "\n" == expectedOut, "stdout: \(r.stdout.utf8.count) bytes: \(r.stdout.suffix(200))")
        #expect(r.stderr.hasPrefix(expectedErr), "stderr: \(r.stderr.utf8.count) bytes: \(r.stderr.prefix(1200))")
        #expect(r.stderr.utf8.count < 1024 + errMarker.utf8.count + 500, "\(r.stderr.utf8.count) bytes of stderr")
        #expect(VerifyMarker.read(logs.path + "/stdout.log", trimming: false) == expectedOut)
        #expect(VerifyMarker.read(logs.path + "/stderr.log", trimming: false) == expectedErr)

        let output = try #require(r.doc["output"] as? [[String: Any]], "\(r.report)")
        let byStream = Dictionary(uniqueKeysWithValues: output.compactMap { o in (o["stream"] as? String).map { ($0, o) } })
        #expect(byStream["stdout"]?["bytes"] as? Int == 1024)
        #expect(byStream["stdout"]?["discarded_bytes"] as? Int == 5_000_000 - 1024)
        #expect(byStream["stdout"]?["log"] as? String == logs.path + "/stdout.log")
        #expect(byStream["stderr"]?["bytes"] as? Int == 1024)
        #expect(byStream["stderr"]?["discarded_bytes"] as? Int == 3000 - 1024)
        #expect(byStream["stderr"]?["log"] as? String == logs.path + "/stderr.log")
    }

    // MARK: rlimits

    @Test("file_size: a write past 1M ends the writer with SIGXFSZ, limit \"file_size\"; under it is fine")
    func fileSize() throws {
        let r = try limited("file_size = \"1M\"", ["/bin/sh", "-c", "head -c 3000000 /dev/zero > /tmp/big"])
        #expect(r.status == 128 + SIGXFSZ, "\(r.report)")
        #expect(r.limit == "file_size", "\(r.report)")
        #expect(r.stderr.contains("file size limit"), "\(r.report)")

        let ok = try limited("file_size = \"1M\"", ["/bin/sh", "-c", "head -c 1048576 /dev/zero > /tmp/ok && wc -c < /tmp/ok"])
        #expect(ok.status == 0, "\(ok.report)")
        #expect(ok.stdout == "1048576", "\(ok.report)")
        #expect(ok.limit == nil, "\(ok.report)")
    }

    @Test("open_files: RLIMIT_NOFILE soft and hard, which the command cannot raise; no core dumps")
    func openFilesAndCore() throws {
        let script = "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc; (ulimit -n 128) 2>/dev/null && echo raised || echo refused"
        let r = try limited("open_files = 64", ["/bin/sh", "-c", script])
        #expect(r.status == 0, "\(r.report)")
        #expect(r.stdout.split(separator: "\n") == ["64", "64", "0", "0", "refused"], "\(r.report)")
    }

    // MARK: the cgroups themselves

    @Test("while the sandbox runs: its processes are in the run's cgroups, with the limits written as the kernel takes them")
    func liveCgroupFiles() throws {
        let profile = try DerivedProfile("[limits]\nmemory = \"64M\"\npids = 32\ncpus = 0.5", name: "live")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.otk)
        process.arguments = ["sandbox", "run", "--profile", profile.path, "--", "/bin/sleep", "30"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        defer {
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
        let pidsDir = try waitForSleep(otk: pid, parent: "otk")
        let sandbox = V1Hierarchies.procs(pidsDir)
        #expect(sandbox.count >= 2, "init and sleep: \(sandbox)")

        let memory = try #require(V1Hierarchies.runDirectory(of: pid, controller: "memory", parent: "otk"))
        #expect(V1Hierarchies.read(memory + "/memory.limit_in_bytes") == "67108864")
        if FileManager.default.fileExists(atPath: memory + "/memory.memsw.limit_in_bytes") {
            #expect(V1Hierarchies.read(memory + "/memory.memsw.limit_in_bytes") == "67108864", "memory+swap = memory: no swap")
        } else {
            #expect(V1Hierarchies.read(memory + "/memory.swappiness") == "0")
        }
        #expect(V1Hierarchies.read(pidsDir + "/pids.max") == "32")
        let cpu = try #require(V1Hierarchies.runDirectory(of: pid, controller: "cpu", parent: "otk"))
        #expect(V1Hierarchies.read(cpu + "/cpu.cfs_period_us") == "100000")
        #expect(V1Hierarchies.read(cpu + "/cpu.cfs_quota_us") == "50000")
        for dir in [memory, cpu] {
            #expect(Set(V1Hierarchies.procs(dir)) == Set(sandbox), "the same processes in every hierarchy: \(dir)")
        }
        // Nothing of otk itself (nor of its launcher's monitor) is limited.
        #expect(!sandbox.contains(pid))

        kill(pid, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 143)
        expectNoRunCgroups(of: pid)
        for p in sandbox { #expect(!isAlive(p), "process \(p) of the sandbox survived") }
    }

    @Test("otk SIGKILLed mid-run: the launcher's monitor removes the run's cgroups, and nothing of the sandbox is left",
          arguments: Runner.available)
    func otkKilled(runner: Runner) throws {
        let argv = runner.prefix + [runner.otk, "sandbox", "run", "--", "/bin/sleep", "30"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let pidsDir = try waitForSleep(otk: pid, parent: runner == .nobody ? "otk-65534" : "otk")
        let sandbox = V1Hierarchies.procs(pidsDir)
        #expect(!V1Hierarchies.runDirectories(of: pid).isEmpty)

        kill(pid, SIGKILL) // otk only, not its process group: the launcher and the sandbox live on until they notice
        process.waitUntilExit()
        let deadline = Date().addingTimeInterval(5)
        while !V1Hierarchies.runDirectories(of: pid).isEmpty && Date() < deadline { usleep(20_000) }
        expectNoRunCgroups(of: pid)
        let survivors = sandbox.filter(isAlive)
        #expect(survivors.isEmpty, "sleep 30 (or init) survived: \(survivors)")
        for p in survivors { kill(p, SIGKILL) }
    }

    /// Waits until the `sleep` of otk `otk`'s run is in its pids cgroup; returns that directory.
    func waitForSleep(otk pid: Int32, parent: String) throws -> String {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let dir = V1Hierarchies.runDirectory(of: pid, controller: "pids", parent: parent),
               V1Hierarchies.procs(dir).contains(where: { V1Hierarchies.read("/proc/\($0)/comm") == "sleep" }) {
                return dir
            }
            usleep(10_000)
        }
        Issue.record("no `sleep` in a pids cgroup of otk \(pid) within 10 s")
        throw POSIXError(.ETIMEDOUT)
    }
}

/// Reads a marker or log file as it is now.
enum VerifyMarker {
    static func read(_ path: String, trimming: Bool = true) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        return trimming ? text.trimmingCharacters(in: .whitespacesAndNewlines) : text
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }

    @Test("--logs refuses a FIFO planted as a log file at once, and leaves no cgroup behind")
    func logsRefuseAFIFO() throws {
        let dir = try TemporaryDirectory(prefix: "otk-it-fifologs-")
        #expect(mkfifo(dir.path + "/stdout.log", 0o666) == 0)
        let started = Date()
        let result = try run([Paths.otk, "sandbox", "run", "--logs", dir.path, "--", "echo", "hi"])
        #expect(Date().timeIntervalSince(started) < 10, "otk waited on the FIFO")
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("cannot use the log"), "\(result.stderr)")
    }
}
