import Crypto
import Foundation
import OTKModel

/// A profile ready to use, with the hash that identifies its effective content.
public struct LoadedProfile: Sendable {
    public var profile: Profile
    /// "sha256:" + hex of the canonical JSON of the effective profile (after `extends`):
    /// its name and every setting, not its description, comments or layout, so any
    /// change to what the profile does shows, and reformatting does not.
    public var sha256: String

    public init(profile: Profile, sha256: String) {
        self.profile = profile
        self.sha256 = sha256
    }
}

/// Finds profiles by name or path and resolves `extends`.
public struct ProfileLoader: Sendable {
    /// Directories searched for `NAME.toml`, in order.
    public var searchPath: [String]

    /// How deep `extends` may nest before otk calls it a mistake.
    public static let maximumDepth = 8

    public init(searchPath: [String]) {
        self.searchPath = searchPath
    }

    /// The default search path: $OTK_PROFILE_PATH (colon-separated), then the
    /// `profiles/` directory of the checkout or installation the executable belongs
    /// to, then /etc/otk/profiles. The executable is found through /proc/self/exe, never
    /// argv[0], which would make the current directory a source of profiles.
    public static func defaultSearchPath(environment: [String: String] = ProcessInfo.processInfo.environment,
                                         executable: String = runningExecutable()) -> [String] {
        searchPath(for: "profiles", variable: "OTK_PROFILE_PATH", environment: environment, executable: executable)
    }

    /// $VARIABLE (colon-separated), then the `NAME/` directory of the checkout or installation the
    /// executable belongs to (`NAME/` or `share/otk/NAME/` up to five levels above it), then /etc/otk/NAME.
    public static func searchPath(for name: String, variable: String, environment: [String: String], executable: String) -> [String] {
        var dirs: [String] = []
        if let extra = environment[variable] {
            dirs += extra.split(separator: ":").map(String.init)
        }
        var dir = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<(executable.hasPrefix("/") ? 5 : 0) {
            for candidate in [name, "share/otk/" + name] {
                let path = dir.appendingPathComponent(candidate).path
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue, !dirs.contains(path) {
                    dirs.append(path)
                }
            }
            dir.deleteLastPathComponent()
        }
        dirs.append("/etc/otk/" + name)
        return dirs
    }

    /// The absolute path of the running executable, or "" when the kernel does not say.
    public static func runningExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    }

    /// Whether `reference` names a file rather than a profile in the search path.
    public static func isPath(_ reference: String) -> Bool {
        reference.contains("/") || reference.hasSuffix(".toml")
    }

    /// Loads a profile by name (`strict`) or by file path (`./mine.toml`).
    public func load(_ reference: String) throws(OTKError) -> LoadedProfile {
        let file = try locate(reference, from: nil)
        var chain: [ConfigDocument] = []
        var seen: [String] = []
        var next: String? = file
        while let path = next {
            if seen.contains(path) {
                throw OTKError(.badInput, "`extends` forms a cycle: \((seen + [path]).joined(separator: " -> "))",
                               location: SourceLocation(file: seen.last ?? path, line: chain.last?.locator.line(of: ["extends"])))
            }
            if seen.count == Self.maximumDepth {
                throw OTKError(.badInput, "`extends` nests deeper than \(Self.maximumDepth) profiles", location: SourceLocation(file: path, line: nil))
            }
            seen.append(path)
            let document = try ConfigDocument.parse(try Self.read(path), file: path)
            chain.append(document)
            next = nil
            if let value = document.root["extends"] {
                guard case .string(let parent) = value, !parent.isEmpty else {
                    throw OTKError(.badInput, "`extends` must name a profile (a string)",
                                   location: SourceLocation(file: path, line: document.locator.line(of: ["extends"])))
                }
                do {
                    next = try locate(parent, from: path)
                } catch {
                    var e = error
                    e.location = SourceLocation(file: path, line: document.locator.line(of: ["extends"]))
                    throw e
                }
            }
        }
        let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        var profile = try ProfileDecoder.decode(LayeredConfig(layers: chain), name: name)
        if let path = profile.seccomp.importPath {
            let resolved = URL(fileURLWithPath: path).standardizedFileURL.path
            profile.seccomp.importPath = resolved
            let location = LayeredConfig(layers: chain).location(of: ["seccomp", "import"])
            profile.seccomp.imported = try Self.importSeccomp(resolved, referencedAt: location)
        }
        return LoadedProfile(profile: profile, sha256: try Self.hash(profile))
    }

    /// The profiles in the search path, by name; the first directory that has a name wins.
    public func list() -> [(name: String, path: String)] {
        Self.tomlFiles(in: searchPath)
    }

    /// The `NAME.toml` files of `searchPath`, by name; the first directory that has a name wins.
    static func tomlFiles(in searchPath: [String]) -> [(name: String, path: String)] {
        var seen = Set<String>()
        var out: [(String, String)] = []
        for dir in searchPath {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            for file in names.sorted() where file.hasSuffix(".toml") {
                let name = String(file.dropLast(5))
                if seen.insert(name).inserted { out.append((name, dir + "/" + file)) }
            }
        }
        return out
    }

    /// The SHA-256 of the profile's canonical JSON: keys sorted, no whitespace, sets
    /// sorted, file names and source locations left out.
    public static func hash(_ profile: Profile) throws(OTKError) -> String {
        sha256(CanonicalJSON.profile(profile))
    }

    /// "sha256:" + hex of the SHA-256 of `text`'s UTF-8 bytes.
    public static func sha256(_ text: String) -> String {
        let digest = SHA256.hash(data: Array(text.utf8))
        let hex: [Character] = Array("0123456789abcdef")
        var out = "sha256:"
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0f)])
        }
        return out
    }

    /// The hash of a seccomp policy's canonical JSON (actions, conditions, names; not comments or locations).
    public static func hash(_ policy: SeccompPolicy) -> String {
        sha256(CanonicalJSON.policy(policy))
    }

    private func locate(_ reference: String, from including: String?) throws(OTKError) -> String {
        if Self.isPath(reference) {
            var path = reference
            if !path.hasPrefix("/") {
                let base = including.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? FileManager.default.currentDirectoryPath
                path = URL(fileURLWithPath: base).appendingPathComponent(reference).standardizedFileURL.path
            }
            guard FileManager.default.fileExists(atPath: path) else {
                throw OTKError(.badInput, "no profile file `\(reference)`", remedy: "check the path")
            }
            return path
        }
        guard reference.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw OTKError(.badInput, "`\(reference)` is not a profile name (letters, digits, '-', '_') or a path to a .toml file")
        }
        // A profile that extends another by name looks in its own directory first.
        let dirs = (including.map { [URL(fileURLWithPath: $0).deletingLastPathComponent().path] } ?? []) + searchPath
        for dir in dirs {
            let path = dir + "/" + reference + ".toml"
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        let known = list().map(\.name).joined(separator: ", ")
        throw OTKError(.badInput, "no profile named `\(reference)`",
                       remedy: known.isEmpty ? "searched \(searchPath.joined(separator: ":")); set OTK_PROFILE_PATH" : "known profiles: \(known)")
    }

    /// The host facts a Docker profile's `includes`/`excludes` are decided on.
    public static var hostArchitecture: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "aarch64"
        #else
        return "unsupported"
        #endif
    }

    public static var hostKernel: (Int, Int) {
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return (numbers.first ?? 0, numbers.count > 1 ? numbers[1] : 0)
    }

    private static func importSeccomp(_ path: String, referencedAt location: SourceLocation?) throws(OTKError) -> SeccompPolicy {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OTKError(.badInput, "`seccomp.import`: cannot read the seccomp profile `\(path)`", remedy: "the path is relative to the profile file that names it", location: location)
        }
        if let size = attributes?[.size] as? Int, size > DockerSeccomp.maximumSize || data.count > DockerSeccomp.maximumSize {
            throw OTKError(.badInput, "seccomp profile is larger than \(DockerSeccomp.maximumSize) bytes", location: SourceLocation(file: path, line: nil))
        }
        return try DockerSeccomp.parse(Array(data), file: path, arch: hostArchitecture, kernel: hostKernel)
    }

    static func read(_ path: String) throws(OTKError) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes?[.size] as? Int, size > ConfigDocument.maximumSize {
            throw OTKError(.badInput, "file is larger than \(ConfigDocument.maximumSize) bytes", location: SourceLocation(file: path, line: nil))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OTKError(.badInput, "cannot read file", location: SourceLocation(file: path, line: nil))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw OTKError(.badInput, "file is not UTF-8 text", location: SourceLocation(file: path, line: nil))
        }
        return text
    }
}

/// The canonical JSON text of a profile, written out directly: this runs on every
/// launch, and the generic encoder costs milliseconds of runtime type lookups.
enum CanonicalJSON {
    static func profile(_ p: Profile) -> String {
        let fs = p.filesystem
        return object([
            ("environment", object([
                ("pass", array(p.environment.pass.map(string))),
                ("set", object(p.environment.set.sorted { $0.key < $1.key }.map { ($0.key, string($0.value)) })),
            ])),
            ("filesystem", object([
                ("dev", String(fs.dev)), ("etcFiles", String(fs.etcFiles)),
                ("hidden", array(fs.hidden.map(string))), ("proc", String(fs.proc)),
                ("readOnly", array(fs.readOnly.map(bind))), ("readWrite", array(fs.readWrite.map(bind))),
                ("rootReadOnly", String(fs.rootReadOnly)), ("rootSizeBytes", String(fs.rootSizeBytes)),
                ("tmpfs", array(fs.tmpfs.map { object([("mode", String($0.mode)), ("path", string($0.path)), ("sizeBytes", String($0.sizeBytes))]) })),
                ("workspace", string(fs.workspace)),
            ])),
            ("identity", object([("gid", String(p.identity.gid)), ("hostname", string(p.identity.hostname)),
                                 ("uid", String(p.identity.uid)), ("userName", string(p.identity.userName))])),
            ("landlock", landlock(p.landlock)),
            ("limits", limits(p.limits)),
            ("name", string(p.name)),
            ("namespaces", array(p.namespaces.sorted().map { string($0.rawValue) })),
            ("network", string(p.network.rawValue)),
        ] + (p.networkAllow.isEmpty ? [] : [("networkAllow", array(p.networkAllow.map { string($0.description) }))])
          + phaseAndPlan(p) + [
            ("seccomp", seccomp(p.seccomp)),
        ])
    }

    /// Written only when set, so that profiles without them keep the hash they always had.
    private static func phaseAndPlan(_ p: Profile) -> [(String, String)] {
        var out: [(String, String)] = []
        if !p.phaseNetwork.isEmpty {
            out.append(("phaseNetwork", object(p.phaseNetwork.sorted { $0.key < $1.key }.map { ($0.key, string($0.value.rawValue)) })))
        }
        if p.plan != PlanSizeLimits() {
            let opt = { (v: UInt64?) in v.map { String($0) } ?? "null" }
            out.append(("plan", object([("maxFileBytes", opt(p.plan.maxFileBytes)), ("maxFiles", opt(p.plan.maxFiles.map { UInt64($0) })),
                                        ("maxTotalBytes", opt(p.plan.maxTotalBytes))])))
        }
        return out
    }

    private static func limits(_ l: Limits) -> String {
        let opt = { (v: String?) in v ?? "null" }
        return object([
            ("cpus", opt(l.cpus.map { String($0) })), ("fileSizeBytes", opt(l.fileSizeBytes.map { String($0) })),
            ("graceSeconds", String(l.graceSeconds)), ("memoryBytes", opt(l.memoryBytes.map { String($0) })),
            ("openFiles", opt(l.openFiles.map { String($0) })), ("outputBytes", opt(l.outputBytes.map { String($0) })),
            ("pids", opt(l.pids.map { String($0) })), ("tmpSizeBytes", opt(l.tmpSizeBytes.map { String($0) })),
            ("wallSeconds", opt(l.wallSeconds.map { String($0) })),
        ])
    }

    private static func landlock(_ l: LandlockSettings) -> String {
        object([
            ("bindTCP", l.bindTCP.map { array($0.map { String($0) }) } ?? "null"),
            ("connectTCP", l.connectTCP.map { array($0.map { String($0) }) } ?? "null"),
            ("enforce", string(l.enforce.rawValue)),
            ("minimumABI", String(l.minimumABI)),
            ("writable", l.writable.map { array($0.map(string)) } ?? "null"),
        ])
    }

    /// The effective rule set, so an edit to an imported JSON file changes the profile's hash too.
    private static func seccomp(_ s: SeccompSettings) -> String {
        object([
            ("action", s.action.map { string($0.rawValue) } ?? "null"),
            ("allow", array(s.allow.map { string($0.name) })),
            ("deny", array(s.deny.map { string($0.name) })),
            ("enabled", String(s.enabled)),
            ("imported", s.imported.map(policy) ?? "null"),
        ])
    }

    static func policy(_ p: SeccompPolicy) -> String {
        object([
            ("defaultAction", string(p.defaultAction.description)),
            ("rules", array(p.rules.map { r in
                object([
                    ("action", string(r.action.description)),
                    ("conditions", array(r.conditions.map { string($0.description) })),
                    ("names", array(r.names.map(string))),
                ])
            })),
        ])
    }

    private static func bind(_ b: BindMount) -> String {
        object([("optional", String(b.optional)), ("source", string(b.source)), ("target", string(b.target))])
    }

    /// Members must already be in key order.
    private static func object(_ members: [(String, String)]) -> String {
        "{" + members.map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    private static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }

    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += "\\u00" + String(scalar.value, radix: 16).leftPad(2)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

private extension String {
    func leftPad(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
