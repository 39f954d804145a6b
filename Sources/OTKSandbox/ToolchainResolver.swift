import Foundation
import OTKConfig
import OTKModel

/// A program a phase needs, found on the host, with what the sandbox must see of it.
public struct ToolchainBinding: Sendable, Equatable, Codable {
    public var tool: String
    /// Where PATH found it (a shim, perhaps).
    public var found: String
    /// The real program, every shim and symlink followed.
    public var real: String
    /// The host directory (or single file) bound read-only at the same path; nil when the
    /// profile already shows it (under /usr).
    public var bind: String?
    /// A directory put in front of PATH in the sandbox, so that the program and its siblings
    /// (pip next to python3, rustc next to cargo) come from this installation.
    public var pathEntry: String?
    /// How a shim was followed: "pyenv 3.11.7", "rustup stable-x86_64-unknown-linux-gnu".
    public var via: String?

    enum CodingKeys: String, CodingKey {
        case tool, found, real, bind, via
        case pathEntry = "path_entry"
    }
}

/// Finds the toolchains of a stack variant on the host: through the host's PATH, following
/// pyenv's and rustup's shims to the real installation (a shim only dispatches, by files and
/// variables the sandbox must not see), and decides the one directory to bind read-only.
/// Only that installation is bound, never a home directory around it.
public struct ToolchainResolver: Sendable {
    public var host: HostFileSystem
    public var environment: [String: String]
    /// The directories the profile already shows (read-only binds); tools below them need no bind.
    public var visible: [String]
    /// The sandbox's own PATH, to know whether a tool's directory must be added.
    public var sandboxPath: [String]

    public init(host: HostFileSystem = RealHostFileSystem(), environment: [String: String] = ProcessInfo.processInfo.environment,
                visible: [String], sandboxPath: [String]) {
        self.host = host
        self.environment = environment
        self.visible = visible
        self.sandboxPath = sandboxPath
    }

    var home: String { environment["HOME"] ?? (geteuid() == 0 ? "/root" : "/") }

    /// Resolves every tool; the first missing one is an error with the stack's install hint.
    public func resolve(_ tools: [String], hints: [String: String], for what: String) throws(OTKError) -> [ToolchainBinding] {
        var out: [ToolchainBinding] = []
        for tool in tools {
            out.append(try resolve(tool, hint: hints[tool], for: what))
        }
        return out
    }

    public func resolve(_ tool: String, hint: String?, for what: String) throws(OTKError) -> ToolchainBinding {
        let dirs = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
        var skip = Set<String>()
        while true {
            guard let (found, dir) = firstOnPath(tool, dirs.filter { !skip.contains($0) }) else {
                throw OTKError(.badInput, "\(what) needs `\(tool)`, and it is not on PATH (\(dirs.joined(separator: ":")))",
                               remedy: hint ?? "install it")
            }
            if let pyenv = pyenvRoot(shimDirectory: dir) {
                switch try followPyenv(tool, root: pyenv, what: what) {
                case .system:
                    // pyenv's "system" means: whatever PATH finds without pyenv.
                    skip.insert(dir)
                    continue
                case .found(let path, let version):
                    return try binding(tool, found: found, path: path, via: "pyenv \(version)")
                }
            }
            if let real = host.realPath(found), (real as NSString).lastPathComponent == "rustup", tool != "rustup" {
                let (path, toolchain) = try followRustup(tool, what: what)
                return try binding(tool, found: found, path: path, via: "rustup \(toolchain)")
            }
            return try binding(tool, found: found, path: found, via: nil)
        }
    }

    func firstOnPath(_ tool: String, _ dirs: [String]) -> (String, String)? {
        for dir in dirs {
            let candidate = dir + "/" + tool
            guard let real = host.realPath(candidate), host.kind(of: real) == .file, access(real, X_OK) == 0 else { continue }
            return (candidate, dir)
        }
        return nil
    }

    func binding(_ tool: String, found: String, path: String, via: String?) throws(OTKError) -> ToolchainBinding {
        guard let real = host.realPath(path) else {
            throw OTKError(.badInput, "`\(tool)` (\(path)) cannot be resolved to a real file")
        }
        let realDir = (real as NSString).deletingLastPathComponent
        let foundDir = (found as NSString).deletingLastPathComponent
        if isVisible(real) {
            // Already in the sandbox; only its directory may be missing from the sandbox's PATH.
            let entry = isVisible(foundDir) && via == nil ? foundDir : realDir
            return ToolchainBinding(tool: tool, found: found, real: real, bind: nil,
                                    pathEntry: sandboxPath.contains(entry) ? nil : entry, via: via)
        }
        // The installation is the directory above bin/, unless that is a home directory or a
        // shared prefix such as ~/.local: then only the program itself.
        var bind = real
        if (realDir as NSString).lastPathComponent == "bin" {
            let root = (realDir as NSString).deletingLastPathComponent
            if !isHomeOrSharedPrefix(root) { bind = root }
        }
        // Its directory goes on PATH even when only the program is bound, or the phase could not run it by name.
        return ToolchainBinding(tool: tool, found: found, real: real, bind: bind, pathEntry: realDir, via: via)
    }

    func isVisible(_ path: String) -> Bool {
        visible.contains { path == $0 || path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }
    }

    /// Home directories and the prefixes many programs share inside them: never bound whole.
    func isHomeOrSharedPrefix(_ dir: String) -> Bool {
        let homes = [home, "/root"]
        if dir == "/" || homes.contains(dir) || dir.hasSuffix("/.local") { return true }
        let parts = dir.split(separator: "/")
        return parts.count <= 2 && parts.first == "home"
    }

    // MARK: pyenv

    enum PyenvChoice {
        case system
        case found(String, String)
    }

    /// PYENV_ROOT (or ~/.pyenv) when `dir` is its shims directory.
    func pyenvRoot(shimDirectory dir: String) -> String? {
        let root = environment["PYENV_ROOT"] ?? home + "/.pyenv"
        let shims = root + "/shims"
        guard dir == shims || host.realPath(dir) == host.realPath(shims) else { return nil }
        return root
    }

    /// The version pyenv would run: PYENV_VERSION, else `$PYENV_ROOT/version`, else "system".
    /// Project-local `.python-version` files are not consulted: the plan's files must not choose host paths.
    func followPyenv(_ tool: String, root: String, what: String) throws(OTKError) -> PyenvChoice {
        var versions: [String] = []
        if let v = environment["PYENV_VERSION"], !v.isEmpty {
            versions = v.split(separator: ":").map(String.init)
        } else if let text = try? String(contentsOfFile: root + "/version", encoding: .utf8) {
            versions = text.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\t" }).map(String.init).filter { !$0.hasPrefix("#") }
        }
        if versions.isEmpty { versions = ["system"] }
        for version in versions {
            if version == "system" { return .system }
            guard !version.contains("/"), version != "..", version != "." else { continue }
            let path = root + "/versions/" + version + "/bin/" + tool
            if host.realPath(path) != nil { return .found(path, version) }
        }
        throw OTKError(.badInput, "\(what) needs `\(tool)`: PATH finds pyenv's shim, and pyenv's version (\(versions.joined(separator: ", "))) has no `\(tool)` in \(root)/versions",
                       remedy: "pyenv install the version, or set PYENV_VERSION to one that has it")
    }

    // MARK: rustup

    /// The toolchain rustup would run: RUSTUP_TOOLCHAIN, else `default_toolchain` in settings.toml.
    /// Directory overrides and rust-toolchain files are not consulted, for the same reason as above.
    func followRustup(_ tool: String, what: String) throws(OTKError) -> (String, String) {
        let rustupHome = environment["RUSTUP_HOME"] ?? home + "/.rustup"
        var name = environment["RUSTUP_TOOLCHAIN"] ?? ""
        if name.isEmpty, let text = try? String(contentsOfFile: rustupHome + "/settings.toml", encoding: .utf8),
           let document = try? ConfigDocument.parse(text, file: rustupHome + "/settings.toml"),
           case .string(let value)? = document.root["default_toolchain"] {
            name = value
        }
        guard !name.isEmpty, !name.contains("/"), name != "..", name != "." else {
            throw OTKError(.badInput, "\(what) needs `\(tool)`: PATH finds rustup's proxy, and rustup has no default toolchain",
                           remedy: "rustup default stable, or set RUSTUP_TOOLCHAIN")
        }
        let toolchains = rustupHome + "/toolchains"
        var candidates = [name]
        // "stable" is stored under its full name, with the host's triple.
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: toolchains) {
            candidates += entries.sorted().filter { $0.hasPrefix(name + "-") }
        }
        for candidate in candidates {
            let path = toolchains + "/" + candidate + "/bin/" + tool
            if host.realPath(path) != nil { return (path, candidate) }
        }
        throw OTKError(.badInput, "\(what) needs `\(tool)`: rustup's toolchain `\(name)` has no `\(tool)` in \(toolchains)",
                       remedy: "rustup toolchain install \(name)")
    }
}
