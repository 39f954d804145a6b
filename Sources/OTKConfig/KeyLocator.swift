/// Finds the line of a key in TOML text.
///
/// The TOML library reports positions only for syntax errors, so otk keeps this
/// small line scanner for the errors it finds itself (unknown keys, wrong types,
/// impossible values). It understands `[table]` headers, `key = value` lines and
/// dotted keys, which is all a profile uses; anything it cannot place is reported
/// with the file alone.
public struct KeyLocator: Sendable {
    private var lines: [Substring]
    private var keyLines: [String: Int] = [:]

    public init(text: String) {
        // "\r\n" is one Character in Swift, so split on every newline kind, not on "\n".
        lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        var table: [String] = []
        var inMultiline: Substring? = nil
        for (index, raw) in lines.enumerated() {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if let delimiter = inMultiline {
                if line.contains(delimiter) { inMultiline = nil }
                continue
            }
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                let isArray = line.hasPrefix("[[")
                let inner = line.dropFirst(isArray ? 2 : 1).prefix(while: { $0 != "]" })
                table = Self.splitKey(inner)
                let path = table.joined(separator: ".")
                if keyLines[path] == nil { keyLines[path] = index + 1 }
                continue
            }
            guard let eq = Self.assignment(in: line) else { continue }
            let key = Self.splitKey(line[line.startIndex..<eq])
            let path = (table + key).joined(separator: ".")
            if keyLines[path] == nil { keyLines[path] = index + 1 }
            let value = line[line.index(after: eq)...].drop(while: { $0 == " " })
            for delimiter in ["\"\"\"", "'''"] where value.hasPrefix(delimiter) {
                if !value.dropFirst(3).contains(delimiter) { inMultiline = Substring(delimiter) }
            }
        }
    }

    /// The 1-based line of `path` ("filesystem.read_only"), or of the closest
    /// enclosing table that is written out, or nil.
    public func line(of path: [String]) -> Int? {
        var p = path
        while !p.isEmpty {
            if let line = keyLines[p.joined(separator: ".")] { return line }
            p.removeLast()
        }
        return nil
    }

    /// The line of an array element given as a string literal, searched from the key's line on.
    public func line(of path: [String], element: String) -> Int? {
        guard let start = line(of: path) else { return nil }
        let needles = ["\"\(element)\"", "'\(element)'"]
        for index in (start - 1)..<lines.count where needles.contains(where: { lines[index].contains($0) }) {
            return index + 1
        }
        return start
    }

    /// The index of the `=` of a `key = value` line, outside quotes.
    private static func assignment(in line: Substring) -> Substring.Index? {
        var quote: Character? = nil
        var index = line.startIndex
        while index < line.endIndex {
            let c = line[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "=" {
                return index
            } else if c == "#" {
                return nil
            }
            index = line.index(after: index)
        }
        return nil
    }

    /// Splits `a."b.c" . d` into ["a", "b.c", "d"].
    private static func splitKey(_ key: Substring) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character? = nil
        for c in key {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "." {
                parts.append(current.trimmingCharacters())
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current.trimmingCharacters())
        return parts
    }
}

private extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
