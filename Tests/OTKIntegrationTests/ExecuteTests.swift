import Foundation
import Testing

/// `otk execute` end to end, with real toolchains, on the plans in Tests/Fixtures/plans: each
/// builds and runs a small program in the strict sandbox and the test checks what it printed.
/// Each test has its own output directory and its own dependency cache (OTK_CACHE_DIR).
@Suite(.serialized) struct ExecuteTests {
    /// A scratch directory for one test: outputs and caches below it, removed at the end.
    final class Scratch {
        let path: String
        init() throws {
            var template = Array(((NSTemporaryDirectory() as NSString).appendingPathComponent("otk-it-exec-XXXXXX")).utf8CString)
            guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
            path = String(cString: made)
            chmod(path, 0o755)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var cache: String { path + "/cache" }
        func entries(_ dir: String = "") -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: path + (dir.isEmpty ? "" : "/" + dir))) ?? []).sorted()
        }
    }

    struct Execution {
        var status: Int32
        var document: [String: Any]
        var stdout: String
        var stderr: String
        var phases: [[String: Any]] { document["phases"] as? [[String: Any]] ?? [] }
        func phase(_ name: String) -> [[String: Any]] { phases.filter { $0["name"] as? String == name } }
        var report: String { "status \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    }

    static func plan(_ name: String) -> String { Paths.repository + "/Tests/Fixtures/plans/\(name).json" }

    /// Runs `otk execute PLAN --json --output SCRATCH/OUT` (or `otk ARGS` when `command` is given).
    func execute(_ plan: String, _ scratch: Scratch, sandbox: String = "strict", output: String = "out",
                 extra: [String] = [], cache: String? = nil, command: [String]? = nil) throws -> Execution {
        var env = ProcessInfo.processInfo.environment
        env["OTK_CACHE_DIR"] = cache ?? scratch.cache
        let argv = ["/usr/bin/timeout", "-k", "5", "600", Paths.otk] +
            (command ?? ["execute", plan, "--json", "--sandbox", sandbox, "--output", scratch.path + "/" + output] + extra)
        let result = try run(argv, environment: env)
        let doc = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
        return Execution(status: result.status, document: doc, stdout: result.stdout, stderr: result.stderr)
    }

    /// The run phase's output: with --json the phases' stdout goes to stderr, so the lines are there.
    func expectRan(_ e: Execution, printing line: String, stack: String, variant: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(e.status == 0, "\(e.report)", sourceLocation: sourceLocation)
        #expect(e.document["stack"] as? String == stack, "\(e.report)", sourceLocation: sourceLocation)
        #expect(e.document["variant"] as? String == variant, "\(e.report)", sourceLocation: sourceLocation)
        #expect(e.stderr.split(separator: "\n").contains { $0 == line }, "expected the line `\(line)`\n\(e.report)", sourceLocation: sourceLocation)
        #expect(!e.phases.isEmpty && e.phases.allSatisfy { $0["status"] as? String == "ok" }, "\(e.report)", sourceLocation: sourceLocation)
        #expect(!e.phase("build").isEmpty, "the build phase must run: \(e.report)", sourceLocation: sourceLocation)
    }

    static var rootOnly: Bool { geteuid() == 0 }
    static func has(_ tool: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }

    @Test(.enabled(if: rootOnly)) func integrationHelloRunsUnchangedAndOtkRunRunsItAgain() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("integration-hello"), scratch)
        expectRan(e, printing: "Hello from integration test", stack: "python", variant: "venv")
        let project = scratch.path + "/out"
        #expect(e.document["project_dir"] as? String == project)
        #expect(FileManager.default.fileExists(atPath: project + "/run.sh"))
        #expect(FileManager.default.fileExists(atPath: project + "/.otk/plan.json"))
        // Every phase ran in the sandbox; the run command is the plan's own.
        #expect(e.document["run_cmd"] as? [String] == ["/bin/sh", "-c", "python hello.py"])
        let again = try execute("", scratch, command: ["run", project, "--json"])
        #expect(again.status == 0, "\(again.report)")
        #expect(again.stderr.contains("Hello from integration test"), "\(again.report)")
        #expect(again.phases.map { $0["name"] as? String } == ["run"], "\(again.report)")
    }

    @Test func myApiPlanIsAcceptedUnchanged() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("my-api"), scratch, extra: ["--dry-run"])
        #expect(e.status == 0, "\(e.report)")
        #expect(e.document["stack"] as? String == "python")
        #expect(e.document["variant"] as? String == "venv")
        #expect(scratch.entries().isEmpty, "a dry run writes nothing: \(scratch.entries())")
    }

    @Test(.enabled(if: rootOnly)) func pythonDependencyFromALoopbackIndexThenFromTheCacheAlone() throws {
        let scratch = try Scratch()
        let index = try PackageIndex()
        defer { index.stop() }
        let template = try String(contentsOfFile: Self.plan("python-greet"), encoding: .utf8)
        let planPath = scratch.path + "/python-greet.json"
        try template.replacingOccurrences(of: "127.0.0.1:PORT", with: "127.0.0.1:\(index.port)").write(toFile: planPath, atomically: true, encoding: .utf8)

        // Cold, through the egress proxy: the plan names the index, and only --allow-host lets it through.
        let cold = try execute(planPath, scratch, output: "cold", extra: ["--allow-host", "127.0.0.1:\(index.port)"])
        expectRan(cold, printing: "greetings, otk, from greetlib 0.1", stack: "python", variant: "venv")
        #expect(cold.phase("install").contains { ($0["argv"] as? [String])?.contains("wheel") == true }, "\(cold.report)")
        #expect(index.requests.contains { $0.contains("greetlib-0.1-py3-none-any.whl") }, "the wheel came from the loopback index: \(index.requests)")
        let coldConnections = cold.phase("install").flatMap { (($0["network"] as? [String: Any])?["connections"] as? [[String: Any]]) ?? [] }
        #expect(coldConnections.contains { $0["host"] as? String == "127.0.0.1" && $0["port"] as? Int == index.port && $0["decision"] as? String == "allowed" },
                "\(cold.report)")
        #expect(cold.phase("build").allSatisfy { $0["network"] == nil }, "build has no network: \(cold.report)")

        // The same index not allowed: the install phase fails, and the refusal says who and why.
        let served = index.requests.count
        let refused = try execute(planPath, scratch, output: "refused", cache: scratch.path + "/refused-cache")
        #expect(refused.status == 1, "\(refused.report)")
        #expect(index.requests.count == served, "the index was reached without being allowed: \(index.requests)")
        let refusals = refused.phase("install").flatMap { (($0["network"] as? [String: Any])?["connections"] as? [[String: Any]]) ?? [] }
            .filter { $0["decision"] as? String == "refused" }
        #expect(refusals.contains { $0["host"] as? String == "127.0.0.1" && $0["port"] as? Int == index.port
                    && ($0["reason"] as? String ?? "").contains("not in the allowlist") }, "\(refused.report)")
        #expect(refused.stderr.contains("network: refused GET 127.0.0.1:\(index.port)"), "\(refused.report)")

        // Warm, with no network in any phase: the cache alone is enough.
        let offline = try DerivedProfile("[network]\ninstall = \"none\"", name: "offline")
        let warm = try execute(planPath, scratch, sandbox: offline.path, output: "warm")
        expectRan(warm, printing: "greetings, otk, from greetlib 0.1", stack: "python", variant: "venv")
        #expect(!warm.phase("install").contains { ($0["argv"] as? [String])?.contains("wheel") == true }, "\(warm.report)")
        #expect((warm.document["notes"] as? [String] ?? []).contains { $0.contains("cache only") }, "\(warm.report)")
        #expect(index.requests.count == served, "the offline run reached the index: \(index.requests)")

        // No network and an empty cache: the install phase fails, says why, and nothing after it runs.
        let empty = try execute(planPath, scratch, sandbox: offline.path, output: "empty", cache: scratch.path + "/empty-cache")
        #expect(empty.status == 1, "\(empty.report)")
        #expect(empty.phases.first { $0["status"] as? String == "failed" }?["name"] as? String == "install", "\(empty.report)")
        #expect(empty.phase("run").allSatisfy { $0["status"] as? String == "not run" }, "\(empty.report)")
        #expect(empty.stderr.contains("greetlib"), "\(empty.report)")
    }

    @Test(.enabled(if: rootOnly && has("npm"))) func nodeWithALocalPackage() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("node-local"), scratch)
        expectRan(e, printing: "hello node from a local package", stack: "node", variant: "npm")
        #expect(e.phase("install").first?["argv"] as? [String] == ["npm", "install"], "\(e.report)")
    }

    @Test(.enabled(if: rootOnly && has("go"))) func goModuleWithAHelperScriptIsGo() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("go-hello"), scratch)
        expectRan(e, printing: "hello from go, 42", stack: "go", variant: "modules")
        #expect(FileManager.default.isExecutableFile(atPath: scratch.path + "/out/bin/go-hello"))
    }

    @Test(.enabled(if: rootOnly && has("cargo"))) func rustCrate() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("rust-hello"), scratch)
        expectRan(e, printing: "hello from rust, 42", stack: "rust", variant: "cargo")
        #expect(FileManager.default.isExecutableFile(atPath: scratch.path + "/out/target/release/rusthello"))
    }

    @Test(.enabled(if: rootOnly && has("javac"))) func javaWithJavac() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("java-javac"), scratch)
        expectRan(e, printing: "hello from java, 42", stack: "java", variant: "javac")
        #expect(e.document["run_cmd"] as? [String] == ["java", "-cp", "build/classes", "com.example.Main"])
    }

    @Test(.enabled(if: rootOnly && has("g++"))) func cppWithPlainGpp() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("cpp-gpp"), scratch)
        expectRan(e, printing: "hello from g++, 42", stack: "cpp", variant: "gpp")
        let compile = e.phase("build").compactMap { $0["argv"] as? [String] }.first { $0.first == "g++" } ?? []
        #expect(compile.suffix(3) == ["answer.cc", "main.cpp", "who.cxx"], "all of .cpp .cc .cxx: \(compile)")
    }

    @Test(.enabled(if: rootOnly && has("cmake"))) func cppWithCMake() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("cpp-cmake"), scratch)
        expectRan(e, printing: "hello from cmake, 42", stack: "cpp", variant: "cmake")
    }

    @Test(.enabled(if: rootOnly && has("make") && has("g++"))) func cppWithMake() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("cpp-make"), scratch)
        expectRan(e, printing: "hello from make", stack: "cpp", variant: "make")
    }

    /// A toolchain the variant needs and the host lacks: refused before anything is written, naming it and the install hint.
    @Test(.enabled(if: !FileManager.default.isExecutableFile(atPath: "/usr/bin/uv") && !FileManager.default.isExecutableFile(atPath: "/bin/uv"))) func aMissingToolchainIsNamedWithItsHint() throws {
        let scratch = try Scratch()
        let planPath = scratch.path + "/plan.json"
        try #"{"name": "x", "stack": "python", "files": [{"filename": "uv.lock", "code": ""}, {"filename": "main.py", "code": ""}]}"#
            .write(toFile: planPath, atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = "/usr/bin:/bin"
        env["OTK_CACHE_DIR"] = scratch.cache
        let result = try run([Paths.otk, "execute", planPath, "--output", scratch.path + "/out"], environment: env)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("`uv`") && result.stderr.contains("pipx install uv"), "\(result.stderr)")
        #expect(scratch.entries() == ["plan.json"], "wrote \(scratch.entries())")
    }

    @Test(.enabled(if: rootOnly && has("g++"))) func aFailingBuildStopsThePipeline() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("cpp-broken"), scratch)
        #expect(e.status == 1, "\(e.report)")
        let build = e.phase("build")
        #expect(build.contains { $0["status"] as? String == "failed" }, "\(e.report)")
        #expect(e.phase("run").first?["status"] as? String == "not run", "\(e.report)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/out/build/cpp-broken"))
    }

    /// A profile extending strict with `limits`, written into the scratch directory.
    func tightProfile(_ scratch: Scratch, _ limits: String) throws -> String {
        let path = scratch.path + "/tight.toml"
        try "schema = 1\nextends = \"\(Paths.repository)/profiles/strict.toml\"\n[limits]\n\(limits)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(.enabled(if: rootOnly && has("g++"))) func aPhaseKilledByTheMemoryLimitExits137() throws {
        let scratch = try Scratch()
        let e = try execute(Self.plan("cpp-hog"), scratch, sandbox: try tightProfile(scratch, "memory = \"128M\""))
        #expect(e.status == 137, "\(e.report)")
        #expect(e.phase("run").first?["limit_hit"] as? String == "memory", "\(e.report)")
        #expect(e.phase("build").allSatisfy { $0["status"] as? String == "ok" }, "\(e.report)")
    }

    @Test(.enabled(if: rootOnly)) func aPhasePastItsWallClockLimitExits124() throws {
        let scratch = try Scratch()
        let planPath = scratch.path + "/plan.json"
        try #"{"name": "sleeper", "stack": "cpp", "build": "true", "run": "sleep 60", "files": [{"filename": "main.cpp", "code": ""}]}"#
            .write(toFile: planPath, atomically: true, encoding: .utf8)
        let e = try execute(planPath, scratch, sandbox: try tightProfile(scratch, "wall = \"2s\"\ngrace = \"1s\""))
        #expect(e.status == 124, "\(e.report)")
        #expect(e.phase("run").first?["limit_hit"] as? String == "wall", "\(e.report)")
        #expect((e.phase("run").first?["duration"] as? Double ?? 99) < 20, "\(e.report)")
    }

    @Test func aNonEmptyOutputIsNeverReused() throws {
        let scratch = try Scratch()
        // An existing directory, and an existing symlink pointing elsewhere: both are skipped, never written through.
        try FileManager.default.createDirectory(atPath: scratch.path + "/out", withIntermediateDirectories: true)
        try "keep".write(toFile: scratch.path + "/out/mine.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: scratch.path + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/out-2", withDestinationPath: scratch.path + "/elsewhere")
        let e = try execute(Self.plan("integration-hello"), scratch, sandbox: "off")
        #expect(e.status == 0, "\(e.report)")
        #expect(e.document["project_dir"] as? String == scratch.path + "/out-3", "\(e.report)")
        #expect(scratch.entries("out") == ["mine.txt"])
        #expect(scratch.entries("elsewhere").isEmpty)
    }

    /// Each class of bad plan is refused with exit 2 and the JSON path, and writes nothing at all.
    @Test(arguments: [
        ("traversal", #"{"name": "x", "files": [{"filename": "a/../../etc/passwd", "code": ""}], "run": "true"}"#, "files[0].filename"),
        ("absolute", #"{"name": "x", "files": [{"filename": "/etc/cron.d/x", "code": ""}], "run": "true"}"#, "files[0].filename"),
        ("a file below a file", #"{"name": "x", "files": [{"filename": "a", "code": ""}, {"filename": "a/b", "code": ""}], "run": "true"}"#, "files[1].filename"),
        ("reserved .otk", #"{"name": "x", "files": [{"filename": ".otk/plan.json", "code": "{}"}], "run": "true"}"#, "files[0].filename"),
        ("unknown key", #"{"name": "x", "files": [], "run": "true", "runn": "x"}"#, "runn"),
        ("wrong type", #"{"name": "x", "files": [{"filename": "a.py", "code": 42}], "run": "true"}"#, "files[0].code"),
        ("duplicate file", #"{"name": "x", "files": [{"filename": "a.py", "code": ""}, {"filename": "a.py", "code": ""}], "run": "true"}"#, "files[1].filename"),
    ])
    func badPlansWriteNothing(_ bad: (String, String, String)) throws {
        let scratch = try Scratch()
        let planPath = scratch.path + "/plan.json"
        try bad.1.write(toFile: planPath, atomically: true, encoding: .utf8)
        let e = try execute(planPath, scratch)
        #expect(e.status == 2, "\(bad.0): \(e.report)")
        #expect(e.stderr.contains(bad.2), "\(bad.0): the error names the path \(bad.2): \(e.report)")
        #expect(scratch.entries() == ["plan.json"], "\(bad.0): wrote \(scratch.entries())")
    }

    @Test func anOversizedPlanIsRefusedBeforeItIsParsed() throws {
        let scratch = try Scratch()
        let profile = scratch.path + "/small.toml"
        try "schema = 1\nextends = \"\(Paths.repository)/profiles/strict.toml\"\n[plan]\nmax_file_size = \"1k\"\nmax_files = 2\n"
            .write(toFile: profile, atomically: true, encoding: .utf8)
        let big = String(repeating: "x", count: 2000)
        for (label, json, path) in [
            ("file size", #"{"name": "x", "files": [{"filename": "a.py", "code": "\#(big)"}], "run": "true"}"#, "files[0].code"),
            ("file count", #"{"name": "x", "files": [{"filename": "a.py", "code": ""}, {"filename": "b.py", "code": ""}, {"filename": "c.py", "code": ""}], "run": "true"}"#, "files"),
        ] {
            let planPath = scratch.path + "/plan.json"
            try json.write(toFile: planPath, atomically: true, encoding: .utf8)
            let e = try execute(planPath, scratch, sandbox: profile)
            #expect(e.status == 2, "\(label): \(e.report)")
            #expect(e.stderr.contains(path), "\(label): \(e.report)")
            #expect(scratch.entries() == ["plan.json", "small.toml"], "\(label): wrote \(scratch.entries())")
        }
    }
}

/// Tests/Fixtures/package_index.py running: a package index on loopback with greetlib 0.1.
final class PackageIndex {
    let process = Process()
    let input = Pipe()
    let errors = Pipe()
    let port: Int
    private let log = LockedData()
    private let reader: Thread

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.repository + "/Tests/Fixtures/package_index.py"]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = input
        process.standardError = errors
        try process.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line += byte
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else { throw CocoaError(.fileReadCorruptFile) }
        self.port = port
        let handle = errors.fileHandleForReading, log = self.log
        reader = Thread {
            var all = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                all += chunk
                log.set(all)
            }
        }
        reader.start()
    }

    var requests: [String] { String(decoding: log.get(), as: UTF8.self).split(separator: "\n").map(String.init) }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
