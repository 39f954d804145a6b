import Foundation
import OTKModel

/// A package manager whose registry otk reads from the host's own configuration.
public enum PackageManager: String, Sendable, CaseIterable {
    case pip, npm, go, cargo, maven
}

/// One registry a package manager is configured, on the host, to reach.
public struct RegistryEndpoint: Sendable, Hashable, Codable {
    /// The lower-cased host name, or an IP literal without brackets.
    public var host: String
    /// The explicit port, else the scheme's default (http 80, https 443).
    public var port: Int
    /// The URL as configured, with any `user:password@` replaced by `***@`.
    public var url: String
    /// Where it was read: an environment variable, or a host file with the key,
    /// e.g. `/etc/pip.conf [global] index-url`. Never holds a credential.
    public var source: String

    public init(host: String, port: Int, url: String, source: String) {
        self.host = host
        self.port = port
        self.url = url
        self.source = source
    }
}

/// Finds the registries a package manager is configured to use on the host, so that the
/// install phase's egress allowlist can name them without otk knowing any registry itself.
///
/// Reads only the manager's environment variables and its host-wide and per-user
/// configuration files, through `readFile`; never a file of the project (a project
/// `.npmrc`, a workspace `pip.conf` or `.cargo/config.toml`, a `pom.xml`), which comes
/// from an untrusted plan. A relative path from the environment would resolve against
/// the project directory, so it is not read either. No syscalls: the caller passes the
/// environment, the home directory and a file reader.
public struct RegistryDiscovery: Sendable {
    /// What one manager's configuration names.
    public struct Result: Sendable, Hashable {
        /// Deduplicated by (host, port), in the order found.
        public var endpoints: [RegistryEndpoint]
        /// Why something was ignored, what could not be read, what otk does not add.
        public var notes: [String]
        /// False when the configuration names no registry, so the manager would fall back
        /// to its built-in default registry, which otk does not assume.
        public var configured: Bool

        public init(endpoints: [RegistryEndpoint], notes: [String], configured: Bool) {
            self.endpoints = endpoints
            self.notes = notes
            self.configured = configured
        }
    }

    public let environment: [String: String]
    /// The absolute home directory `~` stands for; nil when unknown or relative.
    public let home: String?
    private let readFile: @Sendable (String) -> String?

    /// `readFile(path)` returns the text of the file at an absolute path, or nil when it is
    /// absent or unreadable.
    public init(environment: [String: String], home: String?, readFile: @escaping @Sendable (String) -> String?) {
        self.environment = environment
        self.home = home.flatMap { $0.hasPrefix("/") ? RegistryDiscovery.normalized($0) : nil }
        self.readFile = readFile
    }

    /// The registries `manager` is configured to use, with notes on what was ignored.
    public func discover(_ manager: PackageManager) -> Result {
        var scan = Scan(manager: manager)
        let configured: Bool
        switch manager {
        case .pip: configured = discoverPip(&scan)
        case .npm: configured = discoverNpm(&scan)
        case .go: configured = discoverGo(&scan)
        case .cargo: configured = discoverCargo(&scan)
        case .maven: configured = discoverMaven(&scan)
        }
        return Result(endpoints: scan.endpoints, notes: scan.notes, configured: configured)
    }
}

// MARK: - Collecting endpoints and notes

/// The endpoints and notes of one `discover` call.
private struct Scan {
    let manager: PackageManager
    var endpoints: [RegistryEndpoint] = []
    var notes: [String] = []
    private var seen: Set<String> = []

    init(manager: PackageManager) {
        self.manager = manager
    }

    /// Adds a note once, prefixed with the manager's name.
    mutating func note(_ text: String) {
        let line = "\(manager.rawValue): \(text)"
        if !notes.contains(line) { notes.append(line) }
    }

    /// The note for a manager that would fall back to its built-in default registry.
    mutating func noteBuiltInDefault(_ what: String) {
        note("\(what); \(manager.rawValue) would use its built-in default registry, which otk does not assume: "
             + "name the registry in \(manager.rawValue)'s host configuration, in the profile's network.allow, or with --allow-host")
    }

    /// Adds the endpoint `raw` names, read from `source`. `parse` is the text to parse when it
    /// differs from `raw` (a cargo `sparse+` prefix). Local paths and `file:` URLs are ignored,
    /// silently when `localPathsExpected`; anything else that is not an http or https URL gets a note.
    mutating func add(_ raw: String, source: String, parse: String? = nil, localPathsExpected: Bool = false) {
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        switch RegistryURL.parse(parse ?? text) {
        case .endpoint(let host, let port):
            let key = "\(host) \(port)"
            guard !seen.contains(key) else { return }
            seen.insert(key)
            endpoints.append(RegistryEndpoint(host: host, port: port, url: RegistryURL.redacted(text), source: source))
        case .local:
            if !localPathsExpected {
                note("\(source): `\(RegistryURL.redacted(text))` is a local path, not an http or https URL; ignored")
            }
        case .otherScheme(let scheme):
            note("\(source): `\(RegistryURL.redacted(text))` uses the \(scheme) scheme; only http and https registries are added; ignored")
        case .invalid(let reason):
            note("\(source): `\(RegistryURL.redacted(text))` is not a usable URL (\(reason)); ignored")
        }
    }
}

// MARK: - URLs

/// Just enough URL parsing to find a registry's host and port.
enum RegistryURL {
    enum Parsed: Equatable {
        case endpoint(host: String, port: Int)
        case local
        case otherScheme(String)
        case invalid(String)
    }

    static func parse(_ raw: String) -> Parsed {
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return .invalid("empty") }
        if text.hasPrefix("/") || text.hasPrefix(".") || text.hasPrefix("~") { return .local }
        guard let colon = text.firstIndex(of: ":") else { return .invalid("no scheme") }
        let scheme = text[..<colon].lowercased()
        guard let first = scheme.first, first.isASCII, first.isLetter,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }) else {
            return .invalid("no scheme")
        }
        if scheme == "file" { return .local }
        guard scheme == "http" || scheme == "https" else { return .otherScheme(scheme) }
        let afterScheme = text[text.index(after: colon)...]
        guard afterScheme.hasPrefix("//") else { return .invalid("no `//` after the scheme") }
        let rest = afterScheme.dropFirst(2)
        let authority = rest.prefix { !"/?#".contains($0) }
        let hostPort = authority.lastIndex(of: "@").map { authority[authority.index(after: $0)...] } ?? authority
        if hostPort.contains("${") { return .invalid("the host refers to a variable that is not set") }
        let host: String
        var portText: Substring = ""
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return .invalid("unclosed `[` in the host") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close].lowercased()
            let tail = hostPort[hostPort.index(after: close)...]
            if !tail.isEmpty {
                guard tail.hasPrefix(":") else { return .invalid("text after `]`") }
                portText = tail.dropFirst()
            }
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return .invalid("`[\(host)]` is not an IPv6 address")
            }
        } else {
            if let c = hostPort.firstIndex(of: ":") {
                host = hostPort[..<c].lowercased()
                portText = hostPort[hostPort.index(after: c)...]
            } else {
                host = hostPort.lowercased()
            }
            guard !host.isEmpty else { return .invalid("no host") }
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }),
                  !host.hasPrefix("."), !host.hasPrefix("-") else {
                return .invalid("`\(host)` is not a host name")
            }
        }
        var port = scheme == "https" ? 443 : 80
        if !portText.isEmpty {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(portText), (1...65535).contains(p) else {
                return .invalid("`\(portText)` is not a port")
            }
            port = p
        }
        return .endpoint(host: host, port: port)
    }

    /// `text` with any `user:password@` before the host replaced by `***@`.
    static func redacted(_ text: String) -> String {
        let authorityStart: String.Index
        if let r = text.range(of: "://") {
            authorityStart = r.upperBound
        } else {
            authorityStart = text.startIndex
        }
        let authorityEnd = text[authorityStart...].firstIndex { "/?#".contains($0) } ?? text.endIndex
        guard let at = text[authorityStart..<authorityEnd].lastIndex(of: "@") else { return text }
        return String(text[..<authorityStart]) + "***" + String(text[at...])
    }
}

// MARK: - Paths and files

extension RegistryDiscovery {
    /// `path` with `.`, `..` and repeated slashes resolved lexically.
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The environment variable's value, nil when unset or empty.
    fileprivate func env(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// The absolute path `raw` names, with `~` resolved; nil with a note when it is relative
    /// (it would resolve against the project directory) or needs an unknown home.
    fileprivate func hostPath(_ raw: String, naming what: String, _ scan: inout Scan) -> String? {
        var path = raw
        if path == "~" || path.hasPrefix("~/") {
            guard let home else {
                scan.note("the home directory is unknown, so \(what) `\(raw)` is not read")
                return nil
            }
            path = home + path.dropFirst()
        }
        guard path.hasPrefix("/") else {
            scan.note("\(what) is the relative path `\(raw)`; not read, since it would resolve against the project directory")
            return nil
        }
        return RegistryDiscovery.normalized(path)
    }

    /// `path` as shown in sources and notes, with the home directory as `~`.
    fileprivate func display(_ path: String) -> String {
        if let home, home != "/", path.hasPrefix(home + "/") { return "~" + path.dropFirst(home.count) }
        return path
    }

    fileprivate func read(_ path: String) -> String? {
        readFile(path)
    }

    /// Expands `${env.NAME}` and `${user.home}` as Maven does; unresolved references stay.
    fileprivate func mavenInterpolated(_ text: String, unresolved: inout [String]) -> String {
        var out = ""
        var rest = text[...]
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                rest = rest[start.lowerBound...]
                break
            }
            let name = String(rest[start.upperBound..<end])
            var value: String?
            if name.hasPrefix("env.") { value = environment[String(name.dropFirst(4))] }
            if name == "user.home" { value = home }
            if let value {
                out += value
            } else {
                out += "${\(name)}"
                unresolved.append(name)
            }
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }
}

/// Splits text into (line number, line) pairs; `\r\n` counts as one line break.
private func numberedLines(_ text: String) -> [(number: Int, text: Substring)] {
    text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        .enumerated().map { ($0.offset + 1, $0.element) }
}

private func trimmed<S: StringProtocol>(_ s: S) -> String {
    s.trimmingCharacters(in: .whitespaces)
}

/// Splits on whitespace and newlines, as pip splits list-valued options.
private func words(_ s: String) -> [String] {
    s.split(whereSeparator: { $0.isWhitespace || $0.isNewline }).map(String.init)
}

// MARK: - pip

/// One `key = value` of an INI file as Python's configparser reads it.
struct INIEntry: Equatable {
    var section: String
    var key: String
    var value: String
    var line: Int
}

/// The INI dialect of Python's `configparser.RawConfigParser`: `[section]` headers,
/// `key = value` or `key: value`, keys lower-cased, full-line `#` and `;` comments,
/// indented continuation lines. Problems that make pip refuse the file are reported,
/// and the rest of the file is still read.
enum INIFile {
    static func parse(_ text: String) -> (entries: [INIEntry], problems: [(line: Int, message: String)]) {
        var entries: [INIEntry] = []
        var problems: [(Int, String)] = []
        var section: String?
        var sectionsSeen: Set<String> = []
        var keysSeen: Set<String> = []
        var continuing: (index: Int, indent: Int)?
        for (number, line) in numberedLines(text) {
            let stripped = trimmed(line)
            if stripped.isEmpty { continue }
            if stripped.hasPrefix("#") || stripped.hasPrefix(";") {
                continuing = nil
                continue
            }
            let indent = line.prefix { $0 == " " || $0 == "\t" }.count
            if let c = continuing, indent > c.indent {
                entries[c.index].value += (entries[c.index].value.isEmpty ? "" : "\n") + stripped
                continue
            }
            continuing = nil
            if stripped.hasPrefix("["), let close = stripped.lastIndex(of: "]"), close > stripped.index(after: stripped.startIndex) {
                let name = String(stripped[stripped.index(after: stripped.startIndex)..<close])
                if sectionsSeen.contains(name) { problems.append((number, "section [\(name)] appears twice")) }
                sectionsSeen.insert(name)
                section = name
                continue
            }
            guard let delimiter = stripped.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                problems.append((number, "not a `[section]` and not `key = value`"))
                continue
            }
            let key = trimmed(stripped[..<delimiter]).lowercased()
            guard !key.isEmpty else {
                problems.append((number, "no key before `\(stripped[delimiter])`"))
                continue
            }
            guard let section else {
                problems.append((number, "`\(key)` comes before any [section]"))
                continue
            }
            if keysSeen.contains(section + "\u{0}" + key) { problems.append((number, "`\(key)` appears twice in [\(section)]")) }
            keysSeen.insert(section + "\u{0}" + key)
            entries.append(INIEntry(section: section, key: key,
                                    value: trimmed(stripped[stripped.index(after: delimiter)...]), line: number))
            continuing = (entries.count - 1, indent)
        }
        return (entries, problems)
    }
}

extension RegistryDiscovery {
    /// The pip commands an install phase may run; each can have its own section.
    private static let pipCommands = ["install", "download", "wheel"]
    private static let pipKeys: Set<String> = ["index-url", "extra-index-url", "find-links", "no-index"]

    /// pip's option name for a config key or the rest of a `PIP_` variable: `index_url`, `--index-url` -> `index-url`.
    private static func pipOptionName(_ key: String) -> String {
        let name = key.lowercased().replacingOccurrences(of: "_", with: "-")
        return name.hasPrefix("--") ? String(name.dropFirst(2)) : name
    }

    /// The config files pip reads, lowest precedence first (pip's "global", "user", "site"
    /// and "env" variants), without `PIP_CONFIG_FILE`'s, which the caller adds.
    private func pipFiles(includeUser: Bool, _ scan: inout Scan) -> [String] {
        var files: [String] = []
        let xdgDirs = env("XDG_CONFIG_DIRS").map { $0.split(separator: ":").map(String.init) } ?? ["/etc/xdg"]
        for dir in xdgDirs {
            if let d = hostPath(dir, naming: "XDG_CONFIG_DIRS entry", &scan) { files.append(d + "/pip/pip.conf") }
        }
        files.append("/etc/pip.conf")
        if includeUser {
            if let p = hostPath("~/.pip/pip.conf", naming: "pip's legacy user file", &scan) { files.append(p) }
            // A relative XDG_CONFIG_HOME is not replaced by ~/.config: pip would not read that either.
            let configHome = env("XDG_CONFIG_HOME").map { hostPath($0, naming: "XDG_CONFIG_HOME", &scan) }
                ?? hostPath("~/.config", naming: "pip's user config directory", &scan)
            if let configHome { files.append(configHome + "/pip/pip.conf") }
        }
        if let venv = env("VIRTUAL_ENV"), let v = hostPath(venv, naming: "VIRTUAL_ENV", &scan) {
            files.append(v + "/pip.conf")
        }
        return files
    }

    /// pip: the config files are merged section by section, a later file winning key by key;
    /// then a command's section overrides [global], and `PIP_*` variables override both.
    /// pip replaces a list-valued key (extra-index-url, find-links) rather than appending to it.
    /// Each of install, download and wheel is resolved, and their registries are combined.
    fileprivate func discoverPip(_ scan: inout Scan) -> Bool {
        struct Setting {
            var value: String
            var source: String
        }
        var fromEnv: [String: Setting] = [:]
        for key in environment.keys.sorted() where key.hasPrefix("PIP_") {
            let name = RegistryDiscovery.pipOptionName(String(key.dropFirst(4)))
            if RegistryDiscovery.pipKeys.contains(name), let value = env(key) {
                fromEnv[name] = Setting(value: value, source: key)
            }
        }

        var files: [(path: String, text: String)] = []
        let configFile = env("PIP_CONFIG_FILE")
        if configFile == "/dev/null" || configFile == "os.devnull" {
            scan.note("PIP_CONFIG_FILE is \(configFile ?? ""), so pip reads no configuration file")
        } else {
            var envFile: (path: String, text: String)?
            if let configFile, let path = hostPath(configFile, naming: "PIP_CONFIG_FILE", &scan) {
                if let text = read(path) {
                    envFile = (path, text)
                } else {
                    scan.note("PIP_CONFIG_FILE names `\(display(path))`, which cannot be read")
                }
            }
            // pip skips the per-user files when PIP_CONFIG_FILE names a file that exists.
            for path in pipFiles(includeUser: envFile == nil, &scan) {
                if let text = read(path) { files.append((path, text)) }
            }
            if let envFile { files.append(envFile) }
        }

        var sections: [String: [String: Setting]] = [:]
        for (path, text) in files {
            let ini = INIFile.parse(text)
            for problem in ini.problems {
                scan.note("\(display(path)):\(problem.line): \(problem.message); pip refuses such a file")
            }
            for entry in ini.entries {
                let key = RegistryDiscovery.pipOptionName(entry.key)
                guard RegistryDiscovery.pipKeys.contains(key) else { continue }
                sections[entry.section, default: [:]][key] =
                    Setting(value: entry.value, source: "\(display(path)) [\(entry.section)] \(key)")
            }
        }

        var unconfigured: [String] = []
        for command in RegistryDiscovery.pipCommands {
            func setting(_ key: String) -> Setting? {
                fromEnv[key] ?? sections[command]?[key] ?? sections["global"]?[key]
            }
            let noIndex = setting("no-index").map { ["1", "y", "yes", "t", "true", "on"].contains($0.value.lowercased()) } ?? false
            if !noIndex {
                if let index = setting("index-url") {
                    scan.add(index.value, source: index.source)
                } else {
                    unconfigured.append(command)
                }
                if let extra = setting("extra-index-url") {
                    for url in words(extra.value) { scan.add(url, source: extra.source) }
                }
            }
            if let links = setting("find-links") {
                for link in words(links.value) { scan.add(link, source: links.source, localPathsExpected: true) }
            }
        }
        if unconfigured.count == RegistryDiscovery.pipCommands.count {
            scan.noteBuiltInDefault("no index-url configured (PIP_INDEX_URL or index-url in a pip.conf)")
        } else if !unconfigured.isEmpty {
            let commands = unconfigured.map { "`pip \($0)`" }.joined(separator: ", ")
            scan.noteBuiltInDefault("no index-url configured for \(commands) (only in another command's section)")
        }
        return unconfigured.isEmpty
    }
}

// MARK: - npm

/// One `key=value` of an npmrc, as npm's `ini` module reads it.
struct NpmrcEntry: Equatable {
    var key: String
    var value: String
    var line: Int
}

/// The npmrc dialect of npm's `ini` module: `key=value`, `;` and `#` comments (also after an
/// unquoted value), quoted values, and `[section]`s whose keys npm does not treat as settings.
/// A bare `key` (which `ini` reads as `true`) is reported, since no setting otk reads is a flag.
enum NpmrcFile {
    static func parse(_ text: String) -> (entries: [NpmrcEntry], problems: [(line: Int, message: String)]) {
        var entries: [NpmrcEntry] = []
        var problems: [(Int, String)] = []
        var inSection = false
        for (number, line) in numberedLines(text) {
            let stripped = trimmed(line)
            if stripped.isEmpty || stripped.hasPrefix(";") || stripped.hasPrefix("#") { continue }
            if stripped.hasPrefix("["), stripped.hasSuffix("]") {
                inSection = true
                continue
            }
            guard let eq = line.firstIndex(of: "="), eq != line.startIndex else {
                if line.hasPrefix("=") {
                    problems.append((number, "no key before `=`"))
                } else {
                    problems.append((number, "`\(unquoted(String(line)))` has no `=` and no value"))
                }
                continue
            }
            let key = unquoted(String(line[..<eq]))
            let value = unquoted(String(line[line.index(after: eq)...]))
            if inSection { continue }
            entries.append(NpmrcEntry(key: key, value: value, line: number))
        }
        return (entries, problems)
    }

    /// The `ini` module's `unsafe`: strips quotes, or cuts an unquoted value at an unescaped `;` or `#`.
    static func unquoted(_ raw: String) -> String {
        let s = raw.trimmingCharacters(in: .whitespaces)
        if s.count >= 2, (s.hasPrefix("\"") && s.hasSuffix("\"")) || (s.hasPrefix("'") && s.hasSuffix("'")) {
            let inner = String(s.dropFirst().dropLast())
            return s.hasPrefix("'") ? inner : jsonUnescaped(inner)
        }
        var out = ""
        var escaped = false
        for c in s {
            if escaped {
                if c == "\\" || c == ";" || c == "#" { out.append(c) } else { out += "\\" + String(c) }
                escaped = false
            } else if c == ";" || c == "#" {
                break
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        if escaped { out += "\\" }
        return out.trimmingCharacters(in: .whitespaces)
    }

    /// The body of a JSON string: `\"`, `\\`, `\n`, `\uXXXX` and the like decoded.
    static func jsonUnescaped(_ s: String) -> String {
        var out = ""
        var chars = s.unicodeScalars[...]
        while let c = chars.popFirst() {
            guard c == "\\", let e = chars.popFirst() else {
                out.unicodeScalars.append(c)
                continue
            }
            switch e {
            case "n": out += "\n"
            case "t": out += "\t"
            case "r": out += "\r"
            case "b": out += "\u{8}"
            case "f": out += "\u{C}"
            case "u":
                let hex = String(String.UnicodeScalarView(chars.prefix(4)))
                if hex.count == 4, let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) {
                    out.unicodeScalars.append(scalar)
                    chars = chars.dropFirst(4)
                } else {
                    out += "\\u"
                }
            default: out.unicodeScalars.append(e)
            }
        }
        return out
    }

    /// npm's `${NAME}` expansion: `${NAME?}` becomes empty when unset, `${NAME}` stays as is;
    /// an odd number of backslashes before `$` escapes it. Returns the names that were unset.
    static func expand(_ text: String, environment: [String: String]) -> (text: String, unset: [String]) {
        let chars = Array(text)
        var out = ""
        var unset: [String] = []
        var i = 0
        while i < chars.count {
            guard chars[i] == "\\" || chars[i] == "$" else {
                out.append(chars[i])
                i += 1
                continue
            }
            var j = i
            while j < chars.count, chars[j] == "\\" { j += 1 }
            let backslashes = j - i
            if j + 1 < chars.count, chars[j] == "$", chars[j + 1] == "{" {
                var end = j + 2
                var name = ""
                while end < chars.count, !"${}?".contains(chars[end]) {
                    name.append(chars[end])
                    end += 1
                }
                var optional = false
                if end < chars.count, chars[end] == "?" {
                    optional = true
                    end += 1
                }
                if !name.isEmpty, end < chars.count, chars[end] == "}" {
                    if backslashes % 2 == 1 {
                        out += String(repeating: "\\", count: (backslashes - 1) / 2) + String(chars[j...end])
                    } else {
                        out += String(repeating: "\\", count: backslashes / 2)
                        if let value = environment[name] {
                            out += value
                        } else if !optional {
                            out += "${\(name)}"
                            unset.append(name)
                        }
                    }
                    i = end + 1
                    continue
                }
            }
            let stop = max(j, i + 1)
            out += String(chars[i..<stop])
            i = stop
        }
        return (out, unset)
    }
}

extension RegistryDiscovery {
    /// npm's name for the rest of an `npm_config_` variable: `_` after the first character becomes `-`.
    private static func npmKeyName(_ raw: String) -> String {
        if raw.hasPrefix("//") { return raw }
        guard let first = raw.first else { return raw }
        return (String(first) + raw.dropFirst().replacingOccurrences(of: "_", with: "-")).lowercased()
    }

    private static func isNpmRegistryKey(_ key: String) -> Bool {
        key == "registry" || (key.hasPrefix("@") && key.hasSuffix(":registry"))
    }

    /// The entries of the npmrc at `path`, keys and values expanded; empty when the file is absent.
    private func npmrcEntries(_ path: String, _ scan: inout Scan) -> [(key: String, value: String, source: String)] {
        guard let text = read(path) else { return [] }
        let parsed = NpmrcFile.parse(text)
        for problem in parsed.problems {
            scan.note("\(display(path)):\(problem.line): \(problem.message); ignored")
        }
        return parsed.entries.map { entry in
            let key = NpmrcFile.expand(entry.key, environment: environment).text
            let source = "\(display(path)) \(key)"
            let expanded = NpmrcFile.expand(entry.value, environment: environment)
            if RegistryDiscovery.isNpmRegistryKey(key) {
                for name in expanded.unset { scan.note("\(display(path)):\(entry.line): `${\(name)}` is not set") }
            }
            return (key, expanded.text, source)
        }
    }

    /// npm: the global npmrc (plus /etc/npmrc, where Debian's npm keeps it), then the user
    /// npmrc, then `npm_config_*` variables; each key overrides the same key read before.
    /// `registry` and every `@scope:registry` count.
    fileprivate func discoverNpm(_ scan: inout Scan) -> Bool {
        var fromEnv: [String: (value: String, source: String)] = [:]
        // Sorted, so that `npm_config_x` (lower case sorts last) wins over `NPM_CONFIG_X` deterministically.
        for key in environment.keys.sorted() where key.count > 11 && key.lowercased().hasPrefix("npm_config_") {
            guard let value = env(key) else { continue }
            fromEnv[RegistryDiscovery.npmKeyName(String(key.dropFirst(11)))] = (value, key)
        }
        func pathSetting(_ value: String) -> String {
            NpmrcFile.expand(value, environment: environment).text
        }

        let userRaw = fromEnv["userconfig"].map { pathSetting($0.value) } ?? "~/.npmrc"
        let userPath = hostPath(userRaw, naming: "npm's user config", &scan)
        let userEntries = userPath.map { npmrcEntries($0, &scan) } ?? []
        func userValue(_ key: String) -> String? {
            userEntries.last { $0.key == key }.map { pathSetting($0.value) }
        }

        var globalPaths: [String] = []
        if let global = fromEnv["globalconfig"].map({ pathSetting($0.value) }) ?? userValue("globalconfig") {
            if let p = hostPath(global, naming: "npm's globalconfig", &scan) { globalPaths = [p] }
        } else if let prefix = fromEnv["prefix"].map({ pathSetting($0.value) }) ?? userValue("prefix") ?? env("PREFIX") {
            if let p = hostPath(prefix, naming: "npm's prefix", &scan) { globalPaths = [p + "/etc/npmrc"] }
        } else {
            // npm's default prefix is two levels above the node binary, which otk does not look up.
            globalPaths = ["/usr/local/etc/npmrc", "/usr/etc/npmrc"]
        }

        var order: [String] = []
        var registries: [String: (value: String, source: String)] = [:]
        func set(_ key: String, _ value: String, _ source: String) {
            guard RegistryDiscovery.isNpmRegistryKey(key) else { return }
            if registries[key] == nil { order.append(key) }
            registries[key] = (value, source)
        }
        var readPaths: Set<String> = []
        for path in ["/etc/npmrc"] + globalPaths where path != userPath && !readPaths.contains(path) {
            readPaths.insert(path)
            for entry in npmrcEntries(path, &scan) { set(entry.key, entry.value, entry.source) }
        }
        for entry in userEntries { set(entry.key, entry.value, entry.source) }
        for key in fromEnv.keys.sorted() {
            guard let setting = fromEnv[key] else { continue }
            let expanded = NpmrcFile.expand(setting.value, environment: environment)
            for name in expanded.unset where RegistryDiscovery.isNpmRegistryKey(key) {
                scan.note("\(setting.source): `${\(name)}` is not set")
            }
            set(key, expanded.text, setting.source)
        }

        for key in order.filter({ $0 == "registry" }) + order.filter({ $0 != "registry" }) {
            guard let entry = registries[key] else { continue }
            scan.add(entry.value, source: entry.source)
        }
        let configured = registries["registry"] != nil
        if !configured {
            scan.noteBuiltInDefault("no `registry` configured (npm_config_registry or registry= in the user or global npmrc)")
        }
        return configured
    }
}

// MARK: - go

extension RegistryDiscovery {
    /// go: each variable from the environment when set and non-empty, else from the go env
    /// file ($GOENV, else $XDG_CONFIG_HOME/go/env or ~/.config/go/env).
    fileprivate func discoverGo(_ scan: inout Scan) -> Bool {
        var fileValues: [String: String] = [:]
        var envFile: String?
        if let goenv = env("GOENV") {
            if goenv != "off" { envFile = hostPath(goenv, naming: "GOENV", &scan) }
        } else if let configHome = env("XDG_CONFIG_HOME") {
            envFile = hostPath(configHome, naming: "XDG_CONFIG_HOME", &scan).map { $0 + "/go/env" }
        } else {
            envFile = hostPath("~/.config/go/env", naming: "go's env file", &scan)
        }
        if let envFile, let text = read(envFile) {
            for (number, raw) in numberedLines(text) {
                let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
                if trimmed(line).isEmpty || trimmed(line).hasPrefix("#") { continue }
                // go ignores lines that do not start with an upper-case letter or lack `=`.
                guard let eq = line.firstIndex(of: "="), let first = line.first, first.isASCII, first.isUppercase else {
                    scan.note("\(display(envFile)):\(number): not KEY=VALUE; go ignores it")
                    continue
                }
                fileValues[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        func setting(_ key: String) -> (value: String, source: String)? {
            if let value = env(key) { return (value, key) }
            if let value = fileValues[key], let envFile { return (value, "\(display(envFile)) \(key)") }
            return nil
        }

        var proxyOff = false
        let proxy = setting("GOPROXY")
        if let proxy {
            var entries = proxy.value.split(whereSeparator: { $0 == "," || $0 == "|" })
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }[...]
            if entries.isEmpty { scan.note("\(proxy.source) lists no proxy") }
            while let entry = entries.popFirst() {
                if entry == "direct" || entry == "off" {
                    if entry == "direct" {
                        scan.note("ignored `direct` in \(proxy.source): go then fetches modules from their origin "
                                  + "(version control) hosts, which otk does not add; allow them in the profile's network.allow or with --allow-host")
                    } else {
                        proxyOff = scan.endpoints.isEmpty
                        scan.note("ignored `off` in \(proxy.source): go downloads no module from there on")
                    }
                    if !entries.isEmpty {
                        scan.note("\(proxy.source): entries after `\(entry)` are never used by go; ignored")
                    }
                    break
                }
                // As go does: a word with a dot, colon or slash but no scheme is an https URL.
                var url = entry
                if entry.contains(where: { ".:/".contains($0) }), !entry.contains(":/"), !entry.hasPrefix("/") {
                    url = "https://" + entry
                }
                scan.add(url, source: proxy.source)
            }
        } else {
            scan.noteBuiltInDefault("GOPROXY is not set (in the environment or go's env file)")
        }

        if let sumdb = setting("GOSUMDB") {
            let fields = sumdb.value.split(whereSeparator: { $0.isWhitespace }).map(String.init)
            if fields == ["off"] {
                scan.note("\(sumdb.source) is `off`: go checks no checksum database")
            } else if fields.isEmpty || fields.count > 2 {
                scan.note("\(sumdb.source) is not `name`, `name+key` or `name+key URL`; ignored")
            } else if fields.count == 2 {
                scan.add(fields[1], source: sumdb.source)
            } else {
                let name = fields[0].prefix { $0 != "+" }
                scan.add("https://" + name, source: sumdb.source)
            }
        } else if !proxyOff {
            scan.note("GOSUMDB is not set: go checks downloads against its built-in checksum database, "
                      + "through the GOPROXY proxies when they support it, else directly; otk does not assume it: "
                      + "set GOSUMDB (or GOSUMDB=off, GONOSUMDB), or allow it in the profile's network.allow or with --allow-host")
        }
        for key in ["GOPRIVATE", "GONOPROXY"] {
            if let s = setting(key) {
                scan.note("\(s.source) = `\(s.value)`: go fetches matching modules from their origin hosts, not through GOPROXY; otk adds no host for them")
            }
        }
        if let s = setting("GONOSUMDB") {
            scan.note("\(s.source) = `\(s.value)`: go checks matching modules against no checksum database")
        }
        return proxy != nil
    }
}

// MARK: - cargo

extension RegistryDiscovery {
    /// cargo: $CARGO_HOME/config (which cargo prefers when both exist) or config.toml, then
    /// `CARGO_REGISTRIES_<NAME>_INDEX` and `CARGO_REGISTRY_DEFAULT`. Each `[registries.NAME]`
    /// index counts; a `[source.NAME]` with `replace-with` counts the final source of its chain.
    /// The project's own `.cargo/config.toml` files are never read.
    fileprivate func discoverCargo(_ scan: inout Scan) -> Bool {
        let cargoHome = env("CARGO_HOME").map { hostPath($0, naming: "CARGO_HOME", &scan) }
            ?? hostPath("~/.cargo", naming: "cargo's home", &scan)
        var root: [String: ConfigValue] = [:]
        var file: String?
        if let cargoHome {
            let legacy = cargoHome + "/config", current = cargoHome + "/config.toml"
            if let text = read(legacy) {
                file = legacy
                if read(current) != nil {
                    scan.note("both `\(display(legacy))` and `\(display(current))` exist: cargo reads the first only")
                }
                root = parseCargoConfig(text, path: legacy, &scan)
            } else if let text = read(current) {
                file = current
                root = parseCargoConfig(text, path: current, &scan)
            }
        }
        let shown = file.map(display) ?? ""

        func table(_ value: ConfigValue?, _ key: String) -> [String: ConfigValue] {
            guard let value else { return [:] }
            if case .table(let t) = value { return t }
            scan.note("\(shown) \(key): expected a table, found \(value.typeName); ignored")
            return [:]
        }
        func string(_ value: ConfigValue?, _ key: String) -> String? {
            guard let value else { return nil }
            if case .string(let s) = value { return s }
            scan.note("\(shown) \(key): expected a string, found \(value.typeName); ignored")
            return nil
        }

        // registries: name -> (index URL, source)
        var registries: [String: (index: String, source: String)] = [:]
        for (name, value) in table(root["registries"], "registries").sorted(by: { $0.key < $1.key }) {
            let entry = table(value, "registries.\(name)")
            if let index = string(entry["index"], "registries.\(name).index") {
                registries[name] = (index, "\(shown) registries.\(name).index")
            }
        }
        let envName = { (name: String) in name.uppercased().replacingOccurrences(of: "-", with: "_") }
        for key in environment.keys.sorted() where key.hasPrefix("CARGO_REGISTRIES_") && key.hasSuffix("_INDEX") {
            let middle = key.dropFirst("CARGO_REGISTRIES_".count).dropLast("_INDEX".count)
            guard !middle.isEmpty, let value = env(key) else { continue }
            let name = registries.keys.first { envName($0) == middle }
                ?? middle.lowercased().replacingOccurrences(of: "_", with: "-")
            registries[name] = (value, key)
        }
        if let crates = registries.removeValue(forKey: "crates-io") {
            scan.note("\(crates.source): cargo does not allow changing crates-io's index; use [source.crates-io] replace-with; ignored")
        }

        let sources = table(root["source"], "source")
        var configured = false
        // crates-io first: its replacement is the registry most builds use.
        let names = sources.keys.sorted()
        for name in names.filter({ $0 == "crates-io" }) + names.filter({ $0 != "crates-io" }) {
            guard string(table(sources[name], "source.\(name)")["replace-with"], "source.\(name).replace-with") != nil else { continue }
            // Follow replace-with to the source that is fetched.
            var current = name
            var visited: Set<String> = [name]
            while true {
                let key = "source.\(current).replace-with"
                guard let next = string(table(sources[current], "source.\(current)")["replace-with"], key) else { break }
                if visited.contains(next) {
                    scan.note("\(shown) \(key) makes a replace-with cycle through `\(next)`; ignored")
                    current = ""
                    break
                }
                visited.insert(next)
                current = next
            }
            guard !current.isEmpty, current != name else { continue }
            if current == "crates-io" {
                scan.note("\(shown) source.\(name).replace-with leads back to crates-io, cargo's built-in default registry")
                continue
            }
            let target = table(sources[current], "source.\(current)")
            if let url = string(target["registry"], "source.\(current).registry") {
                scan.add(url, source: "\(shown) source.\(current).registry", parse: cargoURL(url))
            } else if let url = string(target["git"], "source.\(current).git") {
                scan.add(url, source: "\(shown) source.\(current).git")
            } else if target["directory"] != nil || target["local-registry"] != nil {
                // Vendored or local: nothing to fetch over the network.
            } else if let registry = registries[current] {
                scan.add(registry.index, source: registry.source, parse: cargoURL(registry.index))
            } else {
                scan.note("\(shown) source.\(name).replace-with leads to `\(current)`, which is neither a [source] with a location nor a [registries] entry; ignored")
                continue
            }
            if name == "crates-io" { configured = true }
        }
        for name in registries.keys.sorted() {
            guard let registry = registries[name] else { continue }
            scan.add(registry.index, source: registry.source, parse: cargoURL(registry.index))
        }
        let defaultName = env("CARGO_REGISTRY_DEFAULT") ?? string(table(root["registry"], "registry")["default"], "registry.default")
        if let defaultName, defaultName != "crates-io", registries[defaultName] == nil {
            scan.note("the default registry `\(defaultName)` has no [registries.\(defaultName)] index")
        }
        if !configured {
            scan.noteBuiltInDefault("crates-io is not replaced ([source.crates-io] replace-with in $CARGO_HOME/config.toml)")
        }
        return configured
    }

    private func parseCargoConfig(_ text: String, path: String, _ scan: inout Scan) -> [String: ConfigValue] {
        do {
            return try ConfigDocument.parse(text, file: path).root
        } catch {
            let line = error.location?.line.map { ":\($0)" } ?? ""
            scan.note("\(display(path))\(line): \(error.message); file ignored")
            return [:]
        }
    }

    /// The URL cargo fetches for an index: `sparse+https://...` is fetched over https.
    private func cargoURL(_ index: String) -> String {
        let text = index.trimmingCharacters(in: .whitespaces)
        return text.hasPrefix("sparse+") ? String(text.dropFirst("sparse+".count)) : text
    }
}

// MARK: - maven

/// An element of an XML document: its local name, direct text, children and line.
struct MiniXMLElement: Equatable {
    var name: String
    var text: String = ""
    var children: [MiniXMLElement] = []
    var line: Int

    func child(_ name: String) -> MiniXMLElement? { children.first { $0.name == name } }
    func children(_ name: String) -> [MiniXMLElement] { children.filter { $0.name == name } }
    /// The trimmed text of the first child `name`.
    func value(_ name: String) -> String? { child(name).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) } }
}

/// A minimal XML reader for Maven's settings.xml: elements, text, CDATA, the five named
/// entities and character references; comments, processing instructions and DOCTYPE are
/// skipped; attributes are ignored. A FoundationXML parser would tie otk to libxml2.
enum MiniXML {
    struct Problem: Error, Equatable {
        var line: Int
        var message: String
    }

    static func parse(_ text: String) -> Swift.Result<MiniXMLElement, Problem> {
        let bytes = Array(text.utf8)
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var stack: [MiniXMLElement] = []
        var root: MiniXMLElement?

        func starts(_ s: String, at p: Int) -> Bool {
            let u = Array(s.utf8)
            return p + u.count <= bytes.count && Array(bytes[p..<p + u.count]) == u
        }
        func find(_ s: String, from p: Int) -> Int? {
            var q = p
            while q < bytes.count {
                if starts(s, at: q) { return q }
                q += 1
            }
            return nil
        }
        func advance(to p: Int) {
            line += bytes[i..<min(p, bytes.count)].filter { $0 == UInt8(ascii: "\n") }.count
            i = p
        }
        func close(_ node: MiniXMLElement) -> Problem? {
            if stack.isEmpty {
                if root != nil { return Problem(line: node.line, message: "more than one root element") }
                root = node
            } else {
                stack[stack.count - 1].children.append(node)
            }
            return nil
        }
        func isNameByte(_ b: UInt8) -> Bool {
            !(b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")
              || b == UInt8(ascii: ">") || b == UInt8(ascii: "/"))
        }
        func localName(_ raw: [UInt8]) -> String {
            let name = String(decoding: raw, as: UTF8.self)
            return name.split(separator: ":").last.map(String.init) ?? name
        }

        while i < bytes.count {
            if bytes[i] != UInt8(ascii: "<") {
                let end = find("<", from: i) ?? bytes.count
                let raw = String(decoding: bytes[i..<end], as: UTF8.self)
                if stack.isEmpty {
                    if !raw.allSatisfy({ $0.isWhitespace }) {
                        return .failure(Problem(line: line, message: "text outside the root element"))
                    }
                } else {
                    stack[stack.count - 1].text += decodeEntities(raw)
                }
                advance(to: end)
            } else if starts("<!--", at: i) {
                guard let end = find("-->", from: i + 4) else { return .failure(Problem(line: line, message: "unterminated comment")) }
                advance(to: end + 3)
            } else if starts("<![CDATA[", at: i) {
                guard let end = find("]]>", from: i + 9) else { return .failure(Problem(line: line, message: "unterminated CDATA")) }
                if stack.isEmpty { return .failure(Problem(line: line, message: "CDATA outside the root element")) }
                stack[stack.count - 1].text += String(decoding: bytes[(i + 9)..<end], as: UTF8.self)
                advance(to: end + 3)
            } else if starts("<?", at: i) {
                guard let end = find("?>", from: i + 2) else { return .failure(Problem(line: line, message: "unterminated `<?`")) }
                advance(to: end + 2)
            } else if starts("<!", at: i) {
                var depth = 0
                var p = i + 2
                while p < bytes.count, !(bytes[p] == UInt8(ascii: ">") && depth == 0) {
                    if bytes[p] == UInt8(ascii: "[") { depth += 1 }
                    if bytes[p] == UInt8(ascii: "]") { depth -= 1 }
                    p += 1
                }
                guard p < bytes.count else { return .failure(Problem(line: line, message: "unterminated `<!`")) }
                advance(to: p + 1)
            } else if starts("</", at: i) {
                guard let end = find(">", from: i + 2) else { return .failure(Problem(line: line, message: "unterminated end tag")) }
                let name = localName(Array(bytes[(i + 2)..<end]).filter { isNameByte($0) })
                guard let open = stack.popLast() else {
                    return .failure(Problem(line: line, message: "`</\(name)>` closes nothing"))
                }
                guard open.name == name else {
                    return .failure(Problem(line: line, message: "`</\(name)>` does not close `<\(open.name)>` of line \(open.line)"))
                }
                if let problem = close(open) { return .failure(problem) }
                advance(to: end + 1)
            } else {
                var p = i + 1
                while p < bytes.count, isNameByte(bytes[p]) { p += 1 }
                let name = localName(Array(bytes[(i + 1)..<p]))
                guard !name.isEmpty else { return .failure(Problem(line: line, message: "`<` does not start a tag")) }
                if stack.isEmpty, root != nil {
                    return .failure(Problem(line: line, message: "element `<\(name)>` after the root element"))
                }
                var quote: UInt8?
                while p < bytes.count {
                    let b = bytes[p]
                    if let q = quote {
                        if b == q { quote = nil }
                    } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                        quote = b
                    } else if b == UInt8(ascii: ">") {
                        break
                    }
                    p += 1
                }
                guard p < bytes.count else { return .failure(Problem(line: line, message: "unterminated tag `<\(name)`")) }
                let node = MiniXMLElement(name: name, line: line)
                if bytes[p - 1] == UInt8(ascii: "/") {
                    if let problem = close(node) { return .failure(problem) }
                } else {
                    stack.append(node)
                }
                advance(to: p + 1)
            }
        }
        if let open = stack.last {
            return .failure(Problem(line: open.line, message: "`<\(open.name)>` is never closed"))
        }
        guard let root else { return .failure(Problem(line: line, message: "no root element")) }
        return .success(root)
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { break }
            let name = rest[rest.index(after: amp)..<semi]
            let named = ["lt": "<", "gt": ">", "amp": "&", "quot": "\"", "apos": "'"]
            var scalar: Unicode.Scalar?
            if name.hasPrefix("#x") || name.hasPrefix("#X") {
                scalar = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
            } else if name.hasPrefix("#") {
                scalar = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init)
            }
            if let value = named[String(name)] {
                out += value
            } else if let scalar {
                out.unicodeScalars.append(scalar)
            } else {
                out += rest[amp...semi]
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}

extension RegistryDiscovery {
    private struct MavenMirror {
        var id: String
        var url: String
        var mirrorOf: String
        var blocked: Bool
        var source: String
    }

    private struct MavenRepository {
        var id: String
        var url: String
        var source: String
    }

    /// What Maven's `mirrorOf` patterns look at in a repository.
    private struct MirroredRepository {
        var id: String
        /// Not a file: URL, not localhost.
        var external: Bool
        /// Plain http, which `external:http:*` matches.
        var plainHTTP: Bool

        init(id: String, external: Bool, plainHTTP: Bool) {
            self.id = id
            self.external = external
            self.plainHTTP = plainHTTP
        }

        init(id: String, url: String) {
            let lower = url.trimmingCharacters(in: .whitespaces).lowercased()
            var host: String?
            if case .endpoint(let h, _) = RegistryURL.parse(lower) { host = h }
            self.init(id: id, external: !lower.hasPrefix("file:") && host != "localhost" && host != "127.0.0.1",
                      plainHTTP: lower.hasPrefix("http:"))
        }
    }

    /// Maven's mirror selection: a mirror naming the repository's id exactly, else the first whose pattern matches.
    private static func mirror(for repository: MirroredRepository, in mirrors: [MavenMirror]) -> MavenMirror? {
        mirrors.first { $0.mirrorOf == repository.id }
            ?? mirrors.first { mirrorOfMatches($0.mirrorOf, repository) }
    }

    /// Maven's `mirrorOf` patterns: `*`, `external:*`, `external:http:*`, ids and `!id`, comma-separated.
    private static func mirrorOfMatches(_ pattern: String, _ repository: MirroredRepository) -> Bool {
        if pattern == "*" || pattern == repository.id { return true }
        var matches = false
        for part in pattern.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part.count > 1, part.hasPrefix("!") {
                if part.dropFirst() == repository.id { return false }
            } else if part == repository.id {
                return true
            } else if part == "external:*" && repository.external {
                matches = true
            } else if part == "external:http:*" && repository.external && repository.plainHTTP {
                matches = true
            } else if part == "*" {
                matches = true
            }
        }
        return matches
    }

    /// The settings files Maven may read, most dominant first: the user's, then the
    /// installation's (MAVEN_HOME, M2_HOME) and Debian's /etc/maven.
    private func mavenSettingsFiles(_ scan: inout Scan) -> [String] {
        var files: [String] = []
        if let p = hostPath("~/.m2/settings.xml", naming: "Maven's user settings", &scan) { files.append(p) }
        for variable in ["MAVEN_HOME", "M2_HOME"] {
            if let dir = env(variable), let p = hostPath(dir, naming: variable, &scan) { files.append(p + "/conf/settings.xml") }
        }
        files.append("/etc/maven/settings.xml")
        var seen: Set<String> = []
        return files.filter { seen.insert($0).inserted }
    }

    /// maven: mirrors and profile repositories of the user and global settings.xml, merged by
    /// id with the user's dominant. A non-blocked mirror counts; a repository counts unless a
    /// mirror takes its place. Repositories of every profile count, active or not: a plan's
    /// command may activate one.
    fileprivate func discoverMaven(_ scan: inout Scan) -> Bool {
        var mirrors: [MavenMirror] = []
        var repositories: [MavenRepository] = []
        var mirrorIDs: Set<String> = []
        var profileIDs: Set<String> = []
        for path in mavenSettingsFiles(&scan) {
            guard let text = read(path) else { continue }
            let shown = display(path)
            let root: MiniXMLElement
            switch MiniXML.parse(text) {
            case .success(let node): root = node
            case .failure(let problem):
                scan.note("\(shown):\(problem.line): malformed XML: \(problem.message); file ignored")
                continue
            }
            guard root.name == "settings" else {
                scan.note("\(shown):\(root.line): the root element is <\(root.name)>, not <settings>; file ignored")
                continue
            }
            var unresolved: [String] = []
            func value(_ node: MiniXMLElement, _ name: String) -> String {
                mavenInterpolated(node.value(name) ?? "", unresolved: &unresolved)
            }
            var fileMirrorIDs: Set<String> = []
            for m in root.child("mirrors")?.children("mirror") ?? [] {
                let id = value(m, "id").isEmpty ? "default" : value(m, "id")
                fileMirrorIDs.insert(id)
                guard !mirrorIDs.contains(id) else { continue }
                let url = value(m, "url")
                if url.isEmpty {
                    scan.note("\(shown):\(m.line): mirror `\(id)` has no <url>; ignored")
                    continue
                }
                mirrors.append(MavenMirror(id: id, url: url, mirrorOf: value(m, "mirrorOf"),
                                           blocked: value(m, "blocked") == "true", source: "\(shown) mirror \(id)"))
            }
            mirrorIDs.formUnion(fileMirrorIDs)
            var fileProfileIDs: Set<String> = []
            for profile in root.child("profiles")?.children("profile") ?? [] {
                let profileID = value(profile, "id").isEmpty ? "default" : value(profile, "id")
                fileProfileIDs.insert(profileID)
                guard !profileIDs.contains(profileID) else { continue }
                for (list, item) in [("repositories", "repository"), ("pluginRepositories", "pluginRepository")] {
                    for r in profile.child(list)?.children(item) ?? [] {
                        let id = value(r, "id")
                        let url = value(r, "url")
                        if url.isEmpty {
                            scan.note("\(shown):\(r.line): \(item) `\(id)` has no <url>; ignored")
                            continue
                        }
                        repositories.append(MavenRepository(id: id, url: url, source: "\(shown) profile \(profileID) \(item) \(id)"))
                    }
                }
            }
            profileIDs.formUnion(fileProfileIDs)
            for name in Set(unresolved).sorted() {
                scan.note("\(shown): `${\(name)}` is not set; left as is")
            }
        }

        for m in mirrors where !m.blocked {
            scan.add(m.url, source: m.source)
        }
        for r in repositories {
            if let m = RegistryDiscovery.mirror(for: MirroredRepository(id: r.id, url: r.url), in: mirrors) {
                if m.blocked {
                    scan.note("\(r.source) (`\(RegistryURL.redacted(r.url))`) is blocked by mirror `\(m.id)`; ignored")
                }
                continue
            }
            scan.add(r.url, source: r.source)
        }

        // Maven's built-in repository has the id `central` and an external https URL.
        let central = MirroredRepository(id: "central", external: true, plainHTTP: false)
        let centralMirror = RegistryDiscovery.mirror(for: central, in: mirrors)
        let configured = centralMirror != nil || repositories.contains { $0.id == "central" }
        if let centralMirror, centralMirror.blocked {
            scan.note("mirror `\(centralMirror.id)` blocks Maven's built-in repository `central`")
        }
        if !configured {
            scan.noteBuiltInDefault("no mirror of `central` and no repository `central` in a settings.xml")
        }
        return configured
    }
}
