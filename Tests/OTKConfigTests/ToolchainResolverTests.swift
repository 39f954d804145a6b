import Foundation
import OTKModel
import OTKSandbox
import Testing

/// A real directory tree in a fresh temporary directory, addressed by its canonical path.
final class ToolchainTree {
    let dir: FixtureDir
    /// The directory's canonical path (every symlink resolved), so that realpath(3) results compare equal.
    let root: String

    init() throws {
        dir = try FixtureDir()
        guard let real = realpath(dir.path, nil) else { throw CocoaError(.fileNoSuchFile) }
        root = String(cString: real)
        free(real)
    }

    /// Creates `rel` (and its parents) as a file with `mode`; returns its full path.
    @discardableResult
    func file(_ rel: String, _ text: String = "#!/bin/sh\nexit 0\n", mode: Int = 0o755) throws -> String {
        let path = root + "/" + rel
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// Creates `rel` as a symlink to `target` (as written); returns its full path.
    @discardableResult
    func symlink(_ rel: String, to target: String) throws -> String {
        let path = root + "/" + rel
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
        return path
    }

    func mkdir(_ rel: String) throws {
        try FileManager.default.createDirectory(atPath: root + "/" + rel, withIntermediateDirectories: true)
    }

    func path(_ rel: String) -> String { root + "/" + rel }
}

private let sandboxPATH = ["/usr/local/bin", "/usr/bin", "/bin"]

private func resolver(_ environment: [String: String], visible: [String] = ["/usr"], sandboxPath: [String] = sandboxPATH) -> ToolchainResolver {
    ToolchainResolver(host: RealHostFileSystem(), environment: environment, visible: visible, sandboxPath: sandboxPath)
}

@Suite("Toolchain resolution (ToolchainResolver)")
struct ToolchainResolverTests {
    // MARK: pyenv

    /// PYENV_ROOT with shims/python3, versions 3.11.7 and 3.12.1, and a `version` file.
    func pyenvTree(version: String? = "3.11.7\n") throws -> ToolchainTree {
        let t = try ToolchainTree()
        try t.file("pyenv/shims/python3", "#!/bin/sh\nexec pyenv exec python3 \"$@\"\n")
        try t.file("pyenv/shims/pip", "#!/bin/sh\nexec pyenv exec pip \"$@\"\n")
        try t.file("pyenv/versions/3.11.7/bin/python3.11")
        try t.symlink("pyenv/versions/3.11.7/bin/python3", to: "python3.11")
        try t.file("pyenv/versions/3.12.1/bin/python3")
        if let version { try t.file("pyenv/version", version, mode: 0o644) }
        try t.mkdir("home")
        return t
    }

    func pyenvEnvironment(_ t: ToolchainTree, path extra: [String] = [], _ more: [String: String] = [:]) -> [String: String] {
        var env = ["PATH": ([t.path("pyenv/shims")] + extra + ["/usr/bin", "/bin"]).joined(separator: ":"),
                   "PYENV_ROOT": t.path("pyenv"), "HOME": t.path("home")]
        env.merge(more) { $1 }
        return env
    }

    @Test func pyenvShimIsFollowedToTheVersionFromTheVersionFile() throws {
        let t = try pyenvTree()
        let b = try resolver(pyenvEnvironment(t)).resolve("python3", hint: "install Python", for: "python/venv")
        #expect(b.tool == "python3")
        #expect(b.found == t.path("pyenv/shims/python3"))
        #expect(b.real == t.path("pyenv/versions/3.11.7/bin/python3.11"))
        #expect(b.bind == t.path("pyenv/versions/3.11.7"))
        #expect(b.pathEntry == t.path("pyenv/versions/3.11.7/bin"))
        #expect(b.via == "pyenv 3.11.7")
    }

    @Test func pyenvRootDefaultsToHomeDotPyenv() throws {
        let t = try ToolchainTree()
        try t.file("home/.pyenv/shims/python3")
        try t.file("home/.pyenv/versions/3.10.4/bin/python3")
        try t.file("home/.pyenv/version", "3.10.4\n", mode: 0o644)
        let env = ["PATH": t.path("home/.pyenv/shims") + ":/usr/bin", "HOME": t.path("home")]
        let b = try resolver(env).resolve("python3", hint: nil, for: "x")
        #expect(b.real == t.path("home/.pyenv/versions/3.10.4/bin/python3"))
        #expect(b.bind == t.path("home/.pyenv/versions/3.10.4"))
    }

    @Test func pyenvVersionVariableWinsOverTheFile() throws {
        let t = try pyenvTree()
        let b = try resolver(pyenvEnvironment(t, path: [], ["PYENV_VERSION": "3.12.1"])).resolve("python3", hint: nil, for: "x")
        #expect(b.real == t.path("pyenv/versions/3.12.1/bin/python3"))
        #expect(b.bind == t.path("pyenv/versions/3.12.1"))
        #expect(b.pathEntry == t.path("pyenv/versions/3.12.1/bin"))
        #expect(b.via == "pyenv 3.12.1")
    }

    @Test func pyenvVersionListTakesTheFirstThatHasTheTool() throws {
        let t = try pyenvTree()
        let b = try resolver(pyenvEnvironment(t, path: [], ["PYENV_VERSION": "3.9.1:3.12.1"])).resolve("python3", hint: nil, for: "x")
        #expect(b.via == "pyenv 3.12.1")
    }

    @Test func pyenvVersionFileWithSeveralVersionsAndComments() throws {
        let t = try pyenvTree(version: "# pinned\n3.12.1\n3.11.7\n")
        let b = try resolver(pyenvEnvironment(t)).resolve("python3", hint: nil, for: "x")
        #expect(b.via == "pyenv 3.12.1")
    }

    @Test func pyenvSystemFallsThroughToTheNextPathEntry() throws {
        let t = try pyenvTree(version: "system\n")
        try t.file("opt/python/bin/python3")
        let b = try resolver(pyenvEnvironment(t, path: [t.path("opt/python/bin")])).resolve("python3", hint: nil, for: "x")
        #expect(b.found == t.path("opt/python/bin/python3"))
        #expect(b.real == t.path("opt/python/bin/python3"))
        #expect(b.bind == t.path("opt/python"))
        #expect(b.pathEntry == t.path("opt/python/bin"))
        #expect(b.via == nil)
    }

    @Test func pyenvWithoutVersionFileMeansSystem() throws {
        let t = try pyenvTree(version: nil)
        try t.file("sys/usr/bin/python3")
        let b = try resolver(pyenvEnvironment(t, path: [t.path("sys/usr/bin")]), visible: ["/usr", t.path("sys/usr")])
            .resolve("python3", hint: nil, for: "x")
        #expect(b.found == t.path("sys/usr/bin/python3"))
        #expect(b.bind == nil)
        #expect(b.pathEntry == t.path("sys/usr/bin"))
    }

    @Test func pyenvVersionVariableSystemFallsThroughToo() throws {
        let t = try pyenvTree()
        try t.file("opt/python/bin/python3")
        let b = try resolver(pyenvEnvironment(t, path: [t.path("opt/python/bin")], ["PYENV_VERSION": "system"]))
            .resolve("python3", hint: nil, for: "x")
        #expect(b.found == t.path("opt/python/bin/python3"))
    }

    @Test func pyenvSystemWithNothingElseOnPathIsMissing() throws {
        let t = try pyenvTree(version: "system\n")
        let env = ["PATH": t.path("pyenv/shims") + ":" + t.path("empty"), "PYENV_ROOT": t.path("pyenv"), "HOME": t.path("home")]
        let e = #expect(throws: OTKError.self) { _ = try resolver(env).resolve("python3", hint: "apt-get install python3", for: "python/venv") }
        #expect(e?.message.contains("`python3`") == true)
        #expect(e?.message.contains("not on PATH") == true)
        #expect(e?.remedy == "apt-get install python3")
    }

    @Test func pyenvMissingVersionIsAnErrorNamingIt() throws {
        let t = try pyenvTree(version: "3.10.0\n")
        let e = #expect(throws: OTKError.self) { _ = try resolver(pyenvEnvironment(t)).resolve("python3", hint: "h", for: "python/venv") }
        #expect(e?.kind == .badInput)
        #expect(e?.message.contains("3.10.0") == true)
        #expect(e?.message.contains("python/venv needs `python3`") == true)
        #expect(e?.remedy?.contains("pyenv install") == true)
    }

    @Test func pyenvVersionWithoutTheToolIsAnError() throws {
        let t = try pyenvTree(version: "3.12.1\n")
        let e = #expect(throws: OTKError.self) { _ = try resolver(pyenvEnvironment(t)).resolve("pip", hint: nil, for: "x") }
        #expect(e?.message.contains("3.12.1") == true)
        #expect(e?.message.contains("`pip`") == true)
    }

    @Test func pyenvVersionCannotEscapeTheVersionsDirectory() throws {
        let t = try pyenvTree()
        try t.file("evil/bin/python3")
        let e = #expect(throws: OTKError.self) {
            _ = try resolver(pyenvEnvironment(t, path: [], ["PYENV_VERSION": "../../evil"])).resolve("python3", hint: nil, for: "x")
        }
        #expect(e?.message.contains("../../evil") == true)
        let dots = #expect(throws: OTKError.self) {
            _ = try resolver(pyenvEnvironment(t, path: [], ["PYENV_VERSION": ".."])).resolve("python3", hint: nil, for: "x")
        }
        #expect(dots != nil)
    }

    @Test func pyenvShimsFoundThroughASymlinkedPathEntry() throws {
        let t = try pyenvTree()
        try t.symlink("link-to-shims", to: t.path("pyenv/shims"))
        var env = pyenvEnvironment(t)
        env["PATH"] = t.path("link-to-shims") + ":/usr/bin"
        let b = try resolver(env).resolve("python3", hint: nil, for: "x")
        #expect(b.via == "pyenv 3.11.7")
        #expect(b.bind == t.path("pyenv/versions/3.11.7"))
    }

    // MARK: rustup

    /// RUSTUP_HOME with settings.toml and two toolchains; CARGO bin with cargo and rustc -> rustup.
    func rustupTree(defaultToolchain: String? = "stable-x86_64-unknown-linux-gnu") throws -> ToolchainTree {
        let t = try ToolchainTree()
        if let defaultToolchain {
            try t.file("rustup/settings.toml", "version = \"12\"\ndefault_toolchain = \"\(defaultToolchain)\"\nprofile = \"minimal\"\n", mode: 0o644)
        }
        for toolchain in ["stable-x86_64-unknown-linux-gnu", "nightly-2024-05-01-x86_64-unknown-linux-gnu"] {
            try t.file("rustup/toolchains/\(toolchain)/bin/cargo")
            try t.file("rustup/toolchains/\(toolchain)/bin/rustc")
        }
        try t.file("cargo/bin/rustup", "#!/bin/sh\necho rustup proxy\n")
        try t.symlink("cargo/bin/cargo", to: "rustup")
        try t.symlink("cargo/bin/rustc", to: t.path("cargo/bin/rustup"))
        try t.mkdir("home")
        return t
    }

    func rustupEnvironment(_ t: ToolchainTree, _ more: [String: String] = [:]) -> [String: String] {
        var env = ["PATH": t.path("cargo/bin") + ":/usr/bin:/bin", "RUSTUP_HOME": t.path("rustup"), "HOME": t.path("home")]
        env.merge(more) { $1 }
        return env
    }

    @Test func rustupProxyIsFollowedToTheDefaultToolchain() throws {
        let t = try rustupTree()
        let stable = "rustup/toolchains/stable-x86_64-unknown-linux-gnu"
        let bindings = try resolver(rustupEnvironment(t)).resolve(["cargo", "rustc"], hints: ["cargo": "h"], for: "rust/cargo")
        #expect(bindings.count == 2)
        let cargo = bindings[0]
        #expect(cargo.tool == "cargo")
        #expect(cargo.found == t.path("cargo/bin/cargo"))
        #expect(cargo.real == t.path(stable + "/bin/cargo"))
        #expect(cargo.bind == t.path(stable))
        #expect(cargo.pathEntry == t.path(stable + "/bin"))
        #expect(cargo.via == "rustup stable-x86_64-unknown-linux-gnu")
        // An absolute symlink to the proxy is followed the same way.
        #expect(bindings[1].real == t.path(stable + "/bin/rustc"))
        #expect(bindings[1].bind == t.path(stable))
    }

    @Test func rustupToolchainVariableWins() throws {
        let t = try rustupTree()
        let b = try resolver(rustupEnvironment(t, ["RUSTUP_TOOLCHAIN": "nightly-2024-05-01-x86_64-unknown-linux-gnu"]))
            .resolve("cargo", hint: nil, for: "x")
        #expect(b.bind == t.path("rustup/toolchains/nightly-2024-05-01-x86_64-unknown-linux-gnu"))
        #expect(b.via == "rustup nightly-2024-05-01-x86_64-unknown-linux-gnu")
    }

    @Test func rustupShortNameMatchesTheFullDirectory() throws {
        let t = try rustupTree(defaultToolchain: "stable")
        let b = try resolver(rustupEnvironment(t)).resolve("cargo", hint: nil, for: "x")
        #expect(b.bind == t.path("rustup/toolchains/stable-x86_64-unknown-linux-gnu"))
        #expect(b.via == "rustup stable-x86_64-unknown-linux-gnu")
        let n = try resolver(rustupEnvironment(t, ["RUSTUP_TOOLCHAIN": "nightly-2024-05-01"])).resolve("cargo", hint: nil, for: "x")
        #expect(n.bind == t.path("rustup/toolchains/nightly-2024-05-01-x86_64-unknown-linux-gnu"))
    }

    @Test func rustupHomeDefaultsToHomeDotRustup() throws {
        let t = try ToolchainTree()
        try t.file("home/.rustup/settings.toml", "default_toolchain = \"stable-aarch64-unknown-linux-gnu\"\n", mode: 0o644)
        try t.file("home/.rustup/toolchains/stable-aarch64-unknown-linux-gnu/bin/cargo")
        try t.file("home/.cargo/bin/rustup")
        try t.symlink("home/.cargo/bin/cargo", to: "rustup")
        let env = ["PATH": t.path("home/.cargo/bin") + ":/usr/bin", "HOME": t.path("home")]
        let b = try resolver(env).resolve("cargo", hint: nil, for: "x")
        #expect(b.bind == t.path("home/.rustup/toolchains/stable-aarch64-unknown-linux-gnu"))
    }

    @Test func rustupMissingToolchainIsAnError() throws {
        let t = try rustupTree()
        let e = #expect(throws: OTKError.self) {
            _ = try resolver(rustupEnvironment(t, ["RUSTUP_TOOLCHAIN": "beta"])).resolve("cargo", hint: nil, for: "rust/cargo")
        }
        #expect(e?.message.contains("`beta`") == true)
        #expect(e?.remedy == "rustup toolchain install beta")
    }

    @Test func rustupWithoutDefaultToolchainIsAnError() throws {
        let t = try rustupTree(defaultToolchain: nil)
        let e = #expect(throws: OTKError.self) { _ = try resolver(rustupEnvironment(t)).resolve("cargo", hint: nil, for: "rust/cargo") }
        #expect(e?.message.contains("no default toolchain") == true)
    }

    @Test func rustupToolchainCannotEscapeTheToolchainsDirectory() throws {
        let t = try rustupTree()
        try t.file("evil/bin/cargo")
        let e = #expect(throws: OTKError.self) {
            _ = try resolver(rustupEnvironment(t, ["RUSTUP_TOOLCHAIN": "../../evil"])).resolve("cargo", hint: nil, for: "x")
        }
        #expect(e != nil)
    }

    @Test func rustupItselfIsNotFollowed() throws {
        let t = try rustupTree()
        let b = try resolver(rustupEnvironment(t)).resolve("rustup", hint: nil, for: "x")
        #expect(b.real == t.path("cargo/bin/rustup"))
        #expect(b.via == nil)
    }

    // MARK: Binds

    @Test func toolUnderAVisibleDirectoryNeedsNoBind() throws {
        let t = try ToolchainTree()
        try t.file("sysroot/usr/bin/make")
        let env = ["PATH": t.path("sysroot/usr/bin"), "HOME": t.path("home")]
        let b = try resolver(env, visible: [t.path("sysroot/usr")], sandboxPath: [t.path("sysroot/usr/bin")]).resolve("make", hint: nil, for: "x")
        #expect(b.bind == nil)
        #expect(b.pathEntry == nil)
        #expect(b.real == t.path("sysroot/usr/bin/make"))
        // Visible with a trailing slash too; then its directory is added to a PATH that lacks it.
        let c = try resolver(env, visible: [t.path("sysroot") + "/"], sandboxPath: sandboxPATH).resolve("make", hint: nil, for: "x")
        #expect(c.bind == nil)
        #expect(c.pathEntry == t.path("sysroot/usr/bin"))
    }

    @Test func visiblePrefixMatchesWholeComponentsOnly() throws {
        let t = try ToolchainTree()
        try t.file("usrlocal/bin/tool")
        let env = ["PATH": t.path("usrlocal/bin"), "HOME": t.path("home")]
        // `.../usr` does not make `.../usrlocal` visible.
        let b = try resolver(env, visible: [t.path("usr")]).resolve("tool", hint: nil, for: "x")
        #expect(b.bind == t.path("usrlocal"))
    }

    @Test func toolInHomeLocalBinBindsOnlyTheFile() throws {
        let t = try ToolchainTree()
        let tool = try t.file("home/.local/bin/uv")
        try t.file("home/.ssh/id_ed25519", "secret", mode: 0o600)
        let env = ["PATH": t.path("home/.local/bin") + ":/usr/bin", "HOME": t.path("home")]
        let b = try resolver(env).resolve("uv", hint: nil, for: "python/uv")
        #expect(b.real == tool)
        #expect(b.bind == tool)
        #expect(b.bind != t.path("home/.local"))
        #expect(b.bind != t.path("home"))
        // The file alone is bound, so its directory must be on the sandbox's PATH for `uv` to be found.
        #expect(b.pathEntry == t.path("home/.local/bin"))
    }

    @Test func toolInHomeBinBindsOnlyTheFile() throws {
        let t = try ToolchainTree()
        let tool = try t.file("home/bin/poetry")
        let env = ["PATH": t.path("home/bin"), "HOME": t.path("home")]
        let b = try resolver(env).resolve("poetry", hint: nil, for: "x")
        #expect(b.bind == tool)
        #expect(b.pathEntry == t.path("home/bin"))
    }

    @Test func symlinkFromHomeLocalBinIntoAnInstallationBindsTheInstallation() throws {
        // pipx: ~/.local/bin/poetry -> ~/.local/share/pipx/venvs/poetry/bin/poetry
        let t = try ToolchainTree()
        let real = try t.file("home/.local/share/pipx/venvs/poetry/bin/poetry")
        try t.symlink("home/.local/bin/poetry", to: real)
        let env = ["PATH": t.path("home/.local/bin"), "HOME": t.path("home")]
        let b = try resolver(env).resolve("poetry", hint: nil, for: "x")
        #expect(b.found == t.path("home/.local/bin/poetry"))
        #expect(b.real == real)
        #expect(b.bind == t.path("home/.local/share/pipx/venvs/poetry"))
        #expect(b.pathEntry == t.path("home/.local/share/pipx/venvs/poetry/bin"))
    }

    @Test func toolInAnInstallationBinBindsTheInstallation() throws {
        let t = try ToolchainTree()
        try t.file("opt/go/bin/go")
        try t.file("opt/go/bin/gofmt")
        let env = ["PATH": t.path("opt/go/bin"), "HOME": t.path("home")]
        let b = try resolver(env).resolve("go", hint: nil, for: "go/modules")
        #expect(b.bind == t.path("opt/go"))
        #expect(b.pathEntry == t.path("opt/go/bin"))
        #expect(b.via == nil)
    }

    // MARK: PATH search

    @Test func missingToolIsAnErrorWithTheHint() throws {
        let t = try ToolchainTree()
        try t.mkdir("bin")
        let env = ["PATH": t.path("bin"), "HOME": t.path("home")]
        let e = #expect(throws: OTKError.self) {
            _ = try resolver(env).resolve(["zzz-no-such-tool"], hints: ["zzz-no-such-tool": "install it with apt-get install zzz"], for: "stack/variant")
        }
        #expect(e?.kind == .badInput)
        #expect(e?.message.contains("stack/variant needs `zzz-no-such-tool`") == true)
        #expect(e?.message.contains(t.path("bin")) == true)
        #expect(e?.remedy == "install it with apt-get install zzz")
        #expect(e?.description.contains("install it with apt-get install zzz") == true)
    }

    @Test func missingToolWithoutHint() throws {
        let t = try ToolchainTree()
        let e = #expect(throws: OTKError.self) {
            _ = try resolver(["PATH": t.path("nothing"), "HOME": t.path("home")]).resolve("zzz-no-such-tool", hint: nil, for: "x")
        }
        #expect(e?.remedy == "install it")
    }

    @Test func firstToolOnPathWinsAndNonExecutablesAreSkipped() throws {
        let t = try ToolchainTree()
        try t.file("a/bin/tool", mode: 0o644)
        try t.mkdir("b/bin/tool")
        try t.file("c/bin/tool")
        try t.file("d/bin/tool")
        let env = ["PATH": ["relative/bin", t.path("a/bin"), t.path("b/bin"), t.path("c/bin"), t.path("d/bin")].joined(separator: ":"),
                   "HOME": t.path("home")]
        let b = try resolver(env).resolve("tool", hint: nil, for: "x")
        #expect(b.found == t.path("c/bin/tool"))
        #expect(b.bind == t.path("c"))
    }

    @Test func danglingSymlinkOnPathIsSkipped() throws {
        let t = try ToolchainTree()
        try t.symlink("a/bin/tool", to: t.path("nowhere/tool"))
        try t.file("b/bin/tool")
        let env = ["PATH": t.path("a/bin") + ":" + t.path("b/bin"), "HOME": t.path("home")]
        let b = try resolver(env).resolve("tool", hint: nil, for: "x")
        #expect(b.found == t.path("b/bin/tool"))
    }

    @Test func resolveManyKeepsTheOrderAndStopsAtTheFirstMissing() throws {
        let t = try ToolchainTree()
        try t.file("opt/x/bin/one")
        try t.file("opt/x/bin/two")
        let env = ["PATH": t.path("opt/x/bin"), "HOME": t.path("home")]
        let both = try resolver(env).resolve(["two", "one"], hints: [:], for: "x")
        #expect(both.map(\.tool) == ["two", "one"])
        let e = #expect(throws: OTKError.self) {
            _ = try resolver(env).resolve(["one", "zzz-missing", "two"], hints: ["zzz-missing": "hint-z"], for: "x")
        }
        #expect(e?.remedy == "hint-z")
    }

    @Test func bindingEncodesPathEntryInSnakeCase() throws {
        let t = try ToolchainTree()
        try t.file("opt/go/bin/go")
        let b = try resolver(["PATH": t.path("opt/go/bin"), "HOME": t.path("home")]).resolve("go", hint: nil, for: "x")
        let json = String(decoding: try JSONEncoder().encode(b), as: UTF8.self)
        #expect(json.contains("\"path_entry\""))
    }
}
