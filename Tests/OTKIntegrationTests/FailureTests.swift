import Foundation
import Testing

/// Every way a launch is refused: the exit code and the one-line message.
@Suite struct FailureTests {
    @Test("a missing bind source is refused before anything runs (exit 2)")
    func missingBindSource() throws {
        let marker = try TemporaryDirectory()
        let result = try run([Paths.otk, "sandbox", "run", "--ro-bind", "/nonexistent/otk-x:/opt/x", "--", "/bin/sh", "-c", "touch /workspace/ran"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("bind source `/nonexistent/otk-x` does not exist"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker.path + "/ran"))
    }

    @Test("a profile bind source that is missing names the profile's file and line")
    func missingProfileBindSource() throws {
        let dir = try TemporaryDirectory()
        let file = dir.path + "/mine.toml"
        try "schema = 1\nextends = \"strict\"\n[filesystem]\nread_only = [\n  \"/usr\",\n  \"/no/such/otk-dir\",\n]\n".write(toFile: file, atomically: false, encoding: .utf8)
        let result = try run([Paths.otk, "sandbox", "run", "--profile", file, "--", "true"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(file):6: bind source `/no/such/otk-dir` does not exist"), "\(result.stderr)")
    }

    @Test("a bad profile is refused with file and line (exit 2)")
    func badProfile() throws {
        let dir = try TemporaryDirectory()
        let file = dir.path + "/bad.toml"
        try "schema = 1\n[network]\nmode = \"none\"\nallow_everything = true\n".write(toFile: file, atomically: false, encoding: .utf8)
        for argv in [[Paths.otk, "sandbox", "run", "--profile", file, "--", "true"], [Paths.otk, "profile", "check", file]] {
            let result = try run(argv)
            #expect(result.status == 2)
            #expect(result.stderr.contains("\(file):4: `network.allow_everything`: unknown key"), "\(result.stderr)")
        }
        let good = try run([Paths.otk, "profile", "check", "strict"])
        #expect(good.status == 0 && good.stdout.hasPrefix("ok: "), "\(good.stderr)")
    }

    @Test("a command that is not in the sandbox exits 127 with the reason")
    func commandNotFound() throws {
        let result = try run([Paths.otk, "sandbox", "run", "--", "otk-no-such-command"])
        #expect(result.status == 127)
        #expect(result.stderr.contains("command `otk-no-such-command` not found in the sandbox"), "\(result.stderr)")
    }

    @Test("as root, a root-owned workspace is refused: the sandbox never writes as host root")
    func rootOwnedWorkspace() throws {
        try #require(geteuid() == 0)
        let ws = try TemporaryDirectory()
        let result = try run([Paths.otk, "sandbox", "run", "--workspace", ws.path, "--", "true"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("is owned by root"), "\(result.stderr)")
    }

    @Test("without user namespaces the run refuses with exit 4, naming the layer and the fix; doctor agrees")
    func userNamespacesUnavailable() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"))
        let ws = try TemporaryDirectory(owner: 65534)
        // Inside a user namespace whose limit on nested user namespaces is 0, exactly as a locked-down host.
        let script = "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\""
        let result = try run(["/usr/bin/unshare", "--user", "--map-root-user", "/bin/sh", "-c", script, "sh",
                              Paths.otk, "sandbox", "run", "--workspace", ws.path, "--", "/bin/sh", "-c", "touch /workspace/ran"])
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("namespaces unavailable"), "\(result.stderr)")
        #expect(result.stderr.contains("max_user_namespaces"), "the hint should name the sysctl: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.path + "/ran"))

        let doctor = try run(["/usr/bin/unshare", "--user", "--map-root-user", "/bin/sh", "-c", script, "sh", Paths.otk, "doctor"])
        #expect(doctor.status == 4)
        #expect(doctor.stdout.contains("missing  user namespace"), "\(doctor.stdout)")
        #expect(doctor.stdout.contains("refused strict"), "\(doctor.stdout)")
    }

    @Test("doctor reports the host's layers and that the shipped profiles run")
    func doctorOnThisHost() throws {
        let result = try run([Paths.otk, "doctor"])
        #expect(result.status == 0, "\(result.stderr)")
        for name in ["user namespace", "net namespace", "cgroups", "seccomp", "landlock"] {
            #expect(result.stdout.contains(name), "doctor does not mention \(name)")
        }
        #expect(result.stdout.contains("ok      strict"))
        #expect(result.stdout.contains("ok      standard"))
    }
}

/// Command-line mistakes are bad input too.
@Suite struct UsageTests {
    @Test("usage errors exit 2 with the reason", arguments: [
        (["sandbox", "run"], "no command given"),
        (["sandbox", "run", "--env", "1X=y", "--", "true"], "--env `1X=y`"),
        (["sandbox", "run", "--bind", "relative/path", "--", "true"], "bind `relative/path`"),
        (["sandbox", "run", "--no-such-flag", "--", "true"], "no-such-flag"),
    ])
    func usageErrors(args: [String], message: String) throws {
        let result = try run([Paths.otk] + args)
        #expect(result.status == 2)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("the root of the sandbox is mode 0755 and read-only, /tmp is 1777")
    func rootMode() throws {
        let result = try run([Paths.otk, "sandbox", "run", "--", "/bin/sh", "-c", "stat -c '%a' / /tmp; touch /x 2>&1 || true"])
        #expect(result.stdout == "755\n1777\n" + "touch: cannot touch '/x': Read-only file system\n", "\(result.stdout)")
    }
}
