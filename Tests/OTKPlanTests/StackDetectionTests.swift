import Foundation
import OTKConfig
import OTKModel
@testable import OTKPlan
import Testing

/// The repository's shipped stacks/ directory.
let shippedStacksDir: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()   // OTKPlanTests
    .deletingLastPathComponent()   // Tests
    .deletingLastPathComponent()   // repo root
    .appendingPathComponent("stacks").path

/// Every shipped stack, loaded once.
let shippedStacks: [Stack] = {
    do {
        return try StackLoader(searchPath: [shippedStacksDir]).loadAll()
    } catch {
        fatalError("cannot load \(shippedStacksDir): \(error)")
    }
}()

/// Detects over `files` with the shipped stacks.
func detect(_ files: [String], named: String? = nil) throws(OTKError) -> Detection {
    try StackDetector.detect(filenames: files, stacks: shippedStacks, named: named)
}

/// The error detection throws for `files`.
func detectionError(_ files: [String], named: String? = nil, stacks: [Stack] = shippedStacks,
                    sourceLocation: Testing.SourceLocation = #_sourceLocation) -> OTKError? {
    let error = #expect(throws: OTKError.self, sourceLocation: sourceLocation) {
        _ = try StackDetector.detect(filenames: files, stacks: stacks, named: named)
    }
    if let error { #expect(error.kind == .badInput, sourceLocation: sourceLocation) }
    return error
}

@Suite("Stack detection over the shipped stacks")
struct StackDetectionTests {
    func expectDetected(_ files: [String], _ stack: String, _ variant: String,
                        sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let d = try detect(files)
        #expect(d.stack.name == stack, "files \(files): \(d.summary)", sourceLocation: sourceLocation)
        #expect(d.variant.name == variant, "files \(files): \(d.summary)", sourceLocation: sourceLocation)
        #expect(!d.chosenByPlan, sourceLocation: sourceLocation)
    }

    @Test func theShippedStacksAreTheSixExpected() {
        #expect(shippedStacks.map(\.name) == ["cpp", "go", "java", "node", "python", "rust"])
    }

    // MARK: The earlier toolkit's mistake

    @Test func goModuleWithOneHelperPythonFileIsGo() throws {
        let d = try detect(["go.mod", "go.sum", "main.go", "internal/server/server.go", "scripts/gen.py"])
        #expect(d.stack.name == "go")
        #expect(d.variant.name == "modules")
        // python matched too, by its weak glob, and lost.
        #expect(d.scores.map(\.stack) == ["go", "python"])
        #expect(d.scores[0].score == 110)
        #expect(d.scores[0].evidence == ["go.mod", "*.go"])
        #expect(d.scores[1].score == 10)
        #expect(d.scores[1].evidence == ["*.py"])
        #expect(d.summary.hasPrefix("go/modules ("))
        #expect(d.summary.contains("python 10: *.py"))
    }

    @Test func goModWithoutGoFilesIsStillGo() throws {
        try expectDetected(["go.mod", "tool.py", "other.py"], "go", "modules")
    }

    @Test func manyPythonFilesCountOnce() throws {
        // Each marker counts once, however many files match: twenty .py files do not beat go.mod.
        let files = ["go.mod"] + (1...20).map { "tools/t\($0).py" }
        let d = try detect(files)
        #expect(d.stack.name == "go")
        #expect(d.scores.first { $0.stack == "python" }?.score == 10)
    }

    // MARK: The plan fixtures

    @Test(arguments: ["my-api.json", "integration-hello.json"])
    func planFixturesArePythonVenv(fixture: String) throws {
        let plan = try PlanParser.parse(try fixtureBytes(fixture), file: fixture)
        let d = try StackDetector.detect(filenames: plan.files.map(\.filename), stacks: shippedStacks, named: plan.stack)
        #expect(d.stack.name == "python")
        #expect(d.variant.name == "venv")
        #expect(!d.chosenByPlan)
    }

    @Test(arguments: [
        ("go-hello.json", "go", "modules"),
        ("python-greet.json", "python", "venv"),
        ("node-local.json", "node", "npm"),
        ("rust-hello.json", "rust", "cargo"),
        ("java-javac.json", "java", "javac"),
        ("cpp-gpp.json", "cpp", "gpp"),
        ("cpp-cmake.json", "cpp", "cmake"),
    ])
    func executeFixturesDetectAsExpected(fixture: String, stack: String, variant: String) throws {
        let plan = try PlanParser.parse(try fixtureBytes(fixture), file: fixture)
        let d = try StackDetector.detect(filenames: plan.files.map(\.filename), stacks: shippedStacks, named: plan.stack)
        #expect(d.stack.name == stack)
        #expect(d.variant.name == variant)
    }

    @Test func myAPIScoresRequirementsAndPy() throws {
        let d = try detect(["app.py", "requirements.txt"])
        #expect(d.scores == [Detection.Score(stack: "python", score: 70, evidence: ["requirements.txt", "*.py"])])
    }

    // MARK: Node

    @Test func packageJSONWithLockIsNpm() throws {
        try expectDetected(["package.json", "package-lock.json", "index.js"], "node", "npm")
    }

    @Test func packageJSONAloneIsNpmTheDefault() throws {
        try expectDetected(["package.json"], "node", "npm")
    }

    @Test func yarnLockIsYarn() throws {
        try expectDetected(["package.json", "yarn.lock", "src/index.js"], "node", "yarn")
    }

    @Test func pnpmLockIsPnpm() throws {
        try expectDetected(["package.json", "pnpm-lock.yaml", "index.mjs"], "node", "pnpm")
    }

    @Test func yarnLockBeatsPackageLock() throws {
        // yarn.lock weighs 30, package-lock.json 10.
        try expectDetected(["package.json", "package-lock.json", "yarn.lock"], "node", "yarn")
    }

    // MARK: Python

    @Test(arguments: [("uv.lock", "uv"), ("poetry.lock", "poetry"), ("pdm.lock", "pdm")])
    func pythonLockFilesChooseTheirVariant(lock: String, variant: String) throws {
        try expectDetected(["pyproject.toml", lock, "src/pkg/__init__.py", "main.py"], "python", variant)
    }

    @Test func requirementsTxtIsVenv() throws {
        try expectDetected(["requirements.txt", "main.py"], "python", "venv")
    }

    @Test func pyprojectAloneIsVenvTheDefault() throws {
        try expectDetected(["pyproject.toml"], "python", "venv")
    }

    @Test func lonePythonFileIsVenv() throws {
        try expectDetected(["hello.py"], "python", "venv")
    }

    // MARK: Rust, Java, C++

    @Test func cargoTomlIsRustCargo() throws {
        try expectDetected(["Cargo.toml", "src/main.rs"], "rust", "cargo")
        try expectDetected(["Cargo.toml"], "rust", "cargo")
    }

    @Test func pomIsMaven() throws {
        try expectDetected(["pom.xml", "src/main/java/com/example/App.java"], "java", "maven")
    }

    @Test(arguments: ["build.gradle", "build.gradle.kts"])
    func gradleBuildFileIsGradle(file: String) throws {
        try expectDetected([file, "src/main/java/App.java"], "java", "gradle")
        try expectDetected([file], "java", "gradle")
    }

    @Test func settingsGradleIsGradle() throws {
        try expectDetected(["settings.gradle.kts", "app/build.gradle.kts"], "java", "gradle")
    }

    @Test func loneJavaFilesAreJavac() throws {
        try expectDetected(["Main.java"], "java", "javac")
        try expectDetected(["src/Main.java", "src/util/Helper.java"], "java", "javac")
    }

    @Test func cmakeListsIsCMake() throws {
        try expectDetected(["CMakeLists.txt", "src/main.cpp", "include/x.hpp"], "cpp", "cmake")
        try expectDetected(["CMakeLists.txt"], "cpp", "cmake")
    }

    @Test func cmakeListsBeatsMakefile() throws {
        try expectDetected(["CMakeLists.txt", "Makefile", "main.cpp"], "cpp", "cmake")
    }

    @Test(arguments: ["Makefile", "makefile", "GNUmakefile"])
    func makefileWithCppIsMake(makefile: String) throws {
        try expectDetected([makefile, "main.cpp"], "cpp", "make")
    }

    @Test(arguments: ["main.cpp", "main.cc", "main.cxx"])
    func cppSourcesAloneAreGpp(file: String) throws {
        try expectDetected([file], "cpp", "gpp")
        try expectDetected([file, "util.hpp"], "cpp", "gpp")
    }

    // MARK: Paths and globs

    @Test func markerFilesMatchOnlyAtTheRoot() throws {
        // `files` are paths from the root: a go.mod in a subdirectory is not the module's.
        let d = try detect(["tools/go.mod", "main.py"])
        #expect(d.stack.name == "python")
        #expect(!d.scores.contains { $0.stack == "go" })
    }

    @Test func markerGlobsMatchBaseNamesAnywhere() throws {
        let d = try detect(["a/b/c/deep.rs"])
        #expect(d.stack.name == "rust")
        #expect(d.scores == [Detection.Score(stack: "rust", score: 10, evidence: ["*.rs"])])
    }

    @Test func variantMarkerFilesMatchOnlyAtTheRoot() throws {
        // A yarn.lock in a subdirectory does not make the project a yarn project.
        try expectDetected(["package.json", "web/yarn.lock"], "node", "npm")
    }

    // MARK: The plan's `stack`

    @Test func planStackOverridesDetection() throws {
        let d = try detect(["go.mod", "main.go"], named: "python")
        #expect(d.stack.name == "python")
        #expect(d.variant.name == "venv")
        #expect(d.chosenByPlan)
        #expect(d.summary == "python/venv (named by the plan's `stack`)")
        // The scores are still reported.
        #expect(d.scores.first?.stack == "go")
    }

    @Test func planStackStillPicksTheVariantByMarkers() throws {
        let d = try detect(["package.json", "yarn.lock", "main.py"], named: "node")
        #expect(d.stack.name == "node")
        #expect(d.variant.name == "yarn")
        let p = try detect(["poetry.lock", "index.js", "package.json"], named: "python")
        #expect(p.variant.name == "poetry")
    }

    @Test func planStackWorksWithNoMatchingFileAtAll() throws {
        let d = try detect(["README.md"], named: "cpp")
        #expect(d.stack.name == "cpp")
        #expect(d.variant.name == "gpp")
        #expect(d.scores.isEmpty)
    }

    @Test func unknownPlanStackIsAnErrorListingTheKnownStacks() throws {
        let e = try #require(detectionError(["main.py"], named: "haskell"))
        #expect(e.message.contains("`haskell`"))
        let remedy = try #require(e.remedy)
        #expect(remedy.contains("cpp, go, java, node, python, rust"))
    }

    @Test func noMatchIsAnError() throws {
        let e = try #require(detectionError(["README.md", "notes.txt", "data/x.csv"]))
        #expect(e.message.contains("no stack matches"))
        #expect(e.remedy?.contains("\"stack\"") == true)
        #expect(e.remedy?.contains("python") == true)
    }

    @Test func emptyFileListIsNoMatch() throws {
        let e = try #require(detectionError([]))
        #expect(e.message.contains("no stack matches"))
    }

    @Test func exactTieIsAnErrorNamingBoth() throws {
        // *.go and *.py both weigh 10.
        let e = try #require(detectionError(["main.go", "helper.py"]))
        #expect(e.message.contains("`go`"))
        #expect(e.message.contains("`python`"))
        #expect(e.message.contains("equally"))
        #expect(e.message.contains("score 10"))
        #expect(e.remedy?.contains("\"stack\"") == true)
    }

    @Test func tieBetweenStrongMarkersIsAnError() throws {
        // Cargo.toml (100) against package.json (100).
        let e = try #require(detectionError(["Cargo.toml", "package.json"]))
        #expect(e.message.contains("`node`") && e.message.contains("`rust`"))
        #expect(e.message.contains("Cargo.toml"))
        #expect(e.message.contains("package.json"))
    }

    @Test func tieIsResolvedByTheNamedStack() throws {
        let d = try detect(["main.go", "helper.py"], named: "go")
        #expect(d.stack.name == "go")
    }

    @Test func tieForSecondPlaceIsNoError() throws {
        // go 110 wins; python and rust tie at 10 behind it.
        let d = try detect(["go.mod", "main.go", "x.py", "y.rs"])
        #expect(d.stack.name == "go")
        #expect(d.scores.map(\.stack) == ["go", "python", "rust"])
    }

    @Test func threeWayTieNamesAllThree() throws {
        let e = try #require(detectionError(["a.go", "b.py", "c.rs"]))
        for name in ["`go`", "`python`", "`rust`"] { #expect(e.message.contains(name), "\(e.message)") }
    }

    // MARK: Variants of custom stacks

    @Test func variantTieGoesToTheDefault() {
        let stack = Stack(name: "s", description: "", source: "s.toml", markers: [StackMarker(files: ["x"], weight: 1)],
                          toolHints: [:], caches: [], phases: [:], variants: [
                            StackVariant(name: "a", markers: [StackMarker(files: ["a.lock"], weight: 5)]),
                            StackVariant(name: "z", isDefault: true, markers: [StackMarker(files: ["z.lock"], weight: 5)]),
                          ])
        #expect(StackDetector.variant(of: stack, ["a.lock", "z.lock"]).name == "z")
        #expect(StackDetector.variant(of: stack, ["a.lock"]).name == "a")
        #expect(StackDetector.variant(of: stack, ["other"]).name == "z")
    }

    @Test func variantTieWithoutTheDefaultGoesToTheFirstName() {
        let stack = Stack(name: "s", description: "", source: "s.toml", markers: [StackMarker(files: ["x"], weight: 1)],
                          toolHints: [:], caches: [], phases: [:], variants: [
                            StackVariant(name: "d", isDefault: true),
                            StackVariant(name: "m", markers: [StackMarker(globs: ["*.m"], weight: 3)]),
                            StackVariant(name: "b", markers: [StackMarker(globs: ["*.b"], weight: 3)]),
                          ])
        #expect(StackDetector.variant(of: stack, ["x.m", "x.b"]).name == "b")
    }
}

@Suite("Glob matching (StackDetection)")
struct StackDetectionGlobTests {
    @Test(arguments: [
        ("*.py", "a.py"), ("*.py", ".py"), ("*.py", "x.y.py"),
        ("*", ""), ("*", "anything"), ("**", "x"),
        ("?", "a"), ("a?c", "abc"), ("??.go", "ab.go"),
        ("a*b*c", "abc"), ("a*b*c", "aXXbYYc"), ("a*b*c", "abbbc"), ("a*b*c", "acbc"),
        ("*.tar.gz", "x.tar.gz"), ("*.tar.gz", "x.tar.tar.gz"),
        ("Makefile", "Makefile"), ("", ""),
        ("*a", "aaa"), ("*ab", "aab"), ("*.c*", "x.cpp"),
        ("*é", "café"), ("?", "é"),
    ])
    func matches(pattern: String, name: String) {
        #expect(Glob.matches(pattern, name), "\(pattern) should match \(name)")
    }

    @Test(arguments: [
        ("*.py", "a.pyc"), ("*.py", "a.py.bak"), ("*.py", "a.PY"), ("*.py", "apy"),
        ("?", ""), ("?", "ab"), ("a?c", "ac"), ("??.go", "a.go"),
        ("a*b*c", "acb"), ("a*b*c", "ab"), ("a*b*c", "xabc"),
        ("*.tar.gz", "x.tgz"), ("Makefile", "makefile"), ("Makefile", "Makefile2"),
        ("", "a"), ("abc", "ab"), ("ab", "abc"), ("*ab", "aba"),
        ("[ab].c", "a.c"),
    ])
    func doesNotMatch(pattern: String, name: String) {
        #expect(!Glob.matches(pattern, name), "\(pattern) should not match \(name)")
    }

    @Test func bracketsAreLiteral() {
        // Only `*` and `?` are special.
        #expect(Glob.matches("[ab].c", "[ab].c"))
    }

    @Test func baseNameIsTheLastComponent() {
        #expect(StackDetector.baseName("a/b/c.py") == "c.py")
        #expect(StackDetector.baseName("c.py") == "c.py")
    }
}
