import Foundation
import OTKModel
@testable import OTKSandbox
import Testing

@Suite("Diagnosis")
struct DiagnosisTests {
    static let host = HostFacts(maxUserNamespaces: 15000, unprivilegedUsernsClone: nil, apparmorRestrictsUserns: nil,
                                cgroup: CgroupLayout(kind: .v2, unifiedMount: "/sys/fs/cgroup", unifiedControllers: [], v1Controllers: [:]),
                                seccompAvailable: true, landlockABI: nil, landlockReason: nil, kernelRelease: "6.1.0")

    func explain(_ step: String, _ errno: Int32, detail: String = "", command: String = "prog", host: HostFacts = Self.host) -> OTKError {
        Diagnosis.explain(LauncherRecord(kind: .failure, errno: errno, value: 0, step: step, detail: detail), command: command, host: host)
    }

    @Test(arguments: [EPERM, ENOSPC, EUSERS, EINVAL, EACCES])
    func clone3RefusalIsIsolationUnavailable(errno: Int32) {
        let e = explain("clone3", errno)
        #expect(e.kind == .isolationUnavailable)
        #expect(e.step == "clone3")
        #expect(e.errno == errno)
        #expect(e.message.contains("namespaces"))
        #expect(e.remedy == Self.host.userNamespaceRemedy)
    }

    @Test func clone3RemedyFollowsTheSysctls() {
        var host = Self.host
        host.maxUserNamespaces = 0
        #expect(explain("clone3", EPERM, host: host).remedy?.contains("user.max_user_namespaces") == true)
        host.maxUserNamespaces = 100
        host.apparmorRestrictsUserns = 1
        #expect(explain("clone3", EPERM, host: host).remedy?.contains("AppArmor") == true)
    }

    @Test func clone3WithoutKernelSupport() {
        let e = explain("clone3", ENOSYS)
        #expect(e.kind == .isolationUnavailable)
        #expect(e.remedy?.contains("5.3") == true)
    }

    @Test(arguments: [ENOENT, ENOTDIR])
    func execveNotFound(errno: Int32) {
        let e = explain("execve", errno, detail: "/usr/bin/nope", command: "nope")
        #expect(e.kind == .commandNotFound)
        #expect(e.message.contains("`nope`"))
        #expect(e.message.contains("/usr/bin/nope"))
        #expect(ExitCodes.code(for: e.kind) == 127)
    }

    @Test func execvePermissionDenied() {
        let e = explain("execve", EACCES, detail: "/tmp/x")
        #expect(e.kind == .commandNotExecutable)
        #expect(e.remedy?.contains("executable") == true)
        #expect(ExitCodes.code(for: e.kind) == 126)
        #expect(explain("execve", ENOEXEC).remedy == nil)
    }

    @Test(arguments: [EPERM, EACCES])
    func procRefusalPointsAtContainers(errno: Int32) {
        let e = explain("proc", errno)
        #expect(e.kind == .isolationUnavailable)
        #expect(e.message.contains("/proc"))
        #expect(e.remedy?.contains("containers") == true)
        #expect(e.remedy?.contains("filesystem.proc = false") == true)
    }

    @Test func procOtherErrorIsASetupFailure() {
        #expect(explain("proc", ENOMEM).kind == .setupFailed)
    }

    @Test(arguments: ["setgroups", "uid_map", "gid_map"])
    func idMappingFailures(step: String) {
        let e = explain(step, EPERM)
        #expect(e.kind == .isolationUnavailable)
        #expect(e.message.contains("id mapping"))
    }

    @Test(arguments: ["mount-private", "mount-base", "mount-root", "pivot_root", "detach-oldroot"])
    func privateRootFailures(step: String) {
        #expect(explain(step, EPERM).kind == .isolationUnavailable)
    }

    @Test func bindFailures() {
        let loop = explain("bind", ELOOP, detail: "/opt")
        #expect(loop.kind == .setupFailed)
        #expect(loop.message.contains("/opt: "))
        #expect(loop.remedy?.contains("symlink") == true)
        #expect(explain("bind", ENOENT).remedy?.contains("symlink") == false)
    }

    @Test func specRejectionIsAnInternalError() {
        let e = explain("spec", EINVAL)
        #expect(e.kind == .internalError)
        #expect(ExitCodes.code(for: e.kind) == 70)
    }

    @Test func unknownStepIsASetupFailure() {
        let e = explain("hostname", EPERM, detail: "otk")
        #expect(e.kind == .setupFailed)
        #expect(e.message.contains("`hostname`"))
        #expect(e.message.contains("otk: "))
        #expect(e.message.contains(String(cString: strerror(EPERM))))
        #expect(explain("hostname", 0).message.hasSuffix("failed"))
    }

    @Test func exitCodes() {
        #expect(ExitCodes.code(for: .badInput) == 2)
        #expect(ExitCodes.code(for: .isolationUnavailable) == 4)
        #expect(ExitCodes.code(for: .setupFailed) == 4)
        #expect(ExitCodes.code(for: .commandNotFound) == 127)
        #expect(ExitCodes.code(for: .commandNotExecutable) == 126)
        #expect(ExitCodes.code(for: .internalError) == 70)
    }
}
