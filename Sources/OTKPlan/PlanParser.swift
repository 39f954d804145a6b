import OTKConfig
import OTKModel

/// Reads plans (JSON) strictly and checks everything about them that can be checked before a
/// byte is written. The rules are in docs/plan-format.md; each error is a `.badInput` error
/// whose message begins with the JSON path (`` `files[3].filename`: absolute paths are not allowed ``)
/// and whose location is the file and line.
public enum PlanParser {
    static let topLevelKeys: Set<String> = [
        "name", "description", "files", "run", "post_install", "stack", "dependencies", "build", "env",
    ]
    static let fileKeys: Set<String> = ["filename", "code", "mode", "encoding"]

    /// The longest file or directory name (one path component), in UTF-8 bytes: Linux's NAME_MAX.
    public static let maxComponentBytes = 255
    /// The longest slug `slug(_:)` returns.
    public static let maxSlugLength = 64
    /// The workspace directory where otk keeps the plan and its run script; no plan file may be in it.
    public static let reservedDirectory = ".otk"

    /// Parses and validates a plan.
    ///
    /// - Parameters:
    ///   - bytes: the plan's JSON text (UTF-8; a byte-order mark is allowed).
    ///   - file: the plan's path, for error locations.
    ///   - limits: the limits on file count and sizes.
    ///
    /// A key whose value is `null` counts as absent; `name` and `files` are required. A `null`
    /// inside an array, or as an `env` value, is a type error.
    public static func parse(_ bytes: [UInt8], file: String, limits: PlanLimits = PlanLimits()) throws(OTKError) -> Plan {
        let root = try StrictJSON.decode(bytes, file: file, maximumSize: limits.maxPlanBytes, document: "a plan",
                                         expected: "`name` and `files`")
        let reader = StrictJSONReader(file: file, bytes: bytes,
                                      unknownKeyRemedy: "otk never ignores a key it does not know; remove or correct it")
        try reader.refuseDuplicateKeys()
        return try PlanReader(reader: reader, limits: limits).plan(root)
    }

    // MARK: Slugs

    /// The name of a plan's output directory: lowercase ASCII letters and digits, with every run of
    /// other characters turned into one `-`, no `-` at either end, at most 64 characters;
    /// "plan" when nothing is left. "My API (v2)" gives "my-api-v2".
    public static func slug(_ name: String) -> String {
        var out = ""
        var pendingDash = false
        for scalar in name.unicodeScalars {
            let v = scalar.value
            let c: Character
            if v >= 0x61 && v <= 0x7A || v >= 0x30 && v <= 0x39 {
                c = Character(scalar)
            } else if v >= 0x41 && v <= 0x5A {
                c = Character(Unicode.Scalar(v + 0x20)!)
            } else {
                pendingDash = true
                continue
            }
            if out.count >= maxSlugLength { break }
            if pendingDash && !out.isEmpty {
                if out.count + 1 >= maxSlugLength { break }
                out.append("-")
            }
            pendingDash = false
            out.append(c)
        }
        return out.isEmpty ? "plan" : out
    }

    /// Whether `s` could have come from `slug(_:)`: what `PlanMaterializer` accepts as a directory name.
    public static func isSlug(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= maxSlugLength, s.first != "-", s.last != "-" else { return false }
        return s.utf8.allSatisfy { $0 >= 0x61 && $0 <= 0x7A || $0 >= 0x30 && $0 <= 0x39 || $0 == 0x2D }
    }

    // MARK: File rules (shared with the materializer)

    /// Why `filename` may not be written, or nil when it may. The rules:
    /// relative; no empty, `.` or `..` component (so no `//` and no trailing `/`); no NUL, control,
    /// format (bidi) or line-separator character; no backslash; no component that starts with `-`;
    /// no `.git` or `.hg` component (any case); at most `limits.maxPathBytes` bytes,
    /// `limits.maxDepth` components and 255 bytes per component.
    public static func filenameProblem(_ filename: String, limits: PlanLimits = PlanLimits()) -> String? {
        if filename.isEmpty { return "the file name is empty" }
        for scalar in filename.unicodeScalars {
            if scalar.value == 0 { return "the file name contains a NUL character" }
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator:
                return "the file name contains the invisible or control character U+\(hex4(scalar.value))"
            default: break
            }
            if scalar == "\\" {
                return "the file name contains a backslash; separate directories with `/` (a backslash is a Windows separator, and on Linux it would become part of one file's name)"
            }
        }
        if filename.hasPrefix("/") { return "absolute paths are not allowed" }
        if filename.hasSuffix("/") { return "the file name ends with `/`: it must name a file, not a directory" }
        let bytes = filename.utf8.count
        if bytes > limits.maxPathBytes {
            return "the file name is \(bytes) bytes long; the limit is \(limits.maxPathBytes) bytes"
        }
        let components = filename.split(separator: "/", omittingEmptySubsequences: false)
        if components.count > limits.maxDepth {
            return "the file name has \(components.count) components; the limit is \(limits.maxDepth)"
        }
        for component in components {
            switch component {
            case "": return "the file name contains an empty component (`//`)"
            case ".": return "the file name contains a `.` component; write the path without it"
            case "..": return "`..` is not allowed: files must stay inside the project directory"
            default: break
            }
            if component.utf8.count > maxComponentBytes {
                return "a component of the file name is \(component.utf8.count) bytes long; the limit is \(maxComponentBytes) bytes"
            }
            if component.hasPrefix("-") {
                return "the component `\(component)` starts with `-`, which commands would read as an option"
            }
            let lower = component.lowercased()
            if lower == ".git" || lower == ".hg" {
                return "files inside `\(component)` are not allowed: version-control metadata can make commands run on the host (hooks, core.fsmonitor)"
            }
        }
        return nil
    }

    /// The first clash between files: a name written twice, two names that differ only in case
    /// (or Unicode normalization), or a file whose name is a directory another file needs.
    /// Returns the index of the later file and the message.
    public static func filesClash(_ filenames: [String]) -> (index: Int, message: String)? {
        var fileAt: [String: Int] = [:]          // folded name -> index
        var directoryFor: [String: Int] = [:]    // folded directory prefix -> first index that needs it
        for (i, name) in filenames.enumerated() {
            let folded = name.lowercased()
            if let j = fileAt[folded] {
                if filenames[j] == name {
                    return (i, "`\(name)` is already written by `files[\(j)]`; a plan writes each file once")
                }
                return (i, "`\(name)` differs from `files[\(j)]` (`\(filenames[j])`) only in case or Unicode normalization; they would be one file on some file systems")
            }
            if let j = directoryFor[folded] {
                return (i, "`\(name)` is a file here, but `files[\(j)]` (`\(filenames[j])`) needs a directory of that name")
            }
            let parts = folded.split(separator: "/")
            var prefix = ""
            for part in parts.dropLast() {
                prefix += prefix.isEmpty ? String(part) : "/" + part
                if let j = fileAt[prefix] {
                    return (i, "`\(name)` needs a directory `\(filenames[j])`, but `files[\(j)]` is a file of that name")
                }
                if directoryFor[prefix] == nil { directoryFor[prefix] = i }
            }
            fileAt[folded] = i
        }
        return nil
    }

    /// Why `mode` may not be set, or nil: only the permission bits 0...0o777 are allowed.
    public static func modeProblem(_ mode: UInt16) -> String? {
        if mode & 0o7000 != 0 {
            return "mode \(String(mode, radix: 8)) sets the setuid, setgid or sticky bit; otk refuses them"
        }
        if mode > 0o777 { return "mode \(String(mode, radix: 8)) is not a permission mode (000...777)" }
        return nil
    }

    /// Reads a mode written as an octal string: "644", "0755". Nil if it is not one.
    static func octalMode(_ text: String) -> UInt16? {
        let digits = Array(text.utf8)
        guard digits.count == 3 || digits.count == 4, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }) else { return nil }
        return digits.reduce(0) { $0 * 8 + UInt16($1 - 0x30) }
    }

    /// Decodes standard, padded base64 (RFC 4648 §4) and nothing else: no whitespace, no URL-safe
    /// alphabet, no missing padding, and the unused bits of the last group must be zero.
    public static func decodeBase64(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case 0x41...0x5A: return UInt32(c - 0x41)
            case 0x61...0x7A: return UInt32(c - 0x61 + 26)
            case 0x30...0x39: return UInt32(c - 0x30 + 52)
            case 0x2B: return 62
            case 0x2F: return 63
            default: return nil
            }
        }
        var i = 0
        while i < input.count {
            let last = i + 4 == input.count
            let pad = last ? (input[i + 3] == 0x3D ? (input[i + 2] == 0x3D ? 2 : 1) : 0) : 0
            var group: UInt32 = 0
            for k in 0..<4 {
                if k >= 4 - pad {
                    group <<= 6
                    continue
                }
                guard let v = value(input[i + k]) else { return nil }
                group = group << 6 | v
            }
            out.append(UInt8(group >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(group >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(group & 0xFF)) }
            // Non-canonical encodings (unused bits set) are refused: two texts must not give one file.
            if pad == 1 && group & 0xFF != 0 || pad == 2 && group & 0xFFFF != 0 { return nil }
            i += 4
        }
        return out
    }

    static func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}

/// The validation and conversion of one plan document.
private struct PlanReader {
    let reader: StrictJSONReader
    let limits: PlanLimits

    func fail(_ path: JSONPath, _ message: String, remedy: String? = nil) -> OTKError {
        reader.fail(path, message, remedy: remedy)
    }

    func plan(_ root: Any) throws(OTKError) -> Plan {
        let top = try reader.object(root, .root, known: PlanParser.topLevelKeys)
        let root = JSONPath.root

        guard let nameValue = top["name"] else {
            throw fail(root.key("name"), "required key missing; the output directory is named after it")
        }
        let name = try reader.string(nameValue, root.key("name"))
        let description = try top["description"].map { v throws(OTKError) in try reader.string(v, root.key("description")) }

        guard let filesValue = top["files"] else {
            throw fail(root.key("files"), "required key missing (an array of {\"filename\", \"code\"} objects)")
        }
        let files = try self.files(filesValue, root.key("files"))

        let run = try top["run"].map { v throws(OTKError) in try command(v, root.key("run")) }
        let build = try top["build"].map { v throws(OTKError) in try command(v, root.key("build")) }
        var postInstall: [String] = []
        if let v = top["post_install"] {
            let path = root.key("post_install")
            postInstall = try reader.strings(v, path)
            for (i, s) in postInstall.enumerated() { try noNUL(s, path.index(i)) }
        }
        var stack: String?
        if let v = top["stack"] {
            let s = try reader.string(v, root.key("stack"))
            guard isStackName(s) else {
                throw fail(root.key("stack"), "\(reader.quoted(s)) is not a stack name (lowercase letters, digits, `_`, `+`, `-`, `.`; up to 64 characters, starting with a letter or digit)")
            }
            stack = s
        }
        var dependencies: [String] = []
        if let v = top["dependencies"] {
            let path = root.key("dependencies")
            dependencies = try reader.strings(v, path)
            for (i, d) in dependencies.enumerated() {
                if d.isEmpty { throw fail(path.index(i), "a dependency is empty") }
                if d.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                    throw fail(path.index(i), "a dependency contains a control character")
                }
                if d.hasPrefix("-") {
                    throw fail(path.index(i), "\(reader.quoted(d)) starts with `-`: package managers would read it as an option",
                               remedy: "options for the package manager belong in the stack, not in `dependencies`")
                }
            }
        }
        var env: [String: String] = [:]
        if let v = top["env"] {
            let path = root.key("env")
            guard let dict = v as? [String: Any] else {
                throw fail(path, "expected an object of strings, found \(jsonTypeName(v))")
            }
            for key in dict.keys.sorted() {
                guard isEnvName(key) else {
                    throw fail(path.key(key), "not an environment variable name (letters, digits and `_`, not starting with a digit)")
                }
                let value = try reader.string(dict[key]!, path.key(key))
                try noNUL(value, path.key(key))
                env[key] = value
            }
        }
        return Plan(name: name, description: description, files: files, run: run, postInstall: postInstall, stack: stack,
                    dependencies: dependencies, build: build, env: env)
    }

    func files(_ value: Any, _ path: JSONPath) throws(OTKError) -> [PlanFile] {
        let entries = try reader.array(value, path, of: "objects with `filename` and `code`")
        if entries.count > limits.maxFiles {
            throw fail(path, "the plan has \(entries.count) files; the limit is \(limits.maxFiles)",
                       remedy: "raise the profile's plan limits or split the plan")
        }
        var out: [PlanFile] = []
        var total = 0
        for (i, entry) in entries.enumerated() {
            let ep = path.index(i)
            let fields = try reader.object(entry, ep, known: PlanParser.fileKeys)
            guard let filenameValue = fields["filename"] else { throw fail(ep.key("filename"), "required key missing") }
            let filename = try reader.string(filenameValue, ep.key("filename"))
            if let problem = PlanParser.filenameProblem(filename, limits: limits) {
                throw fail(ep.key("filename"), problem)
            }
            // Compared without case, like every other name clash (PlanParser.filesClash).
            if filename.split(separator: "/").first.map({ $0.lowercased() == PlanParser.reservedDirectory }) == true {
                throw fail(ep.key("filename"), "`\(PlanParser.reservedDirectory)/` is reserved for otk's own records of the run")
            }
            guard let codeValue = fields["code"] else { throw fail(ep.key("code"), "required key missing") }
            let code = try reader.string(codeValue, ep.key("code"))

            var encoding = PlanEncoding.utf8
            if let v = fields["encoding"] {
                let s = try reader.string(v, ep.key("encoding"))
                guard let e = PlanEncoding(rawValue: s) else {
                    throw fail(ep.key("encoding"), "\(reader.quoted(s)) is not an encoding; expected \"utf8\" or \"base64\"")
                }
                encoding = e
            }
            var mode: UInt16?
            if let v = fields["mode"] {
                guard let s = v as? String else {
                    throw fail(ep.key("mode"), "expected an octal string such as \"644\" or \"0755\", found \(jsonTypeName(v))",
                               remedy: "write the mode as a string: a JSON number such as 755 is ambiguous (decimal or octal?)")
                }
                guard let m = PlanParser.octalMode(s) else {
                    throw fail(ep.key("mode"), "\(reader.quoted(s)) is not an octal mode such as \"644\" or \"0755\"")
                }
                if let problem = PlanParser.modeProblem(m) { throw fail(ep.key("mode"), problem) }
                mode = m
            }

            let content: [UInt8]
            switch encoding {
            case .utf8:
                content = Array(code.utf8)
            case .base64:
                if code.utf8.count / 4 * 3 > limits.maxFileBytes + 2 {
                    throw fail(ep.key("code"), "the file decodes to about \(code.utf8.count / 4 * 3) bytes; the limit per file is \(limits.maxFileBytes) bytes")
                }
                guard let decoded = PlanParser.decodeBase64(code) else {
                    throw fail(ep.key("code"), "not valid base64 (standard alphabet, padded with `=`, no whitespace or line breaks)")
                }
                content = decoded
            }
            if content.count > limits.maxFileBytes {
                throw fail(ep.key("code"), "the file has \(content.count) bytes; the limit per file is \(limits.maxFileBytes) bytes",
                           remedy: "raise the profile's plan limits")
            }
            total += content.count
            if total > limits.maxTotalBytes {
                throw fail(ep.key("code"), "the files reach \(total) bytes in total here; the limit is \(limits.maxTotalBytes) bytes",
                           remedy: "raise the profile's plan limits")
            }
            out.append(PlanFile(filename: filename, content: content, mode: mode, encoding: encoding))
        }
        if let clash = PlanParser.filesClash(out.map(\.filename)) {
            throw fail(path.index(clash.index).key("filename"), clash.message)
        }
        return out
    }

    func command(_ value: Any, _ path: JSONPath) throws(OTKError) -> PlanCommand {
        if let s = value as? String {
            if s.allSatisfy(\.isWhitespace) { throw fail(path, "the command is empty") }
            try noNUL(s, path)
            return .shell(s)
        }
        guard value is [Any] else {
            throw fail(path, "expected a command line (a string) or an argv list (an array of strings), found \(jsonTypeName(value))")
        }
        let argv = try reader.strings(value, path)
        guard let first = argv.first else { throw fail(path, "the argv list is empty") }
        if first.isEmpty { throw fail(path.index(0), "the program name is empty") }
        for (i, a) in argv.enumerated() { try noNUL(a, path.index(i)) }
        return .argv(argv)
    }

    func noNUL(_ s: String, _ path: JSONPath) throws(OTKError) {
        if s.utf8.contains(0) { throw fail(path, "contains a NUL character, which cannot be passed to a program") }
    }

    func isStackName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first, b.count <= 64 else { return false }
        func ok(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A || c >= 0x30 && c <= 0x39 }
        return ok(first) && b.allSatisfy { ok($0) || $0 == 0x5F || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E }
    }

    func isEnvName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first else { return false }
        func letter(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A || c >= 0x41 && c <= 0x5A || c == 0x5F }
        return letter(first) && b.allSatisfy { letter($0) || $0 >= 0x30 && $0 <= 0x39 }
    }
}
