import Foundation
@testable import OTKConfig
import OTKModel
import Testing

/// The repository's shipped stacks/ directory.
private let shippedStacksDir: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()   // OTKConfigTests
    .deletingLastPathComponent()   // Tests
    .deletingLastPathComponent()   // repo root
    .appendingPathComponent("stacks").path

/// Writes `text` as `NAME.toml` in a fresh directory and loads it.
private func loadStack(_ text: String, name: String = "s") throws -> Stack {
    let dir = try FixtureDir()
    let file = try dir.write(name + ".toml", text)
    return try StackLoader.load(file: file, name: name)
}

/// Loads `text` as `NAME.toml`, expecting a bad-input error located in that file, at `line` when given.
@discardableResult
private func stackError(_ text: String, name: String = "s", line: Int?, contains: [String] = [],
                        sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> OTKError? {
    let dir = try FixtureDir()
    let file = try dir.write(name + ".toml", text)
    let error = #expect(throws: OTKError.self, sourceLocation: sourceLocation) {
        _ = try StackLoader.load(file: file, name: name)
    }
    guard let error else { return nil }
    #expect(error.kind == .badInput, sourceLocation: sourceLocation)
    #expect(error.location?.file == file, "location: \(String(describing: error.location))", sourceLocation: sourceLocation)
    if let line {
        #expect(error.location?.line == line, "message: \(error.message)", sourceLocation: sourceLocation)
    }
    for text in contains {
        #expect(error.message.contains(text), "message: \(error.message)", sourceLocation: sourceLocation)
    }
    return error
}

/// A valid stack, to be broken one line at a time.
private let validStack = """
schema = 1
description = "test"
markers = [{ files = ["x.mark"], weight = 10 }]

[tools]
tool = "install tool"

[caches.c]
env = ["C_DIR"]

[variants.a]
default = true
tools = ["tool"]
caches = ["c"]
install = [
  { argv = ["tool", "install", "{cache:c}/x"] },
]
"""

@Suite("Stack definitions (StackLoader)")
struct StackLoaderTests {
    // MARK: The shipped stacks

    @Test func everyShippedStackLoads() throws {
        let loader = StackLoader(searchPath: [shippedStacksDir])
        let names = loader.list().map(\.name)
        #expect(names == ["cpp", "go", "java", "node", "python", "rust"])
        let stacks = try loader.loadAll()
        #expect(stacks.map(\.name) == names)
        for stack in stacks {
            #expect(stack.source == shippedStacksDir + "/" + stack.name + ".toml")
            #expect(!stack.description.isEmpty, "\(stack.name)")
            #expect(!stack.markers.isEmpty, "\(stack.name)")
            #expect(stack.variants.filter(\.isDefault).count == 1, "\(stack.name)")
            for variant in stack.variants {
                #expect(!variant.description.isEmpty, "\(stack.name)/\(variant.name)")
                for tool in variant.tools { #expect(stack.toolHints[tool] != nil, "\(stack.name)/\(variant.name): \(tool)") }
                for cache in variant.caches { #expect(stack.caches.contains { $0.name == cache }, "\(stack.name)/\(variant.name): \(cache)") }
            }
        }
    }

    @Test(arguments: ["cpp", "go", "java", "node", "python", "rust"])
    func eachShippedStackLoadsOnItsOwn(name: String) throws {
        let stack = try StackLoader.load(file: shippedStacksDir + "/\(name).toml", name: name)
        #expect(stack.name == name)
    }

    @Test func pythonIsDecodedAsWritten() throws {
        let python = try StackLoader.load(file: shippedStacksDir + "/python.toml", name: "python")
        #expect(python.variants.map(\.name) == ["pdm", "poetry", "uv", "venv"])
        #expect(python.markers == [
            StackMarker(files: ["requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile"], weight: 60),
            StackMarker(globs: ["*.py"], weight: 10),
        ])
        #expect(python.caches.map(\.name) == ["pdm", "pip", "poetry", "uv"])
        #expect(python.caches.first { $0.name == "pip" }?.env == ["PIP_CACHE_DIR"])
        #expect(python.settings(.install).network)
        #expect(!python.settings(.build).network)
        #expect(python.settings(.postInstall) == python.settings(.build))
        let venv = try #require(python.variant(named: "venv"))
        #expect(venv.isDefault)
        #expect(venv.tools == ["python3"])
        #expect(venv.path == ["{workspace}/.venv/bin"])
        #expect(venv.env["VIRTUAL_ENV"] == "{workspace}/.venv")
        #expect(venv.install.count == 5)
        #expect(venv.install[1].ifFiles == ["requirements.txt"])
        #expect(venv.install[1].ifNetwork == true)
        #expect(venv.install[2].ifDependencies == true)
        #expect(venv.install[2].argv.last == "{dependencies}")
        #expect(venv.install[3].ifNetwork == nil)
        #expect(venv.build == [StackStep(argv: ["python3", "-m", "compileall", "-q", "-x", "(^|/)\\.venv/", "."])])
        #expect(venv.run.map(\.ifFiles) == [["main.py"], ["app.py"]])
        #expect(venv.steps(.postInstall).isEmpty)
        #expect(venv.steps(.install) == venv.install)
    }

    @Test func nodeNpmStepsHaveTheirConditions() throws {
        let node = try StackLoader.load(file: shippedStacksDir + "/node.toml", name: "node")
        let npm = try #require(node.variant(named: "npm"))
        #expect(npm.install == [
            StackStep(argv: ["npm", "ci"], ifFiles: ["package-lock.json"]),
            StackStep(argv: ["npm", "install"], ifFiles: ["package.json"], unlessFiles: ["package-lock.json"]),
        ])
        #expect(npm.env.count == 4)
    }

    @Test func cppSourcesAndVariants() throws {
        let cpp = try StackLoader.load(file: shippedStacksDir + "/cpp.toml", name: "cpp")
        let gpp = try #require(cpp.variant(named: "gpp"))
        #expect(gpp.sources == ["*.cpp", "*.cc", "*.cxx"])
        #expect(gpp.build[1].argv.last == "{sources}")
        #expect(cpp.toolHints["g++"] != nil)
        #expect(cpp.phases.isEmpty)
    }

    @Test func validBaseStackLoads() throws {
        let s = try loadStack(validStack)
        #expect(s.name == "s")
        #expect(s.description == "test")
        #expect(s.toolHints == ["tool": "install tool"])
        #expect(s.caches == [StackCache(name: "c", env: ["C_DIR"])])
        #expect(s.variants.count == 1)
        #expect(s.variants[0].install == [StackStep(argv: ["tool", "install", "{cache:c}/x"])])
        #expect(s.phases.isEmpty)
        #expect(s.settings(.install) == StackPhaseSettings())
    }

    @Test func phasesDecode() throws {
        let s = try loadStack(validStack + "\n[phases.install]\nnetwork = true\nwall = \"5m\"\n[phases.run]\nwall = 30\n")
        #expect(s.settings(.install) == StackPhaseSettings(network: true, wallSeconds: 300))
        #expect(s.settings(.run) == StackPhaseSettings(network: false, wallSeconds: 30))
        #expect(s.settings(.build) == StackPhaseSettings())
    }

    @Test func readOnlyPathsDecode() throws {
        let java = try StackLoader.load(file: shippedStacksDir + "/java.toml", name: "java")
        #expect(java.variant(named: "javac")?.readOnly == ["/etc/java-*"])
        #expect(java.variant(named: "maven")?.readOnly == ["/etc/java-*", "/etc/maven"])
        let s = try loadStack(validStack + "\nread_only = [\"/etc/x-?\", \"/opt/a/b*\", \"/etc/plain\"]\n")
        #expect(s.variants[0].readOnly == ["/etc/x-?", "/opt/a/b*", "/etc/plain"])
    }

    @Test(arguments: ["etc/java", "/", "/etc/../root", "/etc/./x", "/etc//x", "/etc/x/", "/e*/x", "/etc/?/x"])
    func readOnlyPathMustBeClean(path: String) throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        read_only = [
          "/etc/fine",
          "\(path)",
        ]
        """, line: 7, contains: ["variants.a.read_only", "not a clean absolute path"])
    }

    // MARK: Errors with file and line

    @Test func unknownTopLevelKey() throws {
        try stackError("""
        schema = 1
        description = "test"
        markers = [{ files = ["x.mark"], weight = 10 }]
        detect = true

        [variants.a]
        default = true
        """, line: 4, contains: ["detect", "unknown key"])
    }

    @Test func unknownKeyInAVariant() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        instal = [{ argv = ["x"] }]
        """, line: 6, contains: ["variants.a.instal", "unknown key"])
    }

    @Test func unknownKeyInAStep() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        description = "a"
        build = [
          { argv = ["make"], if_file = ["Makefile"] },
        ]
        """, line: 7, contains: ["variants.a.build", "unknown key `if_file` in a step", "if_files"])
    }

    @Test func unknownPlaceholderInAnArgvElement() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        build = [
          { argv = ["make"] },
          { argv = ["make", "PREFIX={workspce}/out"] },
        ]
        """, line: 8, contains: ["unknown placeholder `{workspce}`", "workspace"])
    }

    @Test func unknownPlaceholderInEnv() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        env = { GOOD = "{workspace}/x", BAD = "{home}/x" }
        """, line: 6, contains: ["variants.a.env.BAD", "{home}"])
    }

    @Test func unknownPlaceholderInPath() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        path = [
          "{workspace}/bin",
          "{prefix}/bin",
        ]
        """, line: 8, contains: ["variants.a.path", "{prefix}"])
    }

    @Test(arguments: ["-c{sources}", "{sources}.o", "{dependencies}x", "--deps={dependencies}"])
    func splattingPlaceholderMustBeAWholeElement(element: String) throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        sources = ["*.c"]
        build = [
          { argv = ["cc", "\(element)"] },
        ]
        """, line: 8, contains: ["stands for several arguments", "whole argv element"])
    }

    @Test func splattingPlaceholderIsRefusedInEnvAndPath() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        env = { SRC = "{sources}" }
        """, line: 6, contains: ["whole argv element"])
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        path = ["{dependencies}"]
        """, line: 6, contains: ["whole argv element"])
    }

    @Test func wholeSplattingPlaceholdersAreAccepted() throws {
        let s = try loadStack("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true
        sources = ["*.c"]
        build = [{ argv = ["cc", "-o", "out/{name}", "{sources}"] }]
        install = [{ argv = ["pip", "install", "{dependencies}"], if_dependencies = true }]
        run = [{ argv = ["java", "{java_main}"] }]
        """)
        #expect(s.variants[0].build[0].argv.last == "{sources}")
        #expect(s.variants[0].install[0].ifDependencies == true)
    }

    @Test func toolWithoutHint() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [tools]
        make = "apt-get install make"

        [variants.a]
        default = true
        tools = [
          "make",
          "cmake",
        ]
        """, line: 11, contains: ["variants.a.tools", "`cmake` has no install hint in [tools]"])
    }

    @Test func toolWithASlash() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [tools]
        "/usr/bin/make" = "x"
        [variants.a]
        default = true
        tools = ["/usr/bin/make"]
        """, line: 7, contains: ["not a program name"])
    }

    @Test func emptyToolHint() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [tools]
        make = ""
        [variants.a]
        default = true
        """, line: 4, contains: ["tools.make", "install hint"])
    }

    @Test func variantUsingAnUndeclaredCache() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [caches.pip]
        env = ["PIP_CACHE_DIR"]

        [variants.a]
        default = true
        caches = ["pip",
                  "npm"]
        """, line: 10, contains: ["variants.a.caches", "no cache `npm` in [caches]"])
    }

    @Test func cachePlaceholderOfACacheTheVariantDoesNotUse() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [caches.pip]
        env = []

        [variants.a]
        default = true
        install = [
          { argv = ["pip", "--cache-dir={cache:pip}"] },
        ]
        """, line: 10, contains: ["{cache:pip}", "does not use cache `pip`"])
    }

    @Test func badCacheDefinitions() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [caches.pip]
        env = ["NOT-A-NAME"]
        [variants.a]
        default = true
        """, line: 4, contains: ["caches.pip.env", "NOT-A-NAME"])
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [caches.pip]
        dir = "x"
        [variants.a]
        default = true
        """, line: 4, contains: ["caches.pip.dir", "unknown key"])
    }

    @Test func noDefaultVariant() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        description = "a"

        [variants.b]
        default = false
        """, line: 4, contains: ["exactly one variant", "found none"])
    }

    @Test func twoDefaultVariants() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]

        [variants.a]
        default = true

        [variants.b]
        default = true
        """, line: 8, contains: ["exactly one variant", "a, b"])
    }

    @Test func badSchema() throws {
        try stackError("""
        # A stack for the future
        schema = 2
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        """, line: 2, contains: ["schema 2 is not supported"])
    }

    @Test func missingSchema() throws {
        try stackError("""
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        """, line: 1, contains: ["missing `schema = 1`"])
    }

    @Test func schemaOfTheWrongType() throws {
        try stackError("""
        description = "x"
        schema = "1"
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        """, line: 2, contains: ["schema", "integer"])
    }

    @Test func markerWithoutWeight() throws {
        try stackError("""
        schema = 1
        description = "m"
        markers = [
          { files = ["x.mark"], weight = 10 },
          { globs = ["*.x"] },
        ]
        [variants.a]
        default = true
        """, line: 3, contains: ["markers", "every marker needs `weight`"])
    }

    @Test(arguments: ["0", "1001", "-5", "\"10\"", "1.5"])
    func markerWeightOutOfRange(weight: String) throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = \(weight) }]
        [variants.a]
        default = true
        """, line: 2, contains: ["weight", "1 to 1000"])
    }

    @Test func variantMarkerWithoutWeight() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        markers = [{ files = ["a.lock"] }]
        """, line: 5, contains: ["variants.a.markers", "weight"])
    }

    @Test func markerProblems() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10, glob = ["*.x"] }]
        [variants.a]
        default = true
        """, line: 2, contains: ["unknown key `glob` in a marker"])
        try stackError("""
        schema = 1
        markers = [{ weight = 10 }]
        [variants.a]
        default = true
        """, line: 2, contains: ["needs `files` or `globs`"])
        try stackError("""
        schema = 1
        markers = ["go.mod"]
        [variants.a]
        default = true
        """, line: 2, contains: ["array of tables"])
        try stackError("""
        schema = 1
        markers = [{ files = "go.mod", weight = 10 }]
        [variants.a]
        default = true
        """, line: 2, contains: ["`files` must be an array of strings"])
    }

    @Test func stackWithoutMarkers() throws {
        try stackError("""
        schema = 1
        description = "never detected"
        [variants.a]
        default = true
        """, line: nil, contains: ["at least one marker"])
    }

    @Test func stackWithoutVariants() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        """, line: nil, contains: ["at least one variant"])
    }

    @Test func stepProblems() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        build = [{ if_files = ["x"] }]
        """, line: 5, contains: ["non-empty `argv`"])
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        build = [{ argv = [""] }]
        """, line: 5, contains: ["non-empty `argv`"])
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        build = [{ argv = ["x"], if_network = "yes" }]
        """, line: 5, contains: ["`if_network`", "true or false"])
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        run = ["make run"]
        """, line: 5, contains: ["variants.a.run", "array of steps"])
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.a]
        default = true
        build = [{ argv = ["x"], unless_files = [1] }]
        """, line: 5, contains: ["`unless_files` must be an array of strings"])
    }

    @Test func unknownPhase() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [phases.test]
        network = true
        [variants.a]
        default = true
        """, line: 3, contains: ["phases.test", "unknown key"])
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [phases.install]
        network = true
        timeout = "5m"
        [variants.a]
        default = true
        """, line: 5, contains: ["phases.install.timeout"])
    }

    @Test(arguments: ["Bad", "under_score", "dot.name", ""])
    func badStackFileName(name: String) throws {
        let dir = try FixtureDir()
        let file = try dir.write("x.toml", validStack)
        let e = #expect(throws: OTKError.self) { _ = try StackLoader.load(file: file, name: name) }
        #expect(e?.message.contains("lowercase letters, digits and '-'") == true)
    }

    @Test func badVariantName() throws {
        try stackError("""
        schema = 1
        markers = [{ files = ["x.mark"], weight = 10 }]
        [variants.My_Variant]
        default = true
        """, line: 3, contains: ["variant name"])
    }

    @Test func tomlSyntaxErrorIsBadInput() throws {
        try stackError("schema = 1\nmarkers = [\n", line: nil)
    }

    // MARK: The search path

    @Test func loadAllFailsOnOneBrokenFile() throws {
        let dir = try FixtureDir()
        try dir.write("good.toml", validStack)
        let bad = try dir.write("zbad.toml", validStack.replacingOccurrences(of: "schema = 1", with: "schema = 3"))
        let e = #expect(throws: OTKError.self) { _ = try StackLoader(searchPath: [dir.path]).loadAll() }
        #expect(e?.location?.file == bad)
    }

    @Test func emptySearchPathIsAnError() throws {
        let dir = try FixtureDir()
        try dir.write("notes.txt", "not a stack")
        let e = #expect(throws: OTKError.self) { _ = try StackLoader(searchPath: [dir.path, dir.path + "/missing"]).loadAll() }
        #expect(e?.message.contains("no stack definitions found") == true)
        #expect(e?.remedy?.contains("OTK_STACK_PATH") == true)
    }

    @Test func firstDirectoryOfTheSearchPathWins() throws {
        let first = try FixtureDir(), second = try FixtureDir()
        try first.write("s.toml", validStack.replacingOccurrences(of: "description = \"test\"", with: "description = \"first\""))
        try second.write("s.toml", validStack.replacingOccurrences(of: "description = \"test\"", with: "description = \"second\""))
        try second.write("t.toml", validStack)
        let loader = StackLoader(searchPath: [first.path, second.path])
        #expect(loader.list().map(\.name) == ["s", "t"])
        #expect(loader.list().map(\.path) == [first.path + "/s.toml", second.path + "/t.toml"])
        let stacks = try loader.loadAll()
        #expect(stacks.map(\.description) == ["first", "test"])
    }

    @Test func defaultSearchPathHonoursOTKStackPath() {
        let path = StackLoader.defaultSearchPath(environment: ["OTK_STACK_PATH": "/a:/b"], executable: "/nonexistent/bin/otk")
        #expect(path.starts(with: ["/a", "/b"]))
    }
}
