import OTKModel
import Testing

@Suite("LaunchSpec.encoded")
struct LaunchSpecEncodingTests {
    /// Splits the wire form at NULs; the last token is followed by a NUL, so the final piece is empty.
    func tokens(_ bytes: [UInt8]) -> [String] {
        bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func emptySpecIsHeaderAndEnd() throws {
        let bytes = try LaunchSpec(operations: [], layers: []).encoded()
        #expect(bytes == Array("otk-spec-1\0end\0".utf8))
    }

    @Test func framingAndTokens() throws {
        let spec = LaunchSpec(operations: [
            .namespace(.user), .uidMap(inside: 1000, host: 4242), .setgroups(allow: false), .loopback,
            .rootSize(8 << 20),
            .bind(source: "/usr", target: "/usr", readOnly: true, optional: false),
            .bind(source: "/a b", target: "/c", readOnly: false, optional: true),
            .tmpfs(path: "/tmp", sizeBytes: 1024, mode: 0o1777),
            .directory("/d", mode: 0o755),
            .symlink(target: "usr/bin", path: "/bin"),
            .file(path: "/etc/hosts", mode: 0o644, content: "line1\nline2\n"),
            .mask("/proc/kcore"), .readOnly("/proc/sys"), .rootReadOnly,
            .env("A=1"), .arg(""), .arg("x"), .cwd("/workspace"),
        ], layers: ["ignored"])
        let bytes = try spec.encoded()
        #expect(bytes.starts(with: Array("otk-spec-1\0".utf8)))
        #expect(Array(bytes.suffix(4)) == Array("end\0".utf8))
        #expect(tokens(bytes) == [
            "otk-spec-1",
            "namespace", "user",
            "uid", "1000", "4242",
            "setgroups", "deny",
            "loopback",
            "root-size", "8388608",
            "bind", "/usr", "/usr", "ro",
            "bind", "/a b", "/c", "rw,try",
            "tmpfs", "/tmp", "1024", "1777",
            "dir", "/d", "755",
            "symlink", "usr/bin", "/bin",
            "file", "/etc/hosts", "644", "line1\nline2\n",
            "mask", "/proc/kcore",
            "readonly", "/proc/sys",
            "root-readonly",
            "env", "A=1",
            "arg", "", "arg", "x",
            "cwd", "/workspace",
            "end", "",
        ])
    }

    @Test func remainingOperationNames() throws {
        let spec = LaunchSpec(operations: [
            .gidMap(inside: 1, host: 2), .setgroups(allow: true), .hostname("h"), .denyUserNamespaces,
            .proc("/proc"), .dev("/dev"), .namespace(.cgroup),
        ], layers: [])
        #expect(tokens(try spec.encoded()) == [
            "otk-spec-1", "gid", "1", "2", "setgroups", "allow", "hostname", "h", "deny-userns",
            "proc", "/proc", "dev", "/dev", "namespace", "cgroup", "end", "",
        ])
    }

    @Test(arguments: [
        LaunchOperation.arg("a\0b"),
        .env("A=\0"),
        .file(path: "/etc/x", mode: 0o644, content: "x\0y"),
        .bind(source: "/a\0", target: "/b", readOnly: true, optional: false),
        .cwd("\0"),
    ])
    func nulInsideAValueThrows(op: LaunchOperation) {
        let spec = LaunchSpec(operations: [.arg("ok"), op], layers: [])
        let error = #expect(throws: OTKError.self) { _ = try spec.encoded() }
        #expect(error?.kind == .badInput)
        #expect(error?.message.contains("NUL") == true)
    }

    @Test func unicodeIsEncodedAsUTF8() throws {
        let bytes = try LaunchSpec(operations: [.arg("é")], layers: []).encoded()
        #expect(bytes == Array("otk-spec-1\0arg\0".utf8) + [0xC3, 0xA9, 0] + Array("end\0".utf8))
    }
}
