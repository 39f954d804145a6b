import Foundation
import Testing

/// The cgroup v2 backend on a real cgroup2 hierarchy: this host's cgroups are hybrid (v1), so the
/// checks run in a QEMU VM with a stock Debian kernel (scripts/cgroup2-vm.sh, docs/testing-cgroup-v2.md).
/// The harness installs qemu through apt when it can; it exits 77 only where no VM can run.
@Suite(.serialized) struct CgroupV2VMTests {
    /// One case of Tests/Fixtures/cgroup2-limits.sh: its exit status and its --json document.
    struct Case {
        var status: Int32
        var result: [String: Any]
        var resources: [String: Any] { result["resources"] as? [String: Any] ?? [:] }
    }

    /// Sections of the script's output, by their "== NAME" headers.
    static func sections(_ text: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        var current = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("== ") { current = String(line.dropFirst(3)); out[current] = []; continue }
            out[current, default: []].append(line)
        }
        return out
    }

    static func parse(_ lines: [String], _ name: String) -> Case? {
        guard let statusLine = lines.first(where: { $0.hasPrefix("status \(name) ") }),
              let status = Int32(statusLine.split(separator: " ").last ?? ""),
              let json = lines.first(where: { $0.hasPrefix("{") }),
              let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
        return Case(status: status, result: object)
    }

    @Test("cgroup v2 in a VM: OOM kill, fork bomb, CPU quota, wall clock with a setsid daemon, output cap, no cgroup left (also after otk is SIGKILLed)",
          .enabled(if: geteuid() == 0, "the VM harness installs qemu and boots a kernel: root only"))
    func limitsOnCgroupV2() throws {
        let result = try run([Paths.repository + "/scripts/cgroup2-vm.sh", "--bin", Paths.binDirectory, "--timeout", "400",
                              Paths.repository + "/Tests/Fixtures/cgroup2-limits.sh"],
                             environment: ProcessInfo.processInfo.environment.merging(["OTK_VM_QUIET": "1"]) { $1 })
        if result.status == 77 {
            // Only where qemu cannot be installed at all; the message says why.
            print("SKIPPED cgroup v2 VM test: \(result.stderr)")
            return
        }
        #expect(result.status == 0, "harness: \(result.stderr)\n\(result.stdout)")
        let s = Self.sections(result.stdout)

        let oom = try #require(Self.parse(s["oom"] ?? [], "oom"), "\(result.stdout)")
        #expect(oom.status == 137)
        #expect(oom.result["limit"] as? String == "memory")
        #expect(oom.resources["oom_killed"] as? Bool == true)
        #expect(oom.resources["cgroup"] as? String == "v2")

        let bomb = try #require(Self.parse(s["forkbomb"] ?? [], "forkbomb"))
        #expect(bomb.status == 0, "the fork bomb's shell ends by itself")
        #expect((bomb.resources["pids_limit_hits"] as? Int ?? 0) > 0)
        #expect((bomb.resources["peak_pids"] as? Int ?? 99) <= 32)

        let cpu = try #require(Self.parse(s["cpu"] ?? [], "cpu"))
        #expect((cpu.resources["cpu_throttled_ms"] as? Double ?? 0) > 0, "cpu.stat shows no throttling under cpus = 0.2")

        let wall = try #require(Self.parse(s["wall"] ?? [], "wall"))
        #expect(wall.status == 124)
        #expect(wall.result["limit"] as? String == "wall")
        #expect(s["wall"]?.contains("daemon gone") == true, "a setsid daemon ignoring SIGTERM outlived the run: \(s["wall"] ?? [])")

        let output = try #require(Self.parse(s["output"] ?? [], "output"))
        let streams = output.result["output"] as? [[String: Any]] ?? []
        #expect(streams.first { $0["stream"] as? String == "stdout" }?["bytes"] as? Int == 1024)
        #expect((streams.first { $0["stream"] as? String == "stdout" }?["discarded_bytes"] as? Int ?? 0) > 4_000_000)

        // Rootless: uid 1000 in a cgroup delegated to it uses it; without one, strict's limits refuse (exit 4).
        let rootless = try #require(Self.parse(s["rootless"] ?? [], "rootless"), "\(s["rootless"] ?? [])")
        #expect(rootless.status == 0)
        #expect(rootless.result["host_uid"] as? Int == 1000)
        #expect(rootless.resources["cgroup"] as? String == "v2")
        #expect(s["rootless"]?.contains("none left") == true)
        let doctor = s["rootless-doctor"] ?? []
        #expect(doctor.contains { $0.contains("cgroups:") && $0.contains("delegated to uid 1000") }, "\(doctor)")
        #expect(doctor.filter { $0.contains("strict:") || $0.contains("standard:") }.count == 2 && doctor.filter { $0.contains("strict:") || $0.contains("standard:") }.allSatisfy { $0.contains("ok") && $0.contains("runs") }, "\(doctor)")
        #expect(doctor.contains("no nesting"), "each run nested another otk-supervisor leaf: \(doctor)")
        #expect(s["rootless-undelegated"]?.contains("status rootless-undelegated 4") == true, "\(s["rootless-undelegated"] ?? [])")
        #expect(s["rootless-undelegated"]?.contains { $0.contains("Delegate=yes") } == true)

        #expect(s["leftover"]?.first == "none", "run cgroups left: \(s["leftover"] ?? [])")
        #expect(s["during"]?.first?.hasPrefix("run-") == true, "no run cgroup while otk ran: \(s["during"] ?? [])")
        #expect(s["after-kill"]?.first == "none", "the run cgroup outlived a SIGKILLed otk: \(s["after-kill"] ?? [])")
        #expect(s["after-kill"]?.contains("no sleeper") == true)
    }
}
