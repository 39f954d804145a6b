import Foundation
import OTKModel

/// Imports Docker/OCI seccomp profiles (the JSON `docker run --security-opt seccomp=FILE` reads).
///
/// The import is strict: every key must be one the format defines, every value must have the
/// right type and range, and anything otk cannot honour exactly is refused rather than
/// approximated, because a silently dropped or misread rule weakens the sandbox.
public enum DockerSeccomp {
    /// The largest profile otk reads; anything bigger is refused, not truncated.
    public static let maximumSize = 1 << 20

    /// Parses a Docker/OCI seccomp profile (JSON) into a policy for one host.
    ///
    /// - Parameters:
    ///   - bytes: the file's content; it must be UTF-8 (a UTF-8 byte-order mark is allowed).
    ///   - file: the file's path, for error locations and the policy's `origin`.
    ///   - arch: the host's architecture as libseccomp names it: "x86_64" or "aarch64".
    ///   - kernel: the host kernel's (major, minor), for `includes.minKernel` / `excludes.minKernel`.
    ///
    /// How the profile is applied to this host:
    /// - A rule is kept only if it applies here, as Docker decides it: a non-empty
    ///   `includes.arches` must name the host (`amd64`/`x86_64`, or `arm64`/`aarch64`),
    ///   `excludes.arches` must not; `includes.minKernel` must be at most the host kernel and
    ///   `excludes.minKernel`, when set, above it. Rules with a non-empty `includes.caps` are
    ///   dropped and `excludes.caps` is ignored: otk's sandbox never holds a capability.
    ///   Dropped rules are still validated.
    /// - `archMap` and `architectures` are validated but otherwise ignored: otk compiles its
    ///   filter for the native architecture only and kills every call made through another
    ///   ABI (i386, x32, 32-bit ARM), whatever the profile lists as sub-architectures.
    /// - `flags` may hold `SECCOMP_FILTER_FLAG_TSYNC` and `SECCOMP_FILTER_FLAG_LOG` (accepted,
    ///   with no effect on the policy); `SECCOMP_FILTER_FLAG_SPEC_ALLOW` is refused because it
    ///   turns off speculative-execution mitigations. `SCMP_ACT_NOTIFY` and a non-empty
    ///   `listenerPath` are refused: otk has no seccomp notifier.
    /// - A key whose value is `null` counts as absent (Go's encoder writes such keys).
    /// - `errnoRet` (1...4094) is allowed only with `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE`, and
    ///   `defaultErrnoRet` only with such a `defaultAction`. Without one, `SCMP_ACT_ERRNO` fails
    ///   with EPERM and `SCMP_ACT_TRACE` passes 0 to the tracer.
    /// - Numbers must be whole and non-negative, written without a fraction or exponent, up to
    ///   UInt64.max; they are read exactly, never through a Double.
    /// - A key written twice in one object is refused (parsers disagree on which one wins).
    /// - Syscall names are only checked for their shape; whether libseccomp knows them is
    ///   decided when the policy is compiled.
    ///
    /// Each rule's `location` is the line where its entry of `syscalls` begins. Every error is
    /// a `.badInput` error that names the JSON path and carries the file and, when known, line.
    public static func parse(_ bytes: [UInt8], file: String, arch: String, kernel: (Int, Int)) throws(OTKError) -> SeccompPolicy {
        let hostNames: Set<String>
        switch arch {
        case "x86_64": hostNames = ["amd64", "x86_64"]
        case "aarch64": hostNames = ["arm64", "aarch64"]
        default:
            throw OTKError(.isolationUnavailable,
                           "cannot import a Docker seccomp profile for host architecture `\(arch)` (otk supports x86_64 and aarch64)",
                           location: SourceLocation(file: file, line: nil))
        }
        let root = try StrictJSON.decode(bytes, file: file, maximumSize: maximumSize, document: "a seccomp profile",
                                         expected: "`defaultAction` and `syscalls`")
        let reader = StrictJSONReader(file: file, bytes: bytes,
                                      unknownKeyRemedy: "an unknown key may be a typo that weakens the profile; remove or correct it")
        let importer = DockerSeccompImporter(reader: reader, hostNames: hostNames, kernel: kernel)
        return try importer.policy(root)
    }

}

/// The validation and conversion proper, with the means to locate every error.
private struct DockerSeccompImporter {
    let reader: StrictJSONReader
    /// The host's architecture as Docker profiles name it in `includes.arches`.
    let hostNames: Set<String>
    let kernel: (Int, Int)

    static let topLevelKeys: Set<String> = [
        "defaultAction", "defaultErrnoRet", "archMap", "architectures", "syscalls", "flags", "listenerPath", "listenerMetadata",
    ]
    static let syscallKeys: Set<String> = ["names", "name", "action", "args", "errnoRet", "comment", "includes", "excludes"]
    static let argKeys: Set<String> = ["index", "value", "valueTwo", "op"]
    static let filterKeys: Set<String> = ["caps", "arches", "minKernel"]
    static let archMapKeys: Set<String> = ["architecture", "subArchitectures"]

    static let actions = [
        "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP", "SCMP_ACT_LOG", "SCMP_ACT_TRACE",
    ]
    static let comparisons: [(String, SeccompComparison)] = [
        ("SCMP_CMP_NE", .notEqual), ("SCMP_CMP_LT", .less), ("SCMP_CMP_LE", .lessOrEqual), ("SCMP_CMP_EQ", .equal),
        ("SCMP_CMP_GE", .greaterOrEqual), ("SCMP_CMP_GT", .greater), ("SCMP_CMP_MASKED_EQ", .maskedEqual),
    ]
    /// libseccomp's architecture names, as `archMap` and `architectures` use them.
    static let scmpArches: Set<String> = [
        "SCMP_ARCH_NATIVE", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_RISCV64", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
    ]
    /// The names `includes.arches` / `excludes.arches` may use: Go's GOARCH values (what Docker
    /// compares with) and libseccomp's short names. A name outside this list is refused rather
    /// than treated as "some other architecture", so that a typo cannot disable an exclusion.
    static let filterArches: Set<String> = [
        "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc", "ppc64", "ppc64le",
        "riscv64", "s390", "s390x", "x86", "x86_64", "x32", "i386", "aarch64", "loongarch64", "m68k", "mipsel",
        "mipsel64", "mips64n32", "mipsel64n32", "parisc", "parisc64", "sh", "sheb",
    ]
    static let acceptedFlags: Set<String> = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"]
    static let knownFlags = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]

    // MARK: Errors and typed access (shared with the plan parser)

    var file: String { reader.file }
    var locator: JSONLineLocator { reader.locator }
    func location(_ path: JSONPath) -> SourceLocation { reader.location(path) }
    func fail(_ path: JSONPath, _ message: String, remedy: String? = nil) -> OTKError { reader.fail(path, message, remedy: remedy) }
    func quoted(_ s: String) -> String { reader.quoted(s) }
    func object(_ value: Any, _ path: JSONPath, known: Set<String>) throws(OTKError) -> [String: Any] {
        try reader.object(value, path, known: known)
    }
    func string(_ value: Any, _ path: JSONPath) throws(OTKError) -> String { try reader.string(value, path) }
    func array(_ value: Any, _ path: JSONPath, of what: String) throws(OTKError) -> [Any] { try reader.array(value, path, of: what) }
    func strings(_ value: Any, _ path: JSONPath) throws(OTKError) -> [String] { try reader.strings(value, path) }
    func unsigned(_ value: Any, _ path: JSONPath) throws(OTKError) -> UInt64 { try reader.unsigned(value, path) }

    func errno(_ value: Any, _ path: JSONPath) throws(OTKError) -> UInt16 {
        let v = try unsigned(value, path)
        guard (1...4094).contains(v) else {
            throw fail(path, "\(v) is not an errno value (1...4094)")
        }
        return UInt16(v)
    }

    // MARK: The profile

    func policy(_ root: Any) throws(OTKError) -> SeccompPolicy {
        try reader.refuseDuplicateKeys()
        let top = try object(root, .root, known: Self.topLevelKeys)

        if let archMap = top["archMap"] {
            let path = JSONPath.root.key("archMap")
            for (i, entry) in try array(archMap, path, of: "objects").enumerated() {
                let ep = path.index(i)
                let e = try object(entry, ep, known: Self.archMapKeys)
                guard let arch = e["architecture"] else { throw fail(ep, "missing `architecture`") }
                try scmpArch(arch, ep.key("architecture"))
                if let subs = e["subArchitectures"] {
                    let sp = ep.key("subArchitectures")
                    for (j, sub) in try array(subs, sp, of: "strings").enumerated() { try scmpArch(sub, sp.index(j)) }
                }
            }
        }
        if let arches = top["architectures"] {
            let path = JSONPath.root.key("architectures")
            for (i, arch) in try array(arches, path, of: "strings").enumerated() { try scmpArch(arch, path.index(i)) }
        }
        if let flags = top["flags"] {
            let path = JSONPath.root.key("flags")
            for (i, flag) in try array(flags, path, of: "strings").enumerated() {
                let fp = path.index(i)
                let name = try string(flag, fp)
                if Self.acceptedFlags.contains(name) { continue }
                if name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW" {
                    throw fail(fp, "`SECCOMP_FILTER_FLAG_SPEC_ALLOW` turns off the kernel's speculative-execution mitigations; otk refuses it",
                               remedy: "remove the flag")
                }
                throw fail(fp, "\(quoted(name)) is not a seccomp filter flag (known: \(Self.knownFlags.joined(separator: ", ")))")
            }
        }
        if let listener = top["listenerPath"] {
            let path = JSONPath.root.key("listenerPath")
            if try !string(listener, path).isEmpty {
                throw fail(path, "otk has no seccomp notifier; a profile with a listener cannot be imported",
                           remedy: "remove `listenerPath` and use other actions than SCMP_ACT_NOTIFY")
            }
        }
        if let metadata = top["listenerMetadata"] {
            _ = try string(metadata, .root.key("listenerMetadata"))
        }

        guard let defaultValue = top["defaultAction"] else {
            throw fail(.root, "missing `defaultAction` (the action for syscalls no rule matches), e.g. \"SCMP_ACT_ERRNO\"")
        }
        let defaultAction = try action(defaultValue, .root.key("defaultAction"),
                                       errnoRet: top["defaultErrnoRet"], errnoPath: .root.key("defaultErrnoRet"))

        var rules: [SeccompRule] = []
        if let syscalls = top["syscalls"] {
            let path = JSONPath.root.key("syscalls")
            let entries = try array(syscalls, path, of: "objects")
            let lines = locator.elementLines(of: path.components)
            for (i, entry) in entries.enumerated() {
                if let rule = try self.rule(entry, path.index(i), line: i < lines.count ? lines[i] : nil) {
                    rules.append(rule)
                }
            }
        }
        return SeccompPolicy(defaultAction: defaultAction, rules: rules, origin: file)
    }

    func scmpArch(_ value: Any, _ path: JSONPath) throws(OTKError) {
        let name = try string(value, path)
        guard Self.scmpArches.contains(name) else {
            throw fail(path, "\(quoted(name)) is not a libseccomp architecture (known: \(Self.scmpArches.sorted().joined(separator: ", ")))")
        }
    }

    /// An action name with its optional errno value.
    func action(_ value: Any, _ path: JSONPath, errnoRet: Any?, errnoPath: JSONPath) throws(OTKError) -> SeccompAction {
        let name = try string(value, path)
        let errno = try errnoRet.map { v throws(OTKError) in try self.errno(v, errnoPath) }
        let result: SeccompAction
        switch name {
        case "SCMP_ACT_ALLOW": result = .allow
        case "SCMP_ACT_ERRNO": return .errno(errno ?? 1)
        case "SCMP_ACT_TRACE": return .trace(errno ?? 0)
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": result = .killThread
        case "SCMP_ACT_KILL_PROCESS": result = .killProcess
        case "SCMP_ACT_TRAP": result = .trap
        case "SCMP_ACT_LOG": result = .log
        case "SCMP_ACT_NOTIFY":
            throw fail(path, "SCMP_ACT_NOTIFY needs a seccomp notifier, which otk does not have",
                       remedy: "use SCMP_ACT_ERRNO to refuse the call or SCMP_ACT_ALLOW to permit it")
        default:
            throw fail(path, "\(quoted(name)) is not a seccomp action (known: \(Self.actions.joined(separator: ", ")))")
        }
        if errno != nil {
            throw fail(errnoPath, "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno value, not \(name)")
        }
        return result
    }

    /// One entry of `syscalls`; nil when it does not apply to this host.
    func rule(_ value: Any, _ path: JSONPath, line: Int?) throws(OTKError) -> SeccompRule? {
        let entry = try object(value, path, known: Self.syscallKeys)

        var names: [String]
        switch (entry["name"], entry["names"]) {
        case (.some, .some):
            throw fail(path, "has both `name` and `names`; use `names` only")
        case (let single?, nil):
            names = [try string(single, path.key("name"))]
        case (nil, let list?):
            names = try strings(list, path.key("names"))
        case (nil, nil):
            throw fail(path, "missing `names` (the syscalls the rule is about)")
        }
        if names.isEmpty {
            throw fail(path.key("names"), "is empty; a rule must name at least one syscall")
        }
        let namePath: (Int) -> JSONPath = entry["name"] != nil ? { (_: Int) in path.key("name") } : { path.key("names").index($0) }
        for (i, name) in names.enumerated() where !Self.isSyscallName(name) {
            throw fail(namePath(i), "\(quoted(name)) is not a syscall name (lower-case letters, digits and '_')")
        }

        guard let actionValue = entry["action"] else {
            throw fail(path, "missing `action`, e.g. \"SCMP_ACT_ALLOW\"")
        }
        let action = try self.action(actionValue, path.key("action"), errnoRet: entry["errnoRet"], errnoPath: path.key("errnoRet"))

        var conditions: [SeccompCondition] = []
        if let args = entry["args"] {
            let ap = path.key("args")
            for (i, arg) in try array(args, ap, of: "objects").enumerated() {
                conditions.append(try condition(arg, ap.index(i)))
            }
        }
        let comment = try entry["comment"].map { v throws(OTKError) in try string(v, path.key("comment")) } ?? ""

        let includes = try filter(entry["includes"], path.key("includes"))
        let excludes = try filter(entry["excludes"], path.key("excludes"))
        if !includes.caps.isEmpty { return nil }                                   // otk grants no capability
        if !includes.arches.isEmpty && hostNames.isDisjoint(with: includes.arches) { return nil }
        if !hostNames.isDisjoint(with: excludes.arches) { return nil }
        if let min = includes.minKernel, kernel < min { return nil }
        if let min = excludes.minKernel, kernel >= min { return nil }
        // excludes.caps: the sandbox holds none of them, so the rule applies.

        return SeccompRule(names: names, action: action, conditions: conditions, comment: comment,
                           location: SourceLocation(file: file, line: line))
    }

    static func isSyscallName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    func condition(_ value: Any, _ path: JSONPath) throws(OTKError) -> SeccompCondition {
        let arg = try object(value, path, known: Self.argKeys)
        guard let indexValue = arg["index"] else { throw fail(path, "missing `index` (the argument's position, 0...5)") }
        let index = try unsigned(indexValue, path.key("index"))
        guard index <= 5 else { throw fail(path.key("index"), "\(index) is not an argument index (0...5)") }

        guard let opValue = arg["op"] else { throw fail(path, "missing `op`, e.g. \"SCMP_CMP_EQ\"") }
        let opName = try string(opValue, path.key("op"))
        guard let op = Self.comparisons.first(where: { $0.0 == opName })?.1 else {
            throw fail(path.key("op"), "\(quoted(opName)) is not a comparison (known: \(Self.comparisons.map(\.0).joined(separator: ", ")))")
        }

        guard let v = arg["value"] else { throw fail(path, "missing `value`") }
        let value = try unsigned(v, path.key("value"))
        let valueTwo = try arg["valueTwo"].map { v throws(OTKError) in try unsigned(v, path.key("valueTwo")) } ?? 0
        if op != .maskedEqual && valueTwo != 0 {
            throw fail(path.key("valueTwo"), "is only used by SCMP_CMP_MASKED_EQ; with \(opName) it must be 0 or absent")
        }
        return SeccompCondition(index: UInt8(index), op: op, value: value, valueTwo: valueTwo)
    }

    struct Filter {
        var caps: [String] = []
        var arches: Set<String> = []
        var minKernel: (Int, Int)?
    }

    func filter(_ value: Any?, _ path: JSONPath) throws(OTKError) -> Filter {
        guard let value else { return Filter() }
        let f = try object(value, path, known: Self.filterKeys)
        var out = Filter()
        if let caps = f["caps"] {
            out.caps = try strings(caps, path.key("caps"))
            for (i, cap) in out.caps.enumerated() where cap.isEmpty {
                throw fail(path.key("caps").index(i), "is empty; expected a capability name such as \"CAP_SYS_ADMIN\"")
            }
        }
        if let arches = f["arches"] {
            let ap = path.key("arches")
            for (i, name) in try strings(arches, ap).enumerated() {
                guard Self.filterArches.contains(name) else {
                    throw fail(ap.index(i), "\(quoted(name)) is not an architecture name (known: \(Self.filterArches.sorted().joined(separator: ", ")))")
                }
                out.arches.insert(name)
            }
        }
        if let minKernel = f["minKernel"] {
            let kp = path.key("minKernel")
            let text = try string(minKernel, kp)
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2,
                  parts.allSatisfy({ !$0.isEmpty && $0.count <= 6 && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
                  let major = Int(parts[0]), let minor = Int(parts[1])
            else {
                throw fail(kp, "\(quoted(text)) is not a kernel version such as \"5.8\" (major.minor)")
            }
            out.minKernel = (major, minor)
        }
        return out
    }
}
