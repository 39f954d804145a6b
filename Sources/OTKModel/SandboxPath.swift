/// Checks on paths used inside the sandbox (pure logic, no file system access).
///
/// Everything here works on the UTF-8 bytes, as the kernel does: Swift compares and splits
/// `String`s by grapheme cluster, so a `/` followed by a combining mark (U+200D, U+0301, ...)
/// would not count as a separator, and a name that the kernel sees inside a directory would
/// not be "within" it.
public enum SandboxPath {
    static let slash = UInt8(ascii: "/")

    /// The components of an absolute path, as the kernel splits it (empty ones kept).
    public static func components(_ path: String) -> [String] {
        path.utf8.split(separator: slash, omittingEmptySubsequences: false).dropFirst().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `path` is absolute and normalized: no `.` or `..` component, no `//`, no NUL, no trailing `/`.
    public static func isClean(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        guard bytes.first == slash, !bytes.contains(0), bytes.count < 4096 else { return false }
        if bytes.count == 1 { return true }
        if bytes.last == slash { return false }
        for component in bytes.dropFirst().split(separator: slash, omittingEmptySubsequences: false) {
            if component.isEmpty || component.elementsEqual([UInt8(ascii: ".")])
                || component.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) { return false }
        }
        return true
    }

    /// Number of components: `/` is 0, `/usr` is 1, `/usr/lib` is 2.
    public static func depth(_ path: String) -> Int {
        path.utf8.split(separator: slash).count
    }

    /// Whether `path` is `ancestor` or lies below it, byte for byte.
    public static func isWithin(_ path: String, _ ancestor: String) -> Bool {
        if ancestor.utf8.elementsEqual([slash]) { return true }
        return path.utf8.elementsEqual(ancestor.utf8) || path.utf8.starts(with: Array(ancestor.utf8) + [slash])
    }

    /// Byte-for-byte equality (String's == treats canonically equivalent spellings as equal).
    public static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// The parent of an absolute path: `/a/b` -> `/a`, `/a` -> `/`.
    public static func parent(_ path: String) -> String {
        let bytes = Array(path.utf8)
        guard let last = bytes.lastIndex(of: slash), last > 0 else { return "/" }
        return String(decoding: bytes[..<last], as: UTF8.self)
    }
}
