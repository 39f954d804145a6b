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
        let root = try decode(bytes, file: file)
        let importer = DockerSeccompImporter(file: file, locator: JSONLineLocator(bytes), hostNames: hostNames, kernel: kernel)
        return try importer.policy(root)
    }

    /// Checks the bytes and runs them through JSONSerialization; returns the top-level object.
    private static func decode(_ bytes: [UInt8], file: String) throws(OTKError) -> [String: Any] {
        func fail(_ message: String, line: Int? = nil, remedy: String? = nil) -> OTKError {
            OTKError(.badInput, message, remedy: remedy, location: SourceLocation(file: file, line: line))
        }
        if bytes.count > maximumSize {
            throw fail("file is larger than \(maximumSize) bytes")
        }
        if let offset = firstInvalidUTF8(bytes) {
            throw fail("file is not UTF-8 text (invalid byte at offset \(offset))", line: lineAt(offset, in: bytes))
        }
        if let offset = bytes.firstIndex(of: 0) {
            // Valid UTF-8, but never valid in JSON text; JSONSerialization would take it for UTF-16 or UTF-32.
            throw fail("file contains a NUL byte at offset \(offset); a seccomp profile must be UTF-8 JSON",
                       line: lineAt(offset, in: bytes))
        }
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.dropFirst(3) : bytes[...]
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            throw fail("file is empty; expected a JSON object with at least `defaultAction`")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(body), options: [])
        } catch {
            throw syntaxError(error, bytes: bytes, bodyStart: bytes.count - body.count, file: file)
        }
        guard let root = object as? [String: Any] else {
            throw fail("the top level must be a JSON object (with `defaultAction` and `syscalls`), found \(jsonTypeName(object))",
                       line: 1)
        }
        return root
    }

    /// Turns a JSONSerialization error into an OTKError located at the line it names.
    private static func syntaxError(_ error: Error, bytes: [UInt8], bodyStart: Int, file: String) -> OTKError {
        let nsError = error as NSError
        let detail = (nsError.userInfo["NSDebugDescription"] as? String) ?? nsError.localizedDescription
        var line: Int?
        var position = ""
        if let l = number(after: "line ", in: detail) {
            // Darwin's Foundation says "around line L, column C".
            line = l
        } else if let offset = number(after: "character ", in: detail) {
            // swift-corelibs-foundation says "around character N": a 0-based byte offset.
            let at = min(bodyStart + offset, bytes.count)
            line = lineAt(at, in: bytes)
            let lineStart = bytes[..<at].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            let column = String(decoding: bytes[lineStart..<at], as: UTF8.self).unicodeScalars.count + 1
            position = " (line \(line!), column \(column))"
        } else if detail.localizedCaseInsensitiveContains("end of file") || detail.localizedCaseInsensitiveContains("end of data") {
            // The text stops inside a value: blame the last line that has something on it.
            let last = bytes.lastIndex { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) } ?? 0
            line = lineAt(last, in: bytes)
        }
        return OTKError(.badInput, "not valid JSON: \(detail)\(position)", remedy: "check the JSON syntax near that line",
                        location: SourceLocation(file: file, line: line))
    }

    /// The first decimal number that follows `marker` in `text`.
    private static func number(after marker: String, in text: String) -> Int? {
        guard let range = text.range(of: marker) else { return nil }
        let digits = text[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
        return Int(digits)
    }

    /// The 1-based line of the byte at `offset`.
    private static func lineAt(_ offset: Int, in bytes: [UInt8]) -> Int {
        bytes[..<min(offset, bytes.count)].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
    }

    /// The offset of the first byte that is not part of valid UTF-8, or nil.
    private static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}

/// The name of a JSONSerialization value's type, for "expected X, found Y" messages.
private func jsonTypeName(_ value: Any) -> String {
    switch value {
    case is NSNull: return "null"
    case is String: return "a string"
    case let n as NSNumber: return isBoolean(n) ? "a boolean" : "a number"
    case is [String: Any]: return "an object"
    case is [Any]: return "an array"
    default: return "a value of type \(type(of: value))"
    }
}

/// JSONSerialization returns `true`/`false` as NSNumbers whose type is C `char` (`c`; `B` for C99 bool).
private func isBoolean(_ n: NSNumber) -> Bool {
    let type = String(cString: n.objCType)
    return type == "c" || type == "B"
}

/// A JSON path such as `syscalls[3].args[0].op`.
struct JSONPath: CustomStringConvertible, Sendable {
    enum Component: Equatable, Sendable {
        case key(String)
        case index(Int)
    }

    var components: [Component] = []

    static let root = JSONPath()

    func key(_ name: String) -> JSONPath { JSONPath(components: components + [.key(name)]) }
    func index(_ i: Int) -> JSONPath { JSONPath(components: components + [.index(i)]) }

    var description: String {
        var s = ""
        for c in components {
            switch c {
            case .key(let k): s += s.isEmpty ? k : "." + k
            case .index(let i): s += "[\(i)]"
            }
        }
        return s
    }
}

/// The validation and conversion proper, with the means to locate every error.
private struct DockerSeccompImporter {
    let file: String
    let locator: JSONLineLocator
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

    // MARK: Errors

    func location(_ path: JSONPath) -> SourceLocation {
        SourceLocation(file: file, line: locator.line(of: path.components))
    }

    func fail(_ path: JSONPath, _ message: String, remedy: String? = nil) -> OTKError {
        let name = path.description
        return OTKError(.badInput, name.isEmpty ? message : "`\(name)`: \(message)", remedy: remedy, location: location(path))
    }

    /// A value quoted for a message, shortened if it is long.
    func quoted(_ s: String) -> String {
        let shown = s.count > 64 ? String(s.prefix(61)) + "..." : s
        return "`\(shown.unicodeScalars.map { $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())`"
    }

    // MARK: Typed access

    /// The object at `path`, with only `known` keys; JSON nulls removed.
    func object(_ value: Any, _ path: JSONPath, known: Set<String>) throws(OTKError) -> [String: Any] {
        guard let dict = value as? [String: Any] else {
            throw fail(path, "expected an object, found \(jsonTypeName(value))")
        }
        for key in dict.keys.sorted() where !known.contains(key) {
            throw fail(path.key(key), "unknown key (known keys\(path.components.isEmpty ? "" : " here"): \(known.sorted().joined(separator: ", ")))",
                       remedy: "an unknown key may be a typo that weakens the profile; remove or correct it")
        }
        return dict.filter { !($0.value is NSNull) }
    }

    func string(_ value: Any, _ path: JSONPath) throws(OTKError) -> String {
        guard let s = value as? String else { throw fail(path, "expected a string, found \(jsonTypeName(value))") }
        return s
    }

    func array(_ value: Any, _ path: JSONPath, of what: String) throws(OTKError) -> [Any] {
        guard let a = value as? [Any] else { throw fail(path, "expected an array of \(what), found \(jsonTypeName(value))") }
        return a
    }

    func strings(_ value: Any, _ path: JSONPath) throws(OTKError) -> [String] {
        var out: [String] = []
        for (i, element) in try array(value, path, of: "strings").enumerated() {
            out.append(try string(element, path.index(i)))
        }
        return out
    }

    /// A whole number in 0...UInt64.max, read exactly.
    func unsigned(_ value: Any, _ path: JSONPath) throws(OTKError) -> UInt64 {
        guard let n = value as? NSNumber, !isBoolean(n) else {
            throw fail(path, "expected a whole number, found \(jsonTypeName(value))")
        }
        switch String(cString: n.objCType) {
        case "Q", "L", "I", "S", "C":
            return n.uint64Value
        case "q", "l", "i", "s":
            let v = n.int64Value
            guard v >= 0 else { throw fail(path, "\(v) is negative; expected a whole number in 0...\(UInt64.max)") }
            return UInt64(v)
        default:
            // Floating-point ("d", "f") or NSDecimalNumber: a fraction, an exponent, or beyond UInt64.
            throw fail(path, "\(n.stringValue) is not a whole number in 0...\(UInt64.max) written without a fraction or exponent")
        }
    }

    func errno(_ value: Any, _ path: JSONPath) throws(OTKError) -> UInt16 {
        let v = try unsigned(value, path)
        guard (1...4094).contains(v) else {
            throw fail(path, "\(v) is not an errno value (1...4094)")
        }
        return UInt16(v)
    }

    // MARK: The profile

    func policy(_ root: Any) throws(OTKError) -> SeccompPolicy {
        if let duplicate = locator.firstDuplicateKey() {
            let path = JSONPath(components: duplicate.path)
            throw OTKError(.badInput, "`\(path)`: key written twice in one object (JSON parsers disagree on which one counts)",
                           remedy: "keep one of them", location: SourceLocation(file: file, line: duplicate.line))
        }
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

/// Finds the lines where values of a JSON text begin. It only locates: values are never
/// interpreted, and the text is expected to have been accepted by JSONSerialization already
/// (on other text it gives up quietly instead of failing).
struct JSONLineLocator: Sendable {
    private let bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The line where the value at `path` begins, or where its deepest existing ancestor
    /// begins when the path does not exist; nil for a text without a value.
    func line(of path: [JSONPath.Component]) -> Int? {
        seek(path)?.cursor.line
    }

    /// The lines where the elements of the array at `path` begin; empty if there is none.
    func elementLines(of path: [JSONPath.Component]) -> [Int] {
        guard let found = seek(path), found.complete, found.cursor.current == UInt8(ascii: "[") else { return [] }
        var c = found.cursor
        var lines: [Int] = []
        c.advance()
        while true {
            c.skipSpace()
            guard let b = c.current, b != UInt8(ascii: "]") else { return lines }
            lines.append(c.line)
            c.skipValue()
            c.skipSpace()
            guard c.current == UInt8(ascii: ",") else { return lines }
            c.advance()
        }
    }

    /// Where `path` leads: a cursor at the start of the deepest value found, and whether
    /// that value is the one `path` names.
    private func seek(_ path: [JSONPath.Component]) -> (cursor: Cursor, complete: Bool)? {
        var c = Cursor(bytes)
        c.skipSpace()
        guard c.current != nil else { return nil }
        for component in path {
            var next = c
            guard next.enter(component) else { return (c, false) }
            c = next
        }
        return (c, true)
    }

    /// The first key that occurs twice in one object: its path and line.
    func firstDuplicateKey() -> (path: [JSONPath.Component], line: Int)? {
        enum Expect { case value, key, afterValue }
        var c = Cursor(bytes)
        var keySets: [Set<String>?] = []      // one per open container; nil for arrays
        var path: [JSONPath.Component] = []
        var expect = Expect.value
        while true {
            c.skipSpace()
            guard let b = c.current else { return nil }
            switch expect {
            case .value:
                if b == UInt8(ascii: "{") {
                    c.advance()
                    keySets.append([])
                    expect = .key
                } else if b == UInt8(ascii: "[") {
                    c.advance()
                    keySets.append(nil)
                    path.append(.index(0))
                    expect = .value
                } else if b == UInt8(ascii: "]") {
                    // An empty array, or a trailing comma (which JSONSerialization tolerates).
                    c.advance()
                    guard !path.isEmpty, !keySets.isEmpty else { return nil }
                    path.removeLast()
                    keySets.removeLast()
                    expect = .afterValue
                    continue
                } else {
                    c.skipValue()
                    expect = .afterValue
                }
            case .key:
                if b == UInt8(ascii: "}") {
                    c.advance()
                    guard !keySets.isEmpty else { return nil }
                    keySets.removeLast()
                    expect = .afterValue
                    continue
                }
                guard b == UInt8(ascii: "\"") else { return nil }
                let line = c.line
                let key = c.readString()
                guard let top = keySets.indices.last, keySets[top] != nil else { return nil }
                if !keySets[top]!.insert(key).inserted {
                    return (path + [.key(key)], line)
                }
                c.skipSpace()
                guard c.current == UInt8(ascii: ":") else { return nil }
                c.advance()
                path.append(.key(key))
                expect = .value
            case .afterValue:
                // A value ended; it is the one the last path component names.
                guard let container = keySets.last else { return nil }   // the top-level value: done
                guard !path.isEmpty else { return nil }
                let finished = path.removeLast()
                if b == UInt8(ascii: ",") {
                    c.advance()
                    if container == nil, case .index(let i) = finished {
                        path.append(.index(i + 1))
                        expect = .value
                    } else {
                        expect = .key
                    }
                } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                    c.advance()
                    keySets.removeLast()
                    expect = .afterValue
                } else {
                    return nil
                }
            }
        }
    }

    /// A position in the text, with its line.
    private struct Cursor {
        let bytes: [UInt8]
        var position = 0
        var line = 1

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func advance() {
            if position < bytes.count {
                if bytes[position] == 0x0A { line += 1 }
                position += 1
            }
        }

        mutating func skipSpace() {
            while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { advance() }
        }

        /// From an opening quote to just past the closing one.
        mutating func skipString() {
            advance()
            while let b = current {
                advance()
                if b == UInt8(ascii: "\\") {
                    advance()
                } else if b == UInt8(ascii: "\"") {
                    return
                }
            }
        }

        /// Reads the string at the cursor (a key); escapes are decoded by JSONSerialization.
        mutating func readString() -> String {
            let start = position
            skipString()
            let raw = bytes[start..<position]
            if !raw.contains(UInt8(ascii: "\\")) {
                return String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
            }
            let decoded = try? JSONSerialization.jsonObject(with: Data(raw), options: [.fragmentsAllowed])
            return decoded as? String ?? String(decoding: raw, as: UTF8.self)
        }

        /// Past the value at the cursor: a string, a whole object or array, or a literal.
        mutating func skipValue() {
            guard let first = current else { return }
            if first == UInt8(ascii: "\"") {
                skipString()
            } else if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
                var depth = 0
                while let b = current {
                    switch b {
                    case UInt8(ascii: "\""):
                        skipString()
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                    default:
                        break
                    }
                    advance()
                    if depth == 0 { return }
                }
            } else {
                while let b = current, !(b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}")
                                          || b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D) {
                    advance()
                }
            }
        }

        /// Moves into the member or element `component` names, if the value at the cursor has it.
        mutating func enter(_ component: JSONPath.Component) -> Bool {
            switch component {
            case .key(let wanted):
                guard current == UInt8(ascii: "{") else { return false }
                advance()
                while true {
                    skipSpace()
                    guard current == UInt8(ascii: "\"") else { return false }
                    let key = readString()
                    skipSpace()
                    guard current == UInt8(ascii: ":") else { return false }
                    advance()
                    skipSpace()
                    if key == wanted { return current != nil }
                    skipValue()
                    skipSpace()
                    guard current == UInt8(ascii: ",") else { return false }
                    advance()
                }
            case .index(let wanted):
                guard current == UInt8(ascii: "[") else { return false }
                advance()
                var i = 0
                while true {
                    skipSpace()
                    guard let b = current, b != UInt8(ascii: "]") else { return false }
                    if i == wanted { return true }
                    skipValue()
                    skipSpace()
                    guard current == UInt8(ascii: ",") else { return false }
                    advance()
                    i += 1
                }
            }
        }
    }
}
