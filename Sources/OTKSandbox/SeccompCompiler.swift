import COTKSystem
import CSeccomp
import Glibc
import OTKConfig
import OTKModel

/// A seccomp policy compiled to classic BPF for this machine's architecture.
public struct CompiledSeccomp: Sendable {
    /// The programs in load order, each as raw `struct sock_filter` bytes. The kernel runs
    /// every loaded program and keeps the most restrictive answer, so a call is denied
    /// when any program denies it.
    public var programs: [[UInt8]]
    /// Names a rule gave that this kernel's libseccomp does not know, skipped (allow rules only).
    public var skipped: [String]

    /// The launcher's wire form: for each program a little-endian u32 instruction count, then the instructions.
    public var wire: [UInt8] {
        var out: [UInt8] = []
        for p in programs {
            let count = UInt32(p.count / 8)
            out += [UInt8(count & 0xff), UInt8((count >> 8) & 0xff), UInt8((count >> 16) & 0xff), UInt8(count >> 24)]
            out += p
        }
        return out
    }
}

/// Compiles a `SeccompPolicy` with libseccomp, in the supervisor (the launcher only loads the result).
///
/// libseccomp lets an unconditional rule silently swallow conditional rules for the same call
/// and refuses rules whose action is the filter's default, so "allow ioctl except TIOCSTI"
/// cannot be one filter. The policy is split instead: the first program holds the permitting
/// rules over the profile's default action; the second holds every denying rule over a default
/// of allow. The kernel takes the most restrictive answer of the two, and for two errno
/// answers the later program's, so an explicit errno (clone3's ENOSYS) wins over an errno
/// default; over a harsher default (kill) the rule is also placed in the first program.
public enum SeccompCompiler {
    static let actAllow: UInt32 = 0x7fff_0000
    static let actLog: UInt32 = 0x7ffc_0000
    static let actKillProcess: UInt32 = 0x8000_0000
    static let actKillThread: UInt32 = 0x0000_0000
    static let actTrap: UInt32 = 0x0003_0000

    static func raw(_ action: SeccompAction) -> UInt32 {
        switch action {
        case .allow: return actAllow
        case .errno(let e): return 0x0005_0000 | UInt32(e)
        case .killProcess: return actKillProcess
        case .killThread: return actKillThread
        case .trap: return actTrap
        case .log: return actLog
        case .trace(let v): return 0x7ff0_0000 | UInt32(v)
        }
    }

    /// The libseccomp version, "2.5.4".
    public static var libraryVersion: String {
        guard let v = seccomp_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.micro)"
    }

    /// The native architecture as libseccomp names it.
    public static var nativeArchitecture: String {
        switch seccomp_arch_native() {
        case 0xc000_003e: return "x86_64"
        case 0xc000_00b7: return "aarch64"
        default: return "unsupported"
        }
    }

    /// The syscall number of `name` on this architecture; nil when the name is unknown here.
    /// `notOnThisArch` is set for names libseccomp knows only elsewhere (`open` on aarch64).
    public static func number(of name: String) -> (number: Int32?, notOnThisArch: Bool) {
        let n = seccomp_syscall_resolve_name_arch(seccomp_arch_native(), name)
        if n >= 0 { return (n, false) }
        if let newer = SeccompBuiltin.newerSyscallNumbers[name] { return (newer, false) }
        // Negative pseudo numbers stand for calls other architectures have; -1 is "no such name".
        if n != -1 { return (nil, true) }
        return (nil, seccomp_syscall_resolve_name(name) != -1)
    }

    public static func compile(_ policy: SeccompPolicy) throws(OTKError) -> CompiledSeccomp {
        guard nativeArchitecture != "unsupported" else {
            throw OTKError(.isolationUnavailable, "seccomp: otk's filters are written for x86_64 and aarch64, not this architecture",
                           remedy: "set `[seccomp] enabled = false` in a profile of your own, knowing what that gives up")
        }
        var skipped: [String] = []
        let permitting = policy.rules.filter { $0.action.permits }
        let denying = policy.rules.filter { !$0.action.permits }
        // A denying rule milder than the default (clone3's ENOSYS under a `kill` default) would lose to the
        // first program's default, since the kernel keeps the harsher answer: for calls the first program
        // does not allow at all, it gets the rule too.
        let permitted = Set(permitting.flatMap(\.names))
        let milder = denying.compactMap { rule -> SeccompRule? in
            guard severity(rule.action) < severity(policy.defaultAction) else { return nil }
            var r = rule
            r.names = rule.names.filter { !permitted.contains($0) }
            return r.names.isEmpty ? nil : r
        }
        var programs = [try build(default: policy.defaultAction, rules: permitting + milder, origin: policy.origin, skipped: &skipped)]
        if !denying.isEmpty {
            programs.append(try build(default: .allow, rules: denying, origin: policy.origin, skipped: &skipped))
        }
        return CompiledSeccomp(programs: programs, skipped: skipped)
    }

    private static func build(default defaultAction: SeccompAction, rules: [SeccompRule], origin: String,
                              skipped: inout [String]) throws(OTKError) -> [UInt8] {
        guard let ctx = seccomp_init(raw(defaultAction)) else {
            throw OTKError(.internalError, "seccomp: libseccomp could not start a filter with action \(defaultAction)")
        }
        defer { seccomp_release(ctx) }
        // Any other ABI (i386 through int 0x80, x32) is refused outright: the process dies.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, actKillProcess)
        // otk-launcher sets no_new_privs itself; the export must not depend on libseccomp doing it.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        // A binary tree of syscall numbers: fewer instructions run per call than a linear list.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        let builtIn = origin == "built-in"
        for rule in rules where rule.action != defaultAction {
            for name in rule.names {
                let (resolved, elsewhere) = number(of: name)
                guard let nr = resolved else {
                    let fromProfile = rule.fromProfile
                    // A call that exists only on other architectures has nothing to filter here.
                    if elsewhere { continue }
                    // The built-in list names calls some libseccomp versions lack; the default denies them anyway.
                    if builtIn && !fromProfile { continue }
                    // Allowing an unknown call in an imported profile grants nothing; a profile's own list must be right,
                    // and denying an unknown call would be a promise not kept.
                    if rule.action.permits && !fromProfile {
                        skipped.append(name)
                        continue
                    }
                    throw OTKError(.badInput, "seccomp: `\(name)` is not a system call this otk knows (libseccomp \(libraryVersion), \(nativeArchitecture))",
                                   remedy: "check the spelling; `otk profile show` lists the calls the profile names",
                                   location: rule.location)
                }
                var conditions = rule.conditions.map { c in
                    scmp_arg_cmp(arg: UInt32(c.index), op: op(c.op), datum_a: c.value, datum_b: c.valueTwo)
                }
                let rc = conditions.withUnsafeMutableBufferPointer { buf in
                    seccomp_rule_add_exact_array(ctx, raw(rule.action), nr, UInt32(buf.count), buf.baseAddress)
                }
                guard rc == 0 else {
                    throw OTKError(.badInput, "seccomp: libseccomp refused the rule for `\(name)` (\(rule.action)\(rule.conditions.isEmpty ? "" : " when " + rule.conditions.map(\.description).joined(separator: " and "))): \(String(cString: strerror(-rc)))",
                                   remedy: "rules for one call must not contradict each other", location: rule.location)
                }
            }
        }
        return try export(ctx)
    }

    /// The kernel's precedence: when programs disagree, the harsher action wins.
    static func severity(_ action: SeccompAction) -> Int {
        switch action {
        case .killProcess: return 7
        case .killThread: return 6
        case .trap: return 5
        case .errno: return 4
        case .trace: return 2
        case .log: return 1
        case .allow: return 0
        }
    }

    private static func op(_ c: SeccompComparison) -> scmp_compare {
        switch c {
        case .notEqual: return SCMP_CMP_NE
        case .less: return SCMP_CMP_LT
        case .lessOrEqual: return SCMP_CMP_LE
        case .equal: return SCMP_CMP_EQ
        case .greaterOrEqual: return SCMP_CMP_GE
        case .greater: return SCMP_CMP_GT
        case .maskedEqual: return SCMP_CMP_MASKED_EQ
        }
    }

    /// libseccomp 2.5 exports only to a file descriptor: a memfd, read back here.
    private static func export(_ ctx: scmp_filter_ctx) throws(OTKError) -> [UInt8] {
        let fd = cotk_memfd("otk-seccomp-export")
        guard fd >= 0 else { throw OTKError(.internalError, "seccomp: memfd_create: \(String(cString: strerror(Glibc.errno)))") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw OTKError(.internalError, "seccomp: exporting the filter failed: \(String(cString: strerror(-rc)))") }
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0, size % 8 == 0, size / 8 <= 4096 else {
            throw OTKError(.internalError, "seccomp: the exported filter has \(size) bytes (must be 1 to 4096 instructions)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n == size else { throw OTKError(.internalError, "seccomp: reading the exported filter back failed") }
        return bytes
    }
}
