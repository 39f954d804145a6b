import ArgumentParser
import Foundation
import OTKConfig
import OTKModel
import OTKSandbox

// Every command names itself: deriving a name from the type goes through
// String(describing:), whose runtime lookups cost milliseconds in a static binary.

/// otk: runs untrusted build plans in a sandbox.
struct OTK: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "otk",
        abstract: "A sandboxed build runner for plans written by coding agents.",
        subcommands: [Sandbox.self, ExecuteCommand.self, RunProjectCommand.self, DetectCommand.self, StacksCommand.self, ProfileCommand.self, DoctorCommand.self])
}

/// Prints an error the way every otk command does, and exits with its code.
func fail(_ error: OTKError) -> ExitCode {
    var line = "otk: error: "
    if let location = error.location { line += "\(location): " }
    line += error.message
    FileHandle.standardError.write(Data((line + "\n").utf8))
    if let remedy = error.remedy { FileHandle.standardError.write(Data("otk: hint: \(remedy)\n".utf8)) }
    return ExitCode(ExitCodes.code(for: error.kind))
}

func jsonString<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}

/// The result document, on a line of its own after whatever the command printed, so a command
/// that ends its output without a newline cannot make its own text part of otk's last line.
func printResult(_ result: SandboxResult) {
    print("\n" + jsonString(result))
}

func printWarnings(_ result: SandboxResult) {
    for warning in result.warnings { FileHandle.standardError.write(Data("otk: warning: \(warning)\n".utf8)) }
    let reasons = [
        "wall": "the wall-clock limit ended the run: every process got SIGTERM, and SIGKILL after the grace period (exit 124)",
        "memory": "the memory limit: the kernel's OOM killer killed a process of the sandbox",
        "pids": "the pids limit: the sandbox could not start more processes or threads",
        "file_size": "the file size limit: a write past it ended the process (SIGXFSZ)",
    ]
    if let limit = result.limit, let reason = reasons[limit] {
        FileHandle.standardError.write(Data("otk: limit: \(reason)\n".utf8))
    }
    printRefusals(result.network)
}

/// `--allow-host`, parsed as the flag is read: a bad pattern is a usage error that names the flag.
func allowHostPattern(_ text: String) throws -> HostPattern {
    switch HostPattern.parse(text) {
    case .success(let pattern): return pattern
    case .failure(let failure): throw ValidationError(failure.message)
    }
}

/// Every connection the egress proxy refused, so a failed download says why.
func printRefusals(_ network: SandboxResult.NetworkReport?, prefix: String = "otk") {
    guard let network else { return }
    for r in network.refused {
        let target = r.host.isEmpty ? "" : " " + NetworkAllowlist.authority(r.host, r.port)
        FileHandle.standardError.write(Data("\(prefix): network: refused \(r.method)\(target): \(r.reason ?? "refused")\n".utf8))
    }
    if network.dropped > 0 {
        FileHandle.standardError.write(Data("\(prefix): network: \(network.dropped) more connections were not recorded\n".utf8))
    }
}

func loader() -> ProfileLoader {
    ProfileLoader(searchPath: ProfileLoader.defaultSearchPath())
}

struct Sandbox: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sandbox", abstract: "Run commands in a sandbox.", subcommands: [Run.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run one command in a sandbox.",
            discussion: """
                The command's exit status is passed through (128+N when signal N ended it).
                otk's own failures: 2 bad input, 4 the sandbox could not be set up (nothing ran),
                124 the wall-clock limit ended it, 126/127 the command could not be executed or
                was not found in the sandbox.
                """)

        @Option(help: "Profile name or path to a profile file.")
        var profile = "strict"

        @Option(help: "Host directory mounted read-write as the profile's workspace (default: a fresh temporary directory, removed afterwards).")
        var workspace: String?

        @Option(name: .customLong("bind"), help: ArgumentHelp("Bind a host path read-write.", valueName: "SRC[:DST]"))
        var binds: [String] = []

        @Option(name: .customLong("ro-bind"), help: ArgumentHelp("Bind a host path read-only.", valueName: "SRC[:DST]"))
        var readOnlyBinds: [String] = []

        @Option(name: .customLong("env"), help: ArgumentHelp("Set a variable in the sandbox.", valueName: "NAME=VALUE"))
        var environment: [String] = []

        @Option(help: ArgumentHelp("The network, over the profile's: none (no interface up), loopback (a private loopback), proxy (a private loopback and otk's egress proxy to the allowed hosts only).", valueName: "MODE"))
        var net: String?

        @Option(name: .customLong("allow-host"), help: ArgumentHelp("With network proxy: also allow this host (`host`, `*.suffix`, a literal address; default ports 80 and 443). A literal loopback or private address is reachable only when allowed so.", valueName: "HOST[:PORT]"),
                transform: allowHostPattern)
        var allowHosts: [HostPattern] = []

        @Flag(help: "After the command, print one JSON result document as the last line of stdout.")
        var json = false

        @Option(help: ArgumentHelp("Also write the command's stdout and stderr to DIR/stdout.log and DIR/stderr.log (capped by limits.output).", valueName: "DIR"))
        var logs: String?

        @Flag(help: "Give the command your terminal as it is. By default a terminal stdin becomes /dev/null and terminal stdout/stderr become pipes otk relays: the command runs in a session of its own, where job control cannot stop it reading what you type at your shell.")
        var interactive = false

        @Argument(parsing: .postTerminator, help: "The command and its arguments, after `--`.")
        var command: [String] = []

        func validate() throws {
            if command.isEmpty { throw ValidationError("no command given: write it after `--`, e.g. otk sandbox run -- make test") }
            for entry in environment {
                guard let eq = entry.firstIndex(of: "="), EnvironmentName.isValid(String(entry[..<eq])) else {
                    throw ValidationError("--env `\(entry)` is not NAME=VALUE with a valid variable name")
                }
            }
            for entry in binds + readOnlyBinds where Self.splitBind(entry) == nil {
                throw ValidationError("bind `\(entry)` is not SRC or SRC:DST with absolute paths")
            }
            if let net, !["none", "loopback", "proxy"].contains(net) {
                throw ValidationError("--net `\(net)` is not one of none, loopback, proxy (the host's network is a profile's choice, never a flag's)")
            }
        }

        static func splitBind(_ s: String) -> (String, String)? {
            let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
            guard let source = parts.first, source.hasPrefix("/") else { return nil }
            let target = parts.count == 2 ? parts[1] : source
            guard target.hasPrefix("/") else { return nil }
            return (source, target)
        }

        func run() throws {
            let entered = DispatchTime.now().uptimeNanoseconds
            var loaded: LoadedProfile
            do { loaded = try loader().load(profile) } catch { throw fail(error) }
            if let net, let mode = NetworkMode(rawValue: net) {
                loaded.profile = loaded.profile.withNetwork(mode)
                do { loaded.sha256 = try ProfileLoader.hash(loaded.profile) } catch { throw fail(error) }
            }
            if !allowHosts.isEmpty && loaded.profile.network != .proxy {
                throw fail(OTKError(.badInput, "--allow-host needs network mode proxy, and profile `\(loaded.profile.name)` runs with `\(loaded.profile.network.rawValue)`",
                                    remedy: "add --net proxy"))
            }
            let profileLoaded = DispatchTime.now().uptimeNanoseconds
            var bindList: [(source: String, target: String, readOnly: Bool)] = []
            for (entries, ro) in [(binds, false), (readOnlyBinds, true)] {
                for entry in entries {
                    if let (s, t) = Self.splitBind(entry) { bindList.append((s, t, ro)) }
                }
            }
            // validate() has checked that each entry is NAME=VALUE.
            let env = environment.compactMap { e -> (String, String)? in
                guard let eq = e.firstIndex(of: "=") else { return nil }
                return (String(e[..<eq]), String(e[e.index(after: eq)...]))
            }
            let runner = SandboxRunner(supervisor: Supervisor(launcherPath: Supervisor.defaultLauncherPath()))
            if let logs {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: logs, isDirectory: &isDir), isDir.boolValue else {
                    throw fail(OTKError(.badInput, "--logs `\(logs)` is not a directory", remedy: "create it first"))
                }
            }
            var options = RunOptions(command: command, workspace: workspace, binds: bindList, environment: env, interactive: interactive,
                                     logDirectory: logs)
            options.allow = allowHosts.map { NetworkAllowlist.Entry(pattern: $0, source: "--allow-host") }
            do {
                let result = try runner.run(loaded, options)
                printWarnings(result)
                if ProcessInfo.processInfo.environment["OTK_TIMING"] == "1" {
                    let ms = { (a: UInt64, b: UInt64) in String(format: "%.2f", Double(b - a) / 1e6) }
                    FileHandle.standardError.write(Data("otk timing: profile \(ms(entered, profileLoaded)) ms, run \(ms(profileLoaded, DispatchTime.now().uptimeNanoseconds)) ms (launcher \(String(format: "%.2f", result.durationMs)) ms)\n".utf8))
                }
                if json { printResult(result) }
                if result.status != 0 { throw ExitCode(result.status) }
            } catch let failure as SandboxRunError {
                printWarnings(failure.result)
                if json { printResult(failure.result) }
                throw fail(failure.error)
            } catch let error as OTKError {
                throw fail(error)
            }
        }
    }
}

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "List, show and check sandbox profiles.", subcommands: [List.self, Show.self, Check.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the profiles in the search path.")
        func run() throws {
            let l = loader()
            for entry in l.list() {
                let description = (try? l.load(entry.path))?.profile.description ?? "(does not load: run `otk profile check \(entry.path)`)"
                print("\(entry.name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(description)\n\(String(repeating: " ", count: 13))\(entry.path)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the effective profile, after `extends`.")
        @Argument(help: "Profile name or file.") var profile: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let loaded: LoadedProfile
            do { loaded = try loader().load(profile) } catch { throw fail(error) }
            if let policy = SeccompResolver.policy(loaded.profile.seccomp) {
                do { _ = try SeccompCompiler.compile(policy) } catch { throw fail(error) }
            }
            if json {
                print(jsonString(loaded.profile))
                return
            }
            print(ProfileDescription.render(loaded))
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "check", abstract: "Validate a profile file; exit 2 with file:line on the first error.")
        @Argument(help: "Profile file or name.") var file: String

        func run() throws {
            do {
                let loaded = try loader().load(file)
                // The seccomp rule set is checked by compiling it: names are resolved by libseccomp.
                var note = ""
                if let policy = SeccompResolver.policy(loaded.profile.seccomp) {
                    let compiled = try SeccompCompiler.compile(policy)
                    if !compiled.skipped.isEmpty { note = "\nnote: calls libseccomp does not know, skipped: \(compiled.skipped.joined(separator: " "))" }
                }
                print("ok: \(loaded.profile.sources.first ?? file) (\(loaded.sha256))" + note)
            } catch {
                throw fail(error)
            }
        }
    }
}

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "doctor", abstract: "Report what this host supports and which profiles can run.")
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let report = Doctor(launcherPath: Supervisor.defaultLauncherPath(), loader: loader()).report()
        if json {
            print(jsonString(report))
        } else {
            for check in report.checks {
                print("\(check.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(check.name): \(check.detail)")
                if let remedy = check.remedy { print("         fix: \(remedy)") }
            }
            print("\nprofiles:")
            for p in report.profiles {
                print("  \(p.runnable ? "ok     " : "refused") \(p.name): \(p.detail)")
            }
        }
        if report.profiles.contains(where: { !$0.runnable }) && report.profiles.allSatisfy({ !$0.runnable }) {
            throw ExitCode(ExitCodes.isolationUnavailable)
        }
    }
}

// Usage errors are bad input, exit 2 like every other (ArgumentParser's own default is 64).
do {
    var command = try OTK.parseAsRoot()
    try command.run()
} catch {
    if OTK.exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data((OTK.fullMessage(for: error) + "\n").utf8))
        exit(ExitCodes.badInput)
    }
    OTK.exit(withError: error)
}
