import Foundation
import OTKModel

/// Strict JSON reading shared by otk's JSON importers (Docker seccomp profiles, plans):
/// UTF-8 only, size-limited, errors that name the JSON path and line, duplicate keys refused,
/// exact numbers. Values come from Foundation's JSONSerialization; `JSONLineLocator` finds lines.
package enum StrictJSON {
    /// Checks the bytes and runs them through JSONSerialization; returns the top-level object.
    ///
    /// - Parameters:
    ///   - maximumSize: the largest text accepted, in bytes; anything bigger is refused, not truncated.
    ///   - document: what the file is, for messages ("a seccomp profile").
    ///   - expected: what the top-level object must hold, for messages ("`defaultAction`").
    package static func decode(_ bytes: [UInt8], file: String, maximumSize: Int, document: String,
                               expected: String) throws(OTKError) -> [String: Any] {
        func fail(_ message: String, line: Int? = nil, remedy: String? = nil) -> OTKError {
            OTKError(.badInput, message, remedy: remedy, location: SourceLocation(file: file, line: line))
        }
        if bytes.count > maximumSize {
            throw fail("file is larger than \(maximumSize) bytes (\(bytes.count) bytes)")
        }
        if let offset = firstInvalidUTF8(bytes) {
            throw fail("file is not UTF-8 text (invalid byte at offset \(offset))", line: lineAt(offset, in: bytes))
        }
        if let offset = bytes.firstIndex(of: 0) {
            // Valid UTF-8, but never valid in JSON text; JSONSerialization would take it for UTF-16 or UTF-32.
            throw fail("file contains a NUL byte at offset \(offset); \(document) must be UTF-8 JSON",
                       line: lineAt(offset, in: bytes))
        }
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.dropFirst(3) : bytes[...]
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            throw fail("file is empty; expected a JSON object with at least \(expected)")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(body), options: [])
        } catch {
            throw syntaxError(error, bytes: bytes, bodyStart: bytes.count - body.count, file: file)
        }
        guard let root = object as? [String: Any] else {
            throw fail("the top level must be a JSON object (with \(expected)), found \(jsonTypeName(object))",
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
package func jsonTypeName(_ value: Any) -> String {
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
package func isBoolean(_ n: NSNumber) -> Bool {
    let type = String(cString: n.objCType)
    return type == "c" || type == "B"
}

/// A JSON path such as `syscalls[3].args[0].op`.
package struct JSONPath: CustomStringConvertible, Sendable {
    package enum Component: Equatable, Sendable {
        case key(String)
        case index(Int)
    }

    package var components: [Component] = []

    package init(components: [Component] = []) {
        self.components = components
    }

    package static let root = JSONPath()

    package func key(_ name: String) -> JSONPath { JSONPath(components: components + [.key(name)]) }
    package func index(_ i: Int) -> JSONPath { JSONPath(components: components + [.index(i)]) }

    package var description: String {
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

/// Typed, path-naming access to the values JSONSerialization returned for one file.
package struct StrictJSONReader: Sendable {
    package let file: String
    package let locator: JSONLineLocator
    /// The remedy given for an unknown key.
    package let unknownKeyRemedy: String

    package init(file: String, bytes: [UInt8], unknownKeyRemedy: String) {
        self.file = file
        self.locator = JSONLineLocator(bytes)
        self.unknownKeyRemedy = unknownKeyRemedy
    }

    /// Refuses a key written twice in one object (JSON parsers disagree on which one counts).
    package func refuseDuplicateKeys() throws(OTKError) {
        if let duplicate = locator.firstDuplicateKey() {
            let path = JSONPath(components: duplicate.path)
            throw OTKError(.badInput, "`\(path)`: key written twice in one object (JSON parsers disagree on which one counts)",
                           remedy: "keep one of them", location: SourceLocation(file: file, line: duplicate.line))
        }
    }

    // MARK: Errors

    package func location(_ path: JSONPath) -> SourceLocation {
        SourceLocation(file: file, line: locator.line(of: path.components))
    }

    package func fail(_ path: JSONPath, _ message: String, remedy: String? = nil) -> OTKError {
        let name = path.description
        return OTKError(.badInput, name.isEmpty ? message : "`\(name)`: \(message)", remedy: remedy, location: location(path))
    }

    /// A value quoted for a message, shortened if it is long.
    package func quoted(_ s: String) -> String {
        let shown = s.count > 64 ? String(s.prefix(61)) + "..." : s
        return "`\(shown.unicodeScalars.map { $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())`"
    }

    // MARK: Typed access

    /// The object at `path`, with only `known` keys; JSON nulls removed.
    package func object(_ value: Any, _ path: JSONPath, known: Set<String>) throws(OTKError) -> [String: Any] {
        guard let dict = value as? [String: Any] else {
            throw fail(path, "expected an object, found \(jsonTypeName(value))")
        }
        for key in dict.keys.sorted() where !known.contains(key) {
            throw fail(path.key(key), "unknown key (known keys\(path.components.isEmpty ? "" : " here"): \(known.sorted().joined(separator: ", ")))",
                       remedy: unknownKeyRemedy)
        }
        return dict.filter { !($0.value is NSNull) }
    }

    package func string(_ value: Any, _ path: JSONPath) throws(OTKError) -> String {
        guard let s = value as? String else { throw fail(path, "expected a string, found \(jsonTypeName(value))") }
        return s
    }

    package func array(_ value: Any, _ path: JSONPath, of what: String) throws(OTKError) -> [Any] {
        guard let a = value as? [Any] else { throw fail(path, "expected an array of \(what), found \(jsonTypeName(value))") }
        return a
    }

    package func strings(_ value: Any, _ path: JSONPath) throws(OTKError) -> [String] {
        var out: [String] = []
        for (i, element) in try array(value, path, of: "strings").enumerated() {
            out.append(try string(element, path.index(i)))
        }
        return out
    }

    /// A whole number in 0...UInt64.max, read exactly.
    package func unsigned(_ value: Any, _ path: JSONPath) throws(OTKError) -> UInt64 {
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

}

/// Finds the lines where values of a JSON text begin. It only locates: values are never
/// interpreted, and the text is expected to have been accepted by JSONSerialization already
/// (on other text it gives up quietly instead of failing).
package struct JSONLineLocator: Sendable {
    private let bytes: [UInt8]

    package init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The line where the value at `path` begins, or where its deepest existing ancestor
    /// begins when the path does not exist; nil for a text without a value.
    package func line(of path: [JSONPath.Component]) -> Int? {
        seek(path)?.cursor.line
    }

    /// The lines where the elements of the array at `path` begin; empty if there is none.
    package func elementLines(of path: [JSONPath.Component]) -> [Int] {
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
    package func firstDuplicateKey() -> (path: [JSONPath.Component], line: Int)? {
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

        package init(_ bytes: [UInt8]) {
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
