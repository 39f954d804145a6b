import Foundation
import Testing

/// otk-launcher checks its spec before it creates anything: a malformed one is one
/// failure record at step `spec`, exit 127, and no sandbox.
@Suite struct LauncherSpecTests {
    static var hostIDs: (String, String) {
        geteuid() == 0 ? ("65534", "65534") : (String(geteuid()), String(getegid()))
    }

    /// A spec that runs /usr/bin/true with the least the launcher accepts.
    static func valid(dropping: Set<String> = [], extra: [[String]] = []) -> [[String]] {
        let (uid, gid) = hostIDs
        var ops: [[String]] = [["namespace", "user"], ["namespace", "mount"], ["namespace", "pid"],
                               ["uid", "1000", uid], ["gid", "1000", gid], ["setgroups", geteuid() == 0 ? "allow" : "deny"],
                               ["bind", "/usr", "/usr", "ro"], ["symlink", "usr/lib", "/lib"], ["symlink", "usr/lib64", "/lib64"],
                               ["arg", "/usr/bin/true"]]
        ops.removeAll { dropping.contains($0[0] == "namespace" ? "namespace " + $0[1] : $0[0]) }
        return ops + extra
    }

    static func encode(_ ops: [[String]], header: String = "otk-spec-1", end: String? = "end") -> Data {
        var tokens = [header] + ops.flatMap { $0 }
        if let end { tokens.append(end) }
        return Data(tokens.map { $0 + "\0" }.joined().utf8)
    }

    func launch(_ spec: Data) throws -> (exit: Int, records: [[String: Any]]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.repository + "/Tests/Fixtures/launch_raw.py", Paths.binDirectory + "/otk-launcher"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(spec)
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let doc = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (doc["exit"] as? Int ?? -1, doc["records"] as? [[String: Any]] ?? [])
    }

    @Test("a valid minimal spec runs the command and reports its exit")
    func validSpecRuns() throws {
        let (exit, records) = try launch(Self.encode(Self.valid()))
        #expect(exit == 0)
        #expect(records.count == 1)
        #expect(records.first?["step"] as? String == "exit")
        #expect(records.first?["value"] as? Int == 0)
    }

    static let malformed: [(String, Data, String)] = [
        ("empty", Data(), "not NUL-terminated"),
        ("no NUL at the end", Data("otk-spec-1\0end".utf8), "not NUL-terminated"),
        ("wrong header", encode(valid(), header: "otk-spec-2"), "no otk-spec-1 header"),
        ("no end marker", encode(valid(), end: nil), "no end marker"),
        ("data after end", encode(valid()) + Data("arg\0x\0".utf8), "data after end"),
        ("unknown operation", encode(valid(extra: [["frobnicate", "x"]])), "unknown launch operation `frobnicate`"),
        ("missing arguments", encode(valid() + [["bind", "/usr"]], end: nil), "missing arguments"),
        ("bind source with ..", encode(valid(extra: [["bind", "/usr/../etc", "/x", "ro"]])), "not a clean absolute path"),
        ("bind onto /", encode(valid(extra: [["bind", "/usr", "/", "ro"]])), "not a clean absolute path"),
        ("bad bind mode", encode(valid(extra: [["bind", "/usr", "/x", "rwx"]])), "bind mode"),
        ("relative symlink destination", encode(valid(extra: [["symlink", "a", "b"]])), "bad symlink"),
        ("bad tmpfs mode", encode(valid(extra: [["tmpfs", "/t", "1024", "99"]])), "bad tmpfs size or mode"),
        ("env without =", encode(valid(extra: [["env", "NOEQUALS"]])), "not NAME=VALUE"),
        ("host uid 0", encode(valid(dropping: ["uid"], extra: [["uid", "1000", "0"]])), "never be host uid or gid 0"),
        ("host uid 00", encode(valid(dropping: ["uid"], extra: [["uid", "1000", "00"]])), "never be host uid or gid 0"),
        ("no pid namespace", encode(valid(dropping: ["namespace pid"])), "user, mount and pid namespaces"),
        ("unknown namespace", encode(valid(extra: [["namespace", "time"]])), "unknown namespace"),
        ("no command", encode(valid(dropping: ["arg"])), "has no command"),
        ("no uid map", encode(valid(dropping: ["uid"])), "no uid or gid mapping"),
    ]

    @Test("a malformed spec is refused before any namespace exists", arguments: malformed.indices)
    func malformedSpec(index: Int) throws {
        let (name, spec, message) = Self.malformed[index]
        let (exit, records) = try launch(spec)
        #expect(exit == 127, "\(name)")
        #expect(records.count == 1, "\(name): \(records)")
        #expect(records.first?["step"] as? String == "spec", "\(name): \(records)")
        let detail = records.first?["detail"] as? String ?? ""
        #expect(detail.contains(message), "\(name): \(detail)")
    }
}
