import Foundation
import Testing

/// Real toolchains (gcc, python3 with a venv, node, make with ar) under the strict profile, with its
/// seccomp allowlist and Landlock ruleset on: each test builds or runs something real in a workspace
/// the test prepares, and asserts on the exact output, so a call the filter refuses shows up as a failure.
/// The last test is the control: the filter is really on for these toolchains, and off it answers differently.
@Suite struct ToolchainTests {
    /// A workspace the sandbox user can write, with files the test writes into it owned the same way.
    final class Workspace {
        let directory: TemporaryDirectory
        let owner: UInt32
        var path: String { directory.path }

        init(_ runner: Runner) throws {
            // otk maps the sandbox user to the invoking user, or to nobody when that user is root.
            owner = runner == .nobody || geteuid() == 0 ? 65534 : geteuid()
            directory = try TemporaryDirectory(owner: owner, prefix: "otk-it-tc-")
        }

        /// Writes `content` at `relative` (directories made as needed), owned by the sandbox user.
        func write(_ relative: String, _ content: String) throws {
            var made = path
            for part in relative.split(separator: "/").dropLast() {
                made += "/" + part
                try FileManager.default.createDirectory(atPath: made, withIntermediateDirectories: true)
                chmod(made, 0o755)
                if owner != geteuid() { chown(made, owner, owner) }
            }
            let file = path + "/" + relative
            try content.write(toFile: file, atomically: false, encoding: .utf8)
            chmod(file, 0o644)
            if owner != geteuid() { chown(file, owner, owner) }
        }
    }

    /// A sandboxed run: the command's stdout without otk's --json line, and the layers that line reports.
    struct Outcome {
        var status: Int32
        var output: String
        var stderr: String
        var layers: [String]
        var lines: [String] { output.split(separator: "\n").map(String.init) }
        var report: String { "status \(status)\n--- stdout\n\(output)\n--- stderr\n\(stderr)" }
    }

    /// Runs `command` under `profile` (strict unless told) in `workspace`, with --json, stopped after 90 s.
    func sandboxed(_ runner: Runner, _ workspace: Workspace, profile: String = "strict", _ command: [String]) throws -> Outcome {
        let argv = runner.prefix + ["/usr/bin/timeout", "-k", "5", "90", runner.otk, "sandbox", "run", "--json",
                                    "--profile", profile, "--workspace", workspace.path, "--"] + command
        let result = try run(argv)
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last == "" { lines.removeLast() }
        var layers: [String] = []
        if let last = lines.last, last.hasPrefix("{"),
           let doc = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] {
            layers = doc["layers"] as? [String] ?? []
            lines.removeLast()
        }
        return Outcome(status: result.status, output: lines.joined(separator: "\n"), stderr: result.stderr, layers: layers)
    }

    /// The layers that make strict what these tests claim to exercise.
    func expectConfined(_ outcome: Outcome, sourceLocation: SourceLocation = #_sourceLocation) {
        for layer in ["seccomp", "landlock-fs", "network-none", "read-only-root"] {
            #expect(outcome.layers.contains(layer), "layer \(layer) missing: \(outcome.layers)", sourceLocation: sourceLocation)
        }
    }

    /// node from the host's PATH when strict can see it (it shows only /usr and the /bin, /lib links).
    static let node: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/node"
            guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
            let real = URL(fileURLWithPath: candidate).resolvingSymlinksInPath().path
            return real.hasPrefix("/usr/") ? real : nil
        }
        return nil
    }()

    // MARK: gcc

    static let helloC = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        #include <sys/wait.h>

        int main(void) {
            FILE *f = fopen("/workspace/data.txt", "w");
            if (!f) { perror("fopen for writing"); return 2; }
            fprintf(f, "parent wrote %d\\n", 6 * 7);
            fclose(f);
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) { perror("fork"); return 3; }
            if (pid == 0) {
                char line[64] = {0};
                FILE *r = fopen("/workspace/data.txt", "r");
                if (!r || !fgets(line, sizeof line, r)) _exit(4);
                fclose(r);
                FILE *a = fopen("/workspace/data.txt", "a");
                if (!a) _exit(5);
                fprintf(a, "child %s", line);
                fclose(a);
                printf("child read: %s", line);
                fflush(stdout);
                _exit(7);
            }
            int status = 0;
            if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); return 6; }
            printf("hello from C, child exited %d\\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            return 0;
        }

        """

    @Test("strict: gcc compiles a C program that writes a file and forks, and it runs", arguments: Runner.available)
    func gccCompilesAndRuns(runner: Runner) throws {
        let ws = try Workspace(runner)
        try ws.write("hello.c", Self.helloC)
        let outcome = try sandboxed(runner, ws, ["/bin/sh", "-c", "cd /workspace && gcc -Wall -Werror -O2 -o hello hello.c && ./hello"])
        #expect(outcome.status == 0, "\(outcome.report)")
        #expect(outcome.lines == ["child read: parent wrote 42", "hello from C, child exited 7"], "\(outcome.report)")
        expectConfined(outcome)
        let data = try String(contentsOfFile: ws.path + "/data.txt", encoding: .utf8)
        #expect(data == "parent wrote 42\nchild parent wrote 42\n")
        #expect(FileManager.default.isExecutableFile(atPath: ws.path + "/hello"), "gcc left no executable in the workspace")
    }

    // MARK: python3 and a venv

    static let pythonScript = """
        import multiprocessing, os, sqlite3, subprocess, sys, tempfile, threading

        print("venv", sys.prefix, sys.executable, sys.prefix != sys.base_prefix)

        squares, lock = [], threading.Lock()
        def square_into_list(n):
            with lock:
                squares.append(n * n)
        threads = [threading.Thread(target=square_into_list, args=(i,)) for i in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("threads", sorted(squares))

        echoed = subprocess.run(["/bin/echo", "from", "subprocess"], capture_output=True, text=True, check=True)
        print("subprocess", echoed.stdout.strip())

        with tempfile.TemporaryDirectory() as d:
            with tempfile.NamedTemporaryFile("w+", dir=d) as f:
                f.write("temp-ok"); f.flush(); f.seek(0)
                print("tempfile", os.path.dirname(d), f.read())

        db = sqlite3.connect("/workspace/test.db")
        db.execute("create table t (x integer)")
        db.executemany("insert into t values (?)", [(i,) for i in range(10)])
        db.commit()
        print("sqlite", db.execute("select sum(x), count(*) from t").fetchone())
        db.close()

        def square_with_pid(x):
            return x * x, os.getpid()

        if __name__ == "__main__":
            with multiprocessing.Pool(2) as pool:
                results = pool.map(square_with_pid, range(6))
            print("pool", [r for r, _ in results], all(pid != os.getpid() for _, pid in results))

        """

    @Test("strict: python3 makes a venv in the workspace and its python runs threads, subprocess, tempfile, sqlite3, a Pool",
          arguments: Runner.available)
    func pythonVenv(runner: Runner) throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3 (what strict's /usr shows)")
        let ws = try Workspace(runner)
        try ws.write("work.py", Self.pythonScript)
        let script = "/usr/bin/python3 -m venv /workspace/venv && /workspace/venv/bin/python -m pip --version"
            + " && /workspace/venv/bin/python /workspace/work.py"
        let outcome = try sandboxed(runner, ws, ["/bin/sh", "-c", script])
        #expect(outcome.status == 0, "\(outcome.report)")
        let lines = outcome.lines
        #expect(lines.first?.hasPrefix("pip ") == true && lines.first?.contains("/workspace/venv/lib/") == true,
                "pip was not installed into the venv: \(outcome.report)")
        #expect(Array(lines.dropFirst()) == [
            "venv /workspace/venv /workspace/venv/bin/python True",
            "threads [0, 1, 4, 9, 16, 25, 36, 49]",
            "subprocess from subprocess",
            "tempfile /tmp temp-ok",
            "sqlite (45, 10)",
            "pool [0, 1, 4, 9, 16, 25] True",
        ], "\(outcome.report)")
        expectConfined(outcome)
        let config = try String(contentsOfFile: ws.path + "/venv/pyvenv.cfg", encoding: .utf8)
        #expect(config.contains("home = /usr/bin"), "pyvenv.cfg: \(config)")
        #expect(FileManager.default.fileExists(atPath: ws.path + "/test.db"))
    }

    // MARK: node

    static let nodeScript = """
        'use strict';
        const fs = require('fs');
        const net = require('net');
        const path = require('path');
        const { execFileSync } = require('child_process');
        const { Worker } = require('worker_threads');

        // A server and a client over TCP on loopback: strict has no network at all, so this must fail;
        // which step fails says which layer refused (Landlock's TCP rules refuse the bind first).
        function tcpLoopback() {
          return new Promise(resolve => {
            const server = net.createServer(c => c.end('tcp-reply'));
            server.once('error', e => resolve('listen ' + e.code));
            server.listen(0, '127.0.0.1', () => {
              const c = net.createConnection(server.address().port, '127.0.0.1');
              c.on('data', () => {});
              c.on('end', () => { server.close(); resolve('round trip'); });
              c.on('error', e => { server.close(); resolve('connect ' + e.code); });
            });
          });
        }

        async function main() {
          fs.mkdirSync('/workspace/out', { recursive: true });
          fs.writeFileSync('/workspace/out/node.txt', 'written by node');
          console.log('fs', fs.readFileSync('/workspace/out/node.txt', 'utf8'), fs.readdirSync('/workspace/out').join(','));

          console.log('exec', execFileSync('/bin/echo', ['from', 'echo'], { encoding: 'utf8' }).trim());

          const doubled = await new Promise((resolve, reject) => {
            const w = new Worker(
              'const { parentPort, workerData } = require("worker_threads"); parentPort.postMessage(workerData * 2);',
              { eval: true, workerData: 21 });
            w.once('message', resolve);
            w.once('error', reject);
          });
          console.log('worker', doubled);

          const sock = path.join(fs.mkdtempSync('/tmp/node-'), 'echo.sock');
          const server = net.createServer(c => c.on('data', d => c.end('echo:' + d)));
          await new Promise((resolve, reject) => { server.once('error', reject); server.listen(sock, resolve); });
          const reply = await new Promise((resolve, reject) => {
            const c = net.createConnection(sock, () => c.write('ping'));
            let got = '';
            c.on('data', d => { got += d; });
            c.on('end', () => resolve(got));
            c.on('error', reject);
          });
          await new Promise(resolve => server.close(resolve));
          console.log('unix', sock.startsWith('/tmp/node-'), reply);

          console.log('tcp', await tcpLoopback());
        }

        main().catch(e => { console.error('failed:', e); process.exit(1); });

        """

    @Test("strict: node runs fs, execFileSync, a worker thread and a Unix-socket server; TCP loopback is refused",
          .enabled(if: ToolchainTests.node != nil, "node is not on PATH (or lives outside /usr, which is all strict shows)"),
          arguments: Runner.available)
    func nodeRuns(runner: Runner) throws {
        let node = try #require(Self.node)
        let ws = try Workspace(runner)
        try ws.write("work.js", Self.nodeScript)
        let outcome = try sandboxed(runner, ws, [node, "/workspace/work.js"])
        #expect(outcome.status == 0, "\(outcome.report)")
        let lines = outcome.lines
        #expect(Array(lines.prefix(4)) == [
            "fs written by node node.txt",
            "exec from echo",
            "worker 42",
            "unix true echo:ping",
        ], "\(outcome.report)")
        // With Landlock's TCP rules (ABI 4+) the bind is refused; without them the namespace has no route to loopback.
        let tcp = outcome.layers.contains("landlock-tcp") ? "tcp listen EACCES" : "tcp connect ENETUNREACH"
        #expect(Array(lines.dropFirst(4)) == [tcp], "\(outcome.report)")
        expectConfined(outcome)
        #expect((try? String(contentsOfFile: ws.path + "/out/node.txt", encoding: .utf8)) == "written by node")
    }

    // MARK: make, ar

    static let project: [(String, String)] = [
        ("proj/greet.h", """
            #ifndef GREET_H
            #define GREET_H
            int add(int a, int b);
            const char *greeting(void);
            #endif

            """),
        ("proj/greet.c", """
            #include "greet.h"
            int add(int a, int b) { return a + b; }
            const char *greeting(void) { return "hello from libgreet"; }

            """),
        ("proj/main.c", """
            #include <stdio.h>
            #include "greet.h"
            int main(void) {
                printf("%s: 2+40=%d\\n", greeting(), add(2, 40));
                return 0;
            }

            """),
        ("proj/Makefile", """
            CC = cc
            CFLAGS = -Wall -Werror -O2

            all: app

            %.o: %.c greet.h
            \t$(CC) $(CFLAGS) -c -o $@ $<

            libgreet.a: greet.o
            \tar rcs $@ $^

            app: main.o libgreet.a
            \t$(CC) -o $@ main.o -L. -lgreet

            check: app
            \t./app > out.txt
            \tgrep -q '2+40=42' out.txt
            \t@echo "check passed: $$(cat out.txt)"

            .PHONY: all check

            """),
    ]

    @Test("strict: make builds two objects, a library with ar, links, and runs its check target", arguments: Runner.available)
    func makeProject(runner: Runner) throws {
        let ws = try Workspace(runner)
        for (name, content) in Self.project { try ws.write(name, content) }
        let outcome = try sandboxed(runner, ws, ["make", "-C", "/workspace/proj", "-j2", "check"])
        #expect(outcome.status == 0, "\(outcome.report)")
        let lines = Set(outcome.lines)
        for expected in ["cc -Wall -Werror -O2 -c -o main.o main.c", "cc -Wall -Werror -O2 -c -o greet.o greet.c",
                         "ar rcs libgreet.a greet.o", "cc -o app main.o -L. -lgreet", "./app > out.txt",
                         "check passed: hello from libgreet: 2+40=42"] {
            #expect(lines.contains(expected), "no `\(expected)` in make's output: \(outcome.report)")
        }
        #expect(outcome.lines.last?.hasPrefix("make: Leaving directory") == true, "\(outcome.report)")
        expectConfined(outcome)
        let archive = try Data(contentsOf: URL(fileURLWithPath: ws.path + "/proj/libgreet.a"))
        #expect(archive.starts(with: Data("!<arch>\n".utf8)), "libgreet.a is not an ar archive")
    }

    // MARK: the control

    /// Reports the seccomp mode and three calls only the filter refuses with EPERM:
    /// unshare(CLONE_NEWUSER) (otherwise ENOSPC: no nested user namespaces), lsm_list_modules
    /// (on no allowlist; otherwise E2BIG for a zero size, or ENOSYS before Linux 6.8) and an
    /// AF_NETLINK socket (a family the filter does not allow; otherwise it opens).
    static let controlScript = """
        import ctypes, errno, platform, socket
        libc = ctypes.CDLL(None, use_errno=True)
        def result(r):
            return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
        print([l.rstrip("\\n") for l in open("/proc/self/status") if l.startswith("Seccomp:")][0])
        print("unshare-user", result(libc.unshare(0x10000000)))
        lsm_list_modules = {"x86_64": 461, "aarch64": 461}[platform.machine()]
        size = ctypes.c_uint32(0)
        print("lsm_list_modules", result(libc.syscall(lsm_list_modules, None, ctypes.byref(size), 0)))
        try:
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()
            print("netlink ok")
        except OSError as e:
            print("netlink", errno.errorcode[e.errno])

        """

    @Test("control: the toolchains above really ran under the filter; with seccomp off the same calls answer otherwise",
          arguments: Runner.available)
    func filterIsOn(runner: Runner) throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3 (what strict's /usr shows)")
        let ws = try Workspace(runner)
        try ws.write("control.py", Self.controlScript)
        let noSeccomp = try DerivedProfile("[seccomp]\nenabled = false", name: "no-seccomp")

        let filtered = try sandboxed(runner, ws, ["/usr/bin/python3", "/workspace/control.py"])
        #expect(filtered.status == 0, "\(filtered.report)")
        #expect(filtered.lines == ["Seccomp:\t2", "unshare-user EPERM", "lsm_list_modules EPERM", "netlink EPERM"], "\(filtered.report)")
        expectConfined(filtered)

        let unfiltered = try sandboxed(runner, ws, profile: noSeccomp.path, ["/usr/bin/python3", "/workspace/control.py"])
        #expect(unfiltered.status == 0, "\(unfiltered.report)")
        let lines = unfiltered.lines
        #expect(lines.count == 4, "\(unfiltered.report)")
        #expect(lines.first == "Seccomp:\t0", "\(unfiltered.report)")
        #expect(lines.dropFirst().first == "unshare-user ENOSPC", "\(unfiltered.report)")
        #expect(lines.dropFirst(2).first?.hasPrefix("lsm_list_modules ") == true && lines.dropFirst(2).first != "lsm_list_modules EPERM",
                "\(unfiltered.report)")
        #expect(lines.last == "netlink ok", "\(unfiltered.report)")
        #expect(!unfiltered.layers.contains("seccomp") && unfiltered.layers.contains("landlock-fs"), "\(unfiltered.layers)")
    }
}
