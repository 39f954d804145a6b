import Foundation
import OTKConfig
import OTKModel
@testable import OTKPlan
import Testing

/// A plan whose files are `files` (name -> content; the content defaults to a line of text).
private func makePlan(_ files: [String], name: String = "demo", contents: [String: String] = [:], run: PlanCommand? = nil,
                      postInstall: [String] = [], stack: String? = nil, dependencies: [String] = [],
                      build: PlanCommand? = nil, env: [String: String] = [:]) -> Plan {
    Plan(name: name, files: files.map { PlanFile(filename: $0, content: Array((contents[$0] ?? "// \($0)\n").utf8)) },
         run: run, postInstall: postInstall, stack: stack, dependencies: dependencies, build: build, env: env)
}

/// Every cache of every shipped stack at /cache/NAME.
private let allCachePaths: [String: String] = {
    var out: [String: String] = [:]
    for stack in shippedStacks { for cache in stack.caches { out[cache.name] = "/cache/" + cache.name } }
    return out
}()

private func context(network: Set<PhaseName> = [.install]) -> PhaseContext {
    PhaseContext(workspace: "/workspace", cachePaths: allCachePaths, networkPhases: network)
}

/// Detects `plan` over the shipped stacks and resolves it.
private func resolve(_ plan: Plan, network: Set<PhaseName> = [.install], stacks: [Stack] = shippedStacks) throws -> ResolvedPhases {
    let d = try StackDetector.detect(filenames: plan.files.map(\.filename), stacks: stacks, named: plan.stack)
    return try PhaseResolver.resolve(plan, d, context(network: network))
}

private func resolveError(_ plan: Plan, network: Set<PhaseName> = [.install], stacks: [Stack] = shippedStacks,
                          sourceLocation: Testing.SourceLocation = #_sourceLocation) -> OTKError? {
    #expect(throws: OTKError.self, sourceLocation: sourceLocation) { _ = try resolve(plan, network: network, stacks: stacks) }
}

private extension ResolvedPhases {
    func argvs(_ phase: PhaseName) -> [[String]] { commands(phase).map(\.argv) }
}

private let compileAll = ["python3", "-m", "compileall", "-q", "-x", "(^|/)\\.venv/", "."]

/// A one-variant stack named "custom" for the rules the shipped stacks do not exercise.
private func customStack(_ variant: StackVariant, caches: [StackCache] = [], phases: [String: StackPhaseSettings] = [:]) -> Stack {
    var v = variant
    v.isDefault = true
    return Stack(name: "custom", description: "", source: "custom.toml", markers: [StackMarker(files: ["custom.txt"], weight: 1)],
                 toolHints: [:], caches: caches, phases: phases, variants: [v])
}

@Suite("Phase resolution (PhaseResolver)")
struct PhaseResolverTests {
    // MARK: Python

    @Test func myAPIFixtureResolvesToVenvWithTheWheelhouse() throws {
        let plan = try PlanParser.parse(try fixtureBytes("my-api.json"), file: "my-api.json")
        let r = try resolve(plan)
        #expect(r.detection.stack.name == "python" && r.detection.variant.name == "venv")
        #expect(r.argvs(.install) == [
            ["python3", "-m", "venv", "/workspace/.venv"],
            ["python3", "-m", "pip", "wheel", "--wheel-dir", "/cache/pip/wheels", "-r", "requirements.txt"],
            ["python3", "-m", "pip", "install", "--no-index", "--find-links", "/cache/pip/wheels", "-r", "requirements.txt"],
        ])
        #expect(r.argvs(.postInstall).isEmpty)
        #expect(r.argvs(.build) == [compileAll])
        #expect(r.argvs(.run) == [["/bin/sh", "-c", "python app.py"]])
        #expect(r.runCommand == ["/bin/sh", "-c", "python app.py"])
        #expect(r.environment == [
            "VIRTUAL_ENV": "/workspace/.venv", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
            "PIP_CACHE_DIR": "/cache/pip",
        ])
        #expect(r.pathPrefix == ["/workspace/.venv/bin"])
        #expect(r.caches == [StackCache(name: "pip", env: ["PIP_CACHE_DIR"])])
        #expect(r.notes.isEmpty)
    }

    @Test func integrationHelloFixtureHasNoPipSteps() throws {
        let plan = try PlanParser.parse(try fixtureBytes("integration-hello.json"), file: "integration-hello.json")
        let r = try resolve(plan)
        #expect(r.argvs(.install) == [["python3", "-m", "venv", "/workspace/.venv"]])
        #expect(r.argvs(.run) == [["/bin/sh", "-c", "python hello.py"]])
    }

    @Test func pipWheelStepsOnlyWithTheNetwork() throws {
        let plan = makePlan(["main.py", "requirements.txt"], dependencies: ["flask>=3", "requests==2.31"])
        let online = try resolve(plan, network: [.install])
        #expect(online.argvs(.install) == [
            ["python3", "-m", "venv", "/workspace/.venv"],
            ["python3", "-m", "pip", "wheel", "--wheel-dir", "/cache/pip/wheels", "-r", "requirements.txt"],
            ["python3", "-m", "pip", "wheel", "--wheel-dir", "/cache/pip/wheels", "flask>=3", "requests==2.31"],
            ["python3", "-m", "pip", "install", "--no-index", "--find-links", "/cache/pip/wheels", "-r", "requirements.txt"],
            ["python3", "-m", "pip", "install", "--no-index", "--find-links", "/cache/pip/wheels", "flask>=3", "requests==2.31"],
        ])
        #expect(online.notes.isEmpty)

        let offline = try resolve(plan, network: [])
        #expect(offline.argvs(.install) == [
            ["python3", "-m", "venv", "/workspace/.venv"],
            ["python3", "-m", "pip", "install", "--no-index", "--find-links", "/cache/pip/wheels", "-r", "requirements.txt"],
            ["python3", "-m", "pip", "install", "--no-index", "--find-links", "/cache/pip/wheels", "flask>=3", "requests==2.31"],
        ])
        #expect(offline.notes.contains { $0.hasPrefix("install:") && $0.contains("cache only") })
    }

    @Test func networkInAnotherPhaseDoesNotEnableInstallSteps() throws {
        let r = try resolve(makePlan(["main.py", "requirements.txt"]), network: [.build, .run])
        #expect(!r.argvs(.install).contains { $0.contains("wheel") })
    }

    @Test func dependenciesStepsNeedDependencies() throws {
        let r = try resolve(makePlan(["main.py"]))
        #expect(r.argvs(.install) == [["python3", "-m", "venv", "/workspace/.venv"]])
        let d = try resolve(makePlan(["main.py"], dependencies: ["six"]))
        #expect(d.argvs(.install) == [
            ["python3", "-m", "venv", "/workspace/.venv"],
            ["python3", "-m", "pip", "wheel", "--wheel-dir", "/cache/pip/wheels", "six"],
            ["python3", "-m", "pip", "install", "--no-index", "--find-links", "/cache/pip/wheels", "six"],
        ])
    }

    @Test func pythonRunCommandComesFromMainOrApp() throws {
        #expect(try resolve(makePlan(["main.py", "app.py"])).runCommand == ["python3", "main.py"])
        #expect(try resolve(makePlan(["app.py", "lib.py"])).runCommand == ["python3", "app.py"])
        // Only at the root: a src/main.py is not the project's entry point.
        let r = try resolve(makePlan(["src/main.py"]))
        #expect(r.runCommand == nil)
    }

    @Test(arguments: [
        ("poetry.lock", "poetry", [["poetry", "install", "--no-root"]], "POETRY_CACHE_DIR", "/cache/poetry"),
        ("pdm.lock", "pdm", [["pdm", "sync", "--no-self"]], "PDM_CACHE_DIR", "/cache/pdm"),
        ("uv.lock", "uv", [["uv", "sync", "--frozen"]], "UV_CACHE_DIR", "/cache/uv"),
    ])
    func pythonLockVariants(lock: String, variant: String, install: [[String]], cacheVariable: String, cachePath: String) throws {
        let r = try resolve(makePlan(["pyproject.toml", lock, "main.py"]))
        #expect(r.detection.variant.name == variant)
        #expect(r.argvs(.install) == install)
        #expect(r.argvs(.build) == [compileAll])
        #expect(r.runCommand == ["python3", "main.py"])
        #expect(r.environment[cacheVariable] == cachePath)
        #expect(r.environment["PIP_CACHE_DIR"] == nil)
        #expect(r.pathPrefix == ["/workspace/.venv/bin"])
    }

    @Test func poetryAndUvVariablesAreSet() throws {
        let p = try resolve(makePlan(["pyproject.toml", "poetry.lock", "main.py"]))
        #expect(p.environment["POETRY_VIRTUALENVS_IN_PROJECT"] == "true")
        #expect(p.environment["POETRY_NO_INTERACTION"] == "1")
        let u = try resolve(makePlan(["pyproject.toml", "uv.lock", "main.py"]))
        #expect(u.environment["UV_PYTHON_DOWNLOADS"] == "never")
    }

    @Test func uvGoesOfflineWithoutTheNetwork() throws {
        let r = try resolve(makePlan(["pyproject.toml", "uv.lock"]), network: [])
        #expect(r.argvs(.install) == [["uv", "sync", "--frozen", "--offline"]])
        #expect(r.notes.contains { $0.hasPrefix("install:") })
    }

    // MARK: Node

    @Test func npmCiOnlyWithPackageLock() throws {
        let locked = try resolve(makePlan(["package.json", "package-lock.json", "index.js"]))
        #expect(locked.detection.variant.name == "npm")
        #expect(locked.argvs(.install) == [["npm", "ci"]])
        #expect(locked.argvs(.build) == [["npm", "run", "build", "--if-present"]])
        #expect(locked.runCommand == ["node", "index.js"])
        #expect(locked.pathPrefix == ["/workspace/node_modules/.bin"])
        #expect(locked.environment == [
            "npm_config_update_notifier": "false", "npm_config_audit": "false", "npm_config_fund": "false",
            "npm_config_prefer_offline": "true", "npm_config_cache": "/cache/npm",
        ])

        let unlocked = try resolve(makePlan(["package.json", "index.js"]))
        #expect(unlocked.argvs(.install) == [["npm", "install"]])
    }

    @Test func npmRunCommandOrder() throws {
        #expect(try resolve(makePlan(["package.json", "main.js", "app.js"])).runCommand == ["node", "main.js"])
        #expect(try resolve(makePlan(["package.json", "app.js"])).runCommand == ["node", "app.js"])
        #expect(try resolve(makePlan(["package.json", "index.js", "app.js"])).runCommand == ["node", "index.js"])
        #expect(try resolve(makePlan(["package.json", "server.js"])).runCommand == ["npm", "start"])
    }

    @Test func npmWithoutPackageJSONInstallsAndBuildsNothing() throws {
        // The stack named by the plan; index.js alone: no package.json, so no npm steps.
        let r = try resolve(makePlan(["index.js"], stack: "node"))
        #expect(r.argvs(.install).isEmpty)
        #expect(r.argvs(.build).isEmpty)
        #expect(r.runCommand == ["node", "index.js"])
    }

    @Test func yarn() throws {
        let r = try resolve(makePlan(["package.json", "yarn.lock"]))
        #expect(r.detection.variant.name == "yarn")
        #expect(r.argvs(.install) == [["yarn", "install", "--frozen-lockfile", "--non-interactive"]])
        #expect(r.argvs(.build) == [["yarn", "run", "build"]])
        #expect(r.runCommand == ["yarn", "start"])
        #expect(r.environment == ["YARN_CACHE_FOLDER": "/cache/yarn"])
        #expect(r.pathPrefix == ["/workspace/node_modules/.bin"])
    }

    @Test func pnpm() throws {
        let r = try resolve(makePlan(["package.json", "pnpm-lock.yaml"]))
        #expect(r.detection.variant.name == "pnpm")
        #expect(r.argvs(.install) == [["pnpm", "install", "--frozen-lockfile"]])
        #expect(r.argvs(.build) == [["pnpm", "run", "--if-present", "build"]])
        #expect(r.runCommand == ["pnpm", "start"])
        #expect(r.environment == ["npm_config_store_dir": "/cache/pnpm"])
    }

    // MARK: Go and Rust

    @Test func goUsesTheSlugOfTheName() throws {
        let r = try resolve(makePlan(["go.mod", "main.go"], name: "My Tool!"))
        #expect(r.argvs(.install) == [["go", "mod", "download"]])
        #expect(r.argvs(.build) == [["go", "build", "-o", "bin/my-tool", "."]])
        #expect(r.runCommand == ["./bin/my-tool"])
        #expect(r.environment == [
            "GOMODCACHE": "/cache/gomod", "GOCACHE": "/tmp/go-build", "GOTOOLCHAIN": "local", "GOTELEMETRY": "off", "GOFLAGS": "-mod=mod",
        ])
        #expect(r.pathPrefix.isEmpty)
    }

    @Test func rustFetchesOnlineOrOffline() throws {
        let online = try resolve(makePlan(["Cargo.toml", "src/main.rs"]))
        #expect(online.argvs(.install) == [["cargo", "fetch"]])
        #expect(online.argvs(.build) == [["cargo", "build", "--release", "--offline"]])
        #expect(online.runCommand == ["cargo", "run", "--release", "--offline", "--quiet"])
        #expect(online.environment == ["CARGO_HOME": "/cache/cargo", "CARGO_TARGET_DIR": "/workspace/target", "CARGO_TERM_COLOR": "never"])
        let offline = try resolve(makePlan(["Cargo.toml", "src/main.rs"]), network: [])
        #expect(offline.argvs(.install) == [["cargo", "fetch", "--offline"]])
    }

    // MARK: Java

    @Test func javacCompilesSortedSourcesAndRunsThePackagedMain() throws {
        let plan = makePlan(["src/app/Main.java", "src/app/Util.java", "Helper.java", "README.md"], contents: [
            "src/app/Main.java": "// header\npackage app;\n\npublic class Main {\n    public static void main(String[] args) {}\n}\n",
            "src/app/Util.java": "package app;\nclass Util {}\n",
            "Helper.java": "class Helper { static void help() {} }\n",
        ])
        let r = try resolve(plan)
        #expect(r.detection.variant.name == "javac")
        #expect(r.argvs(.install).isEmpty)
        #expect(r.argvs(.build) == [["javac", "-d", "build/classes", "Helper.java", "src/app/Main.java", "src/app/Util.java"]])
        #expect(r.runCommand == ["java", "-cp", "build/classes", "app.Main"])
        #expect(r.environment.isEmpty)
    }

    @Test func javaMainWithoutPackage() throws {
        let r = try resolve(makePlan(["Main.java"], contents: ["Main.java": "public class Main { public static void main(String[] a) { } }\n"]))
        #expect(r.runCommand == ["java", "-cp", "build/classes", "Main"])
    }

    @Test func javaMainPackageLineWithSpaces() throws {
        let text = "/* c */\n\t  package com.example.demo ;\r\nclass Tool {\n  public static void main (String[] args) {}\n}\n"
        let r = try resolve(makePlan(["src/Tool.java"], contents: ["src/Tool.java": text]))
        #expect(r.runCommand == ["java", "-cp", "build/classes", "com.example.demo.Tool"])
    }

    @Test func twoMainClassesAreAnError() throws {
        let main = "class X { public static void main(String[] a) {} }\n"
        let plan = makePlan(["A.java", "b/B.java"], contents: ["A.java": main, "b/B.java": "package b;\n" + main])
        let e = try #require(resolveError(plan))
        #expect(e.kind == .badInput)
        #expect(e.message.contains("several classes"))
        #expect(e.message.contains("A, b.B"))
        #expect(e.remedy?.contains("run") == true)
    }

    @Test func noMainClassIsAnError() throws {
        let e = try #require(resolveError(makePlan(["Lib.java"], contents: ["Lib.java": "class Lib {}\n"])))
        #expect(e.message.contains("no class"))
    }

    @Test func twoMainClassesAreFineWhenThePlanGivesTheRunCommand() throws {
        let main = "class X { public static void main(String[] a) {} }\n"
        let plan = makePlan(["A.java", "B.java"], contents: ["A.java": main, "B.java": main],
                            run: .argv(["java", "-cp", "build/classes", "A"]))
        let r = try resolve(plan)
        #expect(r.runCommand == ["java", "-cp", "build/classes", "A"])
    }

    @Test func maven() throws {
        let plan = makePlan(["pom.xml", "src/main/java/com/x/App.java"], contents: [
            "src/main/java/com/x/App.java": "package com.x;\npublic class App { public static void main(String[] a) {} }\n",
        ])
        let r = try resolve(plan)
        #expect(r.detection.variant.name == "maven")
        #expect(r.argvs(.install) == [["mvn", "-B", "-q", "-Dmaven.repo.local=/cache/m2", "dependency:go-offline"]])
        #expect(r.argvs(.build) == [["mvn", "-B", "-q", "--offline", "-Dmaven.repo.local=/cache/m2", "package"]])
        #expect(r.runCommand == ["java", "-cp", "target/classes", "com.x.App"])
        // The m2 cache sets no variable.
        #expect(r.environment.isEmpty)
        #expect(r.caches.map(\.name) == ["m2"])

        let offline = try resolve(plan, network: [])
        #expect(offline.argvs(.install).isEmpty)
        #expect(offline.notes.contains { $0.hasPrefix("install:") })
    }

    @Test(arguments: ["build.gradle", "build.gradle.kts"])
    func gradle(buildFile: String) throws {
        let plan = makePlan([buildFile, "src/main/java/App.java"], contents: [
            "src/main/java/App.java": "public class App { public static void main(String[] a) {} }\n",
        ])
        let r = try resolve(plan)
        #expect(r.detection.variant.name == "gradle")
        #expect(r.argvs(.install) == [["gradle", "--no-daemon", "-q", "dependencies"]])
        #expect(r.argvs(.build) == [["gradle", "--no-daemon", "-q", "--offline", "build"]])
        #expect(r.runCommand == ["java", "-cp", "build/classes/java/main", "App"])
        #expect(r.environment == ["GRADLE_USER_HOME": "/cache/gradle"])
    }

    // MARK: C++

    @Test func gppCompilesEveryCppCcAndCxxFileSorted() throws {
        let r = try resolve(makePlan(["main.cpp", "b.cc", "a.cxx", "util.h", "c.c", "inc/x.hpp", "sub/z.cpp", "notes.cppx"], name: "Hello C++"))
        #expect(r.detection.variant.name == "gpp")
        #expect(r.argvs(.install).isEmpty)
        #expect(r.argvs(.build) == [
            ["mkdir", "-p", "build"],
            ["g++", "-O2", "-std=c++17", "-o", "build/hello-c", "a.cxx", "b.cc", "main.cpp", "sub/z.cpp"],
        ])
        #expect(r.runCommand == ["./build/hello-c"])
        #expect(r.caches.isEmpty)
        #expect(r.environment.isEmpty)
    }

    @Test func gppWithoutSourcesIsAnError() throws {
        let e = try #require(resolveError(makePlan(["README.md", "x.hpp"], stack: "cpp")))
        #expect(e.kind == .badInput)
        #expect(e.message.contains("cpp/gpp"))
        #expect(e.message.contains("*.cpp *.cc *.cxx"))
        #expect(e.message.contains("has none"))
    }

    @Test func planBuildAvoidsTheMissingSources() throws {
        let plan = makePlan(["README.md"], run: .argv(["true"]), stack: "cpp", build: .shell("echo nothing to build"))
        let r = try resolve(plan)
        #expect(r.argvs(.build) == [["/bin/sh", "-c", "echo nothing to build"]])
        #expect(r.runCommand == ["true"])
    }

    @Test func cmakeHasNoRunCommand() throws {
        let r = try resolve(makePlan(["CMakeLists.txt", "main.cpp"]))
        #expect(r.detection.variant.name == "cmake")
        #expect(r.argvs(.build) == [
            ["cmake", "-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release"],
            ["cmake", "--build", "build"],
        ])
        #expect(r.runCommand == nil)
        #expect(r.argvs(.run).isEmpty)
        #expect(r.notes.contains { $0.hasPrefix("run:") && $0.contains("cpp/cmake") && $0.contains("skipped") })
        #expect(PhaseResolver.runScript(r, workspace: "/workspace") == nil)
    }

    @Test func make() throws {
        let r = try resolve(makePlan(["Makefile", "main.cpp"], run: .shell("./hello")))
        #expect(r.detection.variant.name == "make")
        #expect(r.argvs(.build) == [["make"]])
        #expect(r.runCommand == ["/bin/sh", "-c", "./hello"])
        #expect(r.notes.isEmpty)
    }

    // MARK: The plan's commands

    @Test func planBuildReplacesTheStackBuild() throws {
        let shell = try resolve(makePlan(["main.py"], build: .shell("python3 -m pytest -q && echo ok")))
        #expect(shell.argvs(.build) == [["/bin/sh", "-c", "python3 -m pytest -q && echo ok"]])
        let argv = try resolve(makePlan(["main.py"], build: .argv(["python3", "-m", "build", "--wheel"])))
        #expect(argv.argvs(.build) == [["python3", "-m", "build", "--wheel"]])
        // The install phase is still the stack's.
        #expect(argv.argvs(.install) == [["python3", "-m", "venv", "/workspace/.venv"]])
    }

    @Test func planBuildArgvIsKeptAsWritten() throws {
        // No placeholder filling and no splitting in the plan's own commands.
        let r = try resolve(makePlan(["main.py"], run: .argv(["echo", "{workspace}", "a b", "{sources}"]),
                                     build: .argv(["echo", "{name}"])))
        #expect(r.argvs(.build) == [["echo", "{name}"]])
        #expect(r.runCommand == ["echo", "{workspace}", "a b", "{sources}"])
    }

    @Test func planRunShellStringAndArgvList() throws {
        let shell = try resolve(makePlan(["main.py"], run: .shell("python3 main.py --port 8080 | tee log")))
        #expect(shell.runCommand == ["/bin/sh", "-c", "python3 main.py --port 8080 | tee log"])
        #expect(shell.argvs(.run) == [["/bin/sh", "-c", "python3 main.py --port 8080 | tee log"]])
        let argv = try resolve(makePlan(["main.py"], run: .argv(["python3", "main.py", "it's"])))
        #expect(argv.runCommand == ["python3", "main.py", "it's"])
        #expect(PhaseResolver.argv(of: .shell("x")) == ["/bin/sh", "-c", "x"])
        #expect(PhaseResolver.argv(of: .argv(["a", "b"])) == ["a", "b"])
    }

    @Test func postInstallCommandsRunInOrderBetweenInstallAndBuild() throws {
        let r = try resolve(makePlan(["main.py", "requirements.txt"], postInstall: ["pip list", "echo 'done' > x"]))
        #expect(r.argvs(.postInstall) == [["/bin/sh", "-c", "pip list"], ["/bin/sh", "-c", "echo 'done' > x"]])
        #expect(r.commands.map(\.phase) == [.install, .install, .install, .postInstall, .postInstall, .build, .run])
        #expect(r.commands.map(\.phase) == r.commands.map(\.phase).sorted())
    }

    @Test func noRunCommandIsANoteAndNoRunPhase() throws {
        let r = try resolve(makePlan(["lib.py", "requirements.txt"]))
        #expect(r.runCommand == nil)
        #expect(r.argvs(.run).isEmpty)
        #expect(!r.commands.contains { $0.phase == .run })
        #expect(r.notes == ["run: neither the plan nor python/venv gives a run command; the run phase is skipped"])
        #expect(PhaseResolver.runScript(r, workspace: "/workspace") == nil)
    }

    // MARK: Environment

    @Test func planEnvWinsOverVariantAndCaches() throws {
        let r = try resolve(makePlan(["main.py"], env: ["VIRTUAL_ENV": "/elsewhere", "PIP_CACHE_DIR": "/mine", "APP_MODE": "test"]))
        #expect(r.environment["VIRTUAL_ENV"] == "/elsewhere")
        #expect(r.environment["PIP_CACHE_DIR"] == "/mine")
        #expect(r.environment["APP_MODE"] == "test")
        #expect(r.environment["PIP_NO_INPUT"] == "1")
    }

    @Test func cacheVariablesWinOverTheVariantsEnv() throws {
        let stack = customStack(StackVariant(name: "v", caches: ["c"], env: ["SHARED": "variant", "OWN": "{workspace}/x:{cache:c}"]),
                                caches: [StackCache(name: "c", env: ["SHARED", "C_DIR"])])
        let plan = makePlan(["custom.txt"], run: .argv(["true"]))
        let d = try StackDetector.detect(filenames: ["custom.txt"], stacks: [stack])
        let r = try PhaseResolver.resolve(plan, d, PhaseContext(workspace: "/w", cachePaths: ["c": "/cc"], networkPhases: []))
        #expect(r.environment == ["SHARED": "/cc", "C_DIR": "/cc", "OWN": "/w/x:/cc"])
        var withEnv = plan
        withEnv.env = ["SHARED": "plan"]
        let p = try PhaseResolver.resolve(withEnv, d, PhaseContext(workspace: "/w", cachePaths: ["c": "/cc"], networkPhases: []))
        #expect(p.environment["SHARED"] == "plan")
    }

    @Test func missingCachePathIsAnInternalError() throws {
        let d = try StackDetector.detect(filenames: ["main.py"], stacks: shippedStacks)
        let e = #expect(throws: OTKError.self) {
            _ = try PhaseResolver.resolve(makePlan(["main.py"]), d, PhaseContext(workspace: "/w", cachePaths: [:], networkPhases: []))
        }
        #expect(e?.kind == .internalError)
        #expect(e?.message.contains("pip") == true)
    }

    // MARK: Step conditions, on a custom stack

    @Test func stepConditions() throws {
        let variant = StackVariant(name: "v", sources: ["*.src"], path: ["{workspace}/bin", "/opt/{name}"], install: [
            StackStep(argv: ["any-of"], ifFiles: ["a", "b"]),
            StackStep(argv: ["unless-c"], unlessFiles: ["c"]),
            StackStep(argv: ["with-deps", "{dependencies}", "--end"], ifDependencies: true),
            StackStep(argv: ["without-deps"], ifDependencies: false),
            StackStep(argv: ["online"], ifNetwork: true),
            StackStep(argv: ["offline"], ifNetwork: false),
            StackStep(argv: ["both", "{workspace}/x", "--name={name}", "{nope}", "{sources}"], ifFiles: ["b"], unlessFiles: ["d"]),
        ], build: [
            StackStep(argv: ["build-online"], ifNetwork: true),
        ], run: [
            StackStep(argv: ["never"], ifFiles: ["zzz"]),
            StackStep(argv: ["first-that-applies", "{name}"]),
            StackStep(argv: ["second"]),
        ])
        let stack = customStack(variant)
        func run(_ files: [String], deps: [String] = [], network: Set<PhaseName> = []) throws -> ResolvedPhases {
            let plan = makePlan(["custom.txt"] + files, name: "Cu Stom", dependencies: deps)
            let d = try StackDetector.detect(filenames: plan.files.map(\.filename), stacks: [stack])
            return try PhaseResolver.resolve(plan, d, PhaseContext(workspace: "/w", cachePaths: [:], networkPhases: network))
        }

        let none = try run(["z.src"])
        #expect(none.argvs(.install) == [["unless-c"], ["without-deps"], ["offline"]])
        #expect(none.argvs(.build).isEmpty)
        #expect(none.runCommand == ["first-that-applies", "cu-stom"])
        #expect(none.pathPrefix == ["/w/bin", "/opt/cu-stom"])

        let all = try run(["a", "b", "c", "z.src", "y/a.src"], deps: ["p1", "p2"], network: [.install, .build])
        #expect(all.argvs(.install) == [
            ["any-of"],
            ["with-deps", "p1", "p2", "--end"],
            ["online"],
            ["both", "/w/x", "--name=cu-stom", "{nope}", "y/a.src", "z.src"],
        ])
        #expect(all.argvs(.build) == [["build-online"]])

        let blocked = try run(["b", "d", "x.src"], network: [.build])
        #expect(blocked.argvs(.install) == [["any-of"], ["unless-c"], ["without-deps"], ["offline"]])
        #expect(blocked.argvs(.build) == [["build-online"]])
    }

    @Test func noNetworkNoteOnlyWhenTheStackWantsTheNetwork() throws {
        let variant = StackVariant(name: "v", install: [StackStep(argv: ["fetch"])])
        let plan = makePlan(["custom.txt"], run: .argv(["true"]))
        for (wants, expectNote) in [(true, true), (false, false)] {
            let stack = customStack(variant, phases: ["install": StackPhaseSettings(network: wants)])
            let d = try StackDetector.detect(filenames: ["custom.txt"], stacks: [stack])
            let r = try PhaseResolver.resolve(plan, d, PhaseContext(workspace: "/w", cachePaths: [:], networkPhases: []))
            #expect(r.notes.contains { $0.hasPrefix("install:") } == expectNote)
            let online = try PhaseResolver.resolve(plan, d, PhaseContext(workspace: "/w", cachePaths: [:], networkPhases: [.install]))
            #expect(online.notes.isEmpty)
        }
    }

    @Test func dependenciesSplatToNothingWhenEmpty() throws {
        let stack = customStack(StackVariant(name: "v", install: [StackStep(argv: ["tool", "{dependencies}", "--end"])]))
        let d = try StackDetector.detect(filenames: ["custom.txt"], stacks: [stack])
        let r = try PhaseResolver.resolve(makePlan(["custom.txt"]), d, PhaseContext(workspace: "/w", cachePaths: [:], networkPhases: []))
        #expect(r.argvs(.install) == [["tool", "--end"]])
    }

    // MARK: Placeholders

    @Test func placeholderNames() {
        #expect(Placeholders.names(in: "{workspace}/x/{cache:pip}") == ["workspace", "cache:pip"])
        #expect(Placeholders.names(in: "no braces") == [])
        #expect(Placeholders.names(in: "a{b") == [])
        #expect(Placeholders.names(in: "{}") == [""])
    }

    @Test func placeholderFill() {
        let values = ["workspace": "/w", "name": "n"]
        #expect(Placeholders.fill("{workspace}/bin/{name}", values) == "/w/bin/n")
        #expect(Placeholders.fill("{unknown}-{name}", values) == "{unknown}-n")
        #expect(Placeholders.fill("plain", values) == "plain")
        #expect(Placeholders.fill("", values) == "")
    }

    @Test func placeholderFillKeepsAnUnclosedBraceOnce() {
        let values = ["name": "n"]
        #expect(Placeholders.fill("x{", values) == "x{")
        #expect(Placeholders.fill("a{b", values) == "a{b")
        #expect(Placeholders.fill("{name}-{oops", values) == "n-{oops")
        #expect(Placeholders.fill("{", values) == "{")
    }

    // MARK: run.sh

    @Test func runScriptSurvivesQuotesAndSpacesAndReplacesTheWorkspace() throws {
        let dir = try TempDir()
        let script = "printf '%s\\n' \"$@\" > \"$OUT\"; printf '%s\\n' \"$VIRTUAL_ENV\" \"$(pwd -P)\" \"${PIP_CACHE_DIR-unset}\" \"$GREETING\" >> \"$OUT\"; greet >> \"$OUT\""
        let plan = makePlan(["main.py"], run: .argv([
            "/bin/sh", "-c", script, "sh",
            "it's a 'quoted' arg",
            "with  two  spaces",
            "/workspace/data/x y",
            "$HOME `id` \\ \"dq\" ;|&",
            "'",
            "",
        ]), env: ["OUT": "/workspace/out.txt", "GREETING": "hello, it's me"])
        let r = try resolve(plan)
        let text = try #require(PhaseResolver.runScript(r, workspace: "/workspace"))
        #expect(text.hasPrefix("#!/bin/sh\n"))
        #expect(!text.contains("/workspace"))
        // Caches are left out of run.sh.
        #expect(!text.contains("export PIP_CACHE_DIR"))
        #expect(!text.contains("/cache/pip"))

        // The PATH addition: {workspace}/.venv/bin.
        try FileManager.default.createDirectory(atPath: dir.path + "/.venv/bin", withIntermediateDirectories: true)
        try Data("#!/bin/sh\necho greeted\n".utf8).write(to: URL(fileURLWithPath: dir.path + "/.venv/bin/greet"))
        chmod(dir.path + "/.venv/bin/greet", 0o755)
        try FileManager.default.createDirectory(atPath: dir.path + "/data", withIntermediateDirectories: true)
        // Run it by its real path, so that `pwd` and realpath agree.
        let real = try #require(realpathString(dir.path))
        let runSh = real + "/run.sh"
        try Data(text.utf8).write(to: URL(fileURLWithPath: runSh))

        let status = try runShell(runSh)
        #expect(status == 0)
        let out = try String(contentsOfFile: real + "/out.txt", encoding: .utf8)
        #expect(out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) == [
            "it's a 'quoted' arg",
            "with  two  spaces",
            real + "/data/x y",
            "$HOME `id` \\ \"dq\" ;|&",
            "'",
            "",
            real + "/.venv",
            real,
            "unset",
            "hello, it's me",
            "greeted",
            "",
        ])
    }

    @Test func runScriptOfAShellRunCommand() throws {
        let dir = try TempDir()
        let plan = makePlan(["main.py"], run: .shell("echo \"it's\" 'a  test' > /workspace/o.txt; pwd >> o.txt"))
        let r = try resolve(plan)
        let text = try #require(PhaseResolver.runScript(r, workspace: "/workspace"))
        #expect(text.contains("exec '/bin/sh' '-c' "))
        let real = try #require(realpathString(dir.path))
        try Data(text.utf8).write(to: URL(fileURLWithPath: real + "/run.sh"))
        #expect(try runShell(real + "/run.sh") == 0)
        let out = try String(contentsOfFile: real + "/o.txt", encoding: .utf8)
        #expect(out == "it's a  test\n\(real)\n")
    }

    @Test func runScriptPassesTheExitStatus() throws {
        let dir = try TempDir()
        let r = try resolve(makePlan(["main.py"], run: .shell("exit 7")))
        try Data(try #require(PhaseResolver.runScript(r, workspace: "/workspace")).utf8).write(to: URL(fileURLWithPath: dir.path + "/run.sh"))
        #expect(try runShell(dir.path + "/run.sh") == 7)
    }
}

/// Runs `/bin/sh script` from `/`, without the variables the script should set itself; returns the exit status.
private func runShell(_ script: String) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = [script]
    process.currentDirectoryURL = URL(fileURLWithPath: "/")
    var env = ProcessInfo.processInfo.environment
    for key in ["PIP_CACHE_DIR", "VIRTUAL_ENV", "OUT", "GREETING", "CDPATH"] { env.removeValue(forKey: key) }
    process.environment = env
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

private func realpathString(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}
