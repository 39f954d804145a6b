import OTKModel
import OTKSandbox
import Testing

/// `--bind` sources are resolved as written, one component at a time; a symlink met in a
/// directory inside the workspace is refused, however the path reaches it.
@Suite("SandboxRunner.resolveRefusingWorkspaceSymlinks")
struct BindSourceResolutionTests {
    // The workspace is /srv/ws; /alias -> /srv (outside), /srv/ws/evil -> /etc (inside), /lib -> usr/lib.
    static let host = FakeHost()
        .adding(dirs: "/srv", "/srv/ws", "/srv/ws/data", "/srv/shared", "/etc", "/usr", "/usr/lib", "/usr/lib/x")
        .adding(symlink: "/alias", to: "/srv", real: "/srv")
        .adding(symlink: "/srv/ws/evil", to: "/etc", real: "/etc")
        .adding(symlink: "/srv/ws/evil2", to: "/usr/lib/x", real: "/usr/lib/x")
        .adding(symlink: "/lib", to: "usr/lib", real: "/usr/lib")
        // A host symlink outside the workspace that points through the workspace's own symlink.
        .adding(symlink: "/outside", to: "/srv/ws/evil", real: "/etc")
        .adding(symlink: "/loop", to: "/loop", real: nil)
        // Names that start with a combining mark: Swift would glue them to the preceding `/`.
        .adding(symlink: "/srv/ws/\u{200D}results", to: "/etc", real: "/etc")
        .adding(dirs: "/srv/ws/\u{301}dir")
        .adding(symlink: "/srv/ws/\u{301}dir/link", to: "/etc", real: "/etc")

    func resolve(_ path: String) throws -> String {
        try SandboxRunner.resolveRefusingWorkspaceSymlinks(path, workspace: "/srv/ws", host: Self.host)
    }

    @Test func plainWorkspacePathsResolveToThemselves() throws {
        #expect(try resolve("/srv/ws/data") == "/srv/ws/data")
    }

    @Test func symlinksOutsideTheWorkspaceAreFollowed() throws {
        #expect(try resolve("/lib/x") == "/usr/lib/x")
        #expect(try resolve("/alias/shared") == "/srv/shared")
    }

    @Test(arguments: [
        "/srv/ws/evil",              // directly
        "/alias/ws/evil",            // through an alias of the workspace's parent
        "/srv/ws/evil2/../../shared", // a `..` after the workspace's symlink
        "/srv/ws/./evil",
        "/outside",                  // a host symlink whose target passes through the workspace's
        "/srv/ws/\u{200D}results",   // a zero-width joiner after the `/`
        "/srv/ws/\u{301}dir/link",   // a combining accent starting a directory's name
    ])
    func workspaceSymlinksAreRefused(path: String) throws {
        let error = try #require(throws: OTKError.self) { try resolve(path) }
        #expect(error.kind == .badInput)
        #expect(error.message.contains("goes through a symlink inside the workspace"), "\(error.message)")
    }

    @Test func symlinkLoopsAreBadInput() throws {
        let error = try #require(throws: OTKError.self) { try resolve("/loop") }
        #expect(error.message.contains("too many"))
    }

    @Test func missingComponentsAreBadInput() throws {
        let error = try #require(throws: OTKError.self) { try resolve("/srv/ws/nope") }
        #expect(error.message.contains("does not exist"))
    }

    @Test func dotDotOutsideTheWorkspaceIsLexicalOnResolvedPaths() throws {
        #expect(try resolve("/srv/ws/../shared") == "/srv/shared")
    }
}

/// Paths are bytes to the kernel; SandboxPath must see them the same way.
@Suite("SandboxPath on bytes")
struct SandboxPathByteTests {
    @Test func combiningMarksDoNotHideSeparators() {
        #expect(SandboxPath.components("/a/\u{200D}b") == ["a", "\u{200D}b"])
        #expect(SandboxPath.isWithin("/srv/ws/\u{301}dir/x", "/srv/ws"))
        #expect(SandboxPath.depth("/a/\u{200D}b") == 2)
        #expect(SandboxPath.parent("/a/\u{200D}b") == "/a")
    }

    @Test func dotDotIsFoundBehindACombiningMark() {
        #expect(!SandboxPath.isClean("/mnt/../\u{200D}x"))
        #expect(SandboxPath.isClean("/mnt/\u{200D}x"))
    }

    @Test func canonicallyEquivalentSpellingsAreDifferentPaths() {
        // "é" precomposed and "e" + combining acute are equal as Strings, not as paths.
        #expect("/caf\u{E9}" == "/cafe\u{301}")
        #expect(!SandboxPath.same("/caf\u{E9}", "/cafe\u{301}"))
    }
}
