/// Checks on paths used inside the sandbox (pure string logic, no file system access).
public enum SandboxPath {
    /// Whether `path` is absolute and normalized: no `.` or `..` component, no `//`, no NUL, no trailing `/`.
    public static func isClean(_ path: String) -> Bool {
        guard path.hasPrefix("/"), !path.contains("\0"), path.utf8.count < 4096 else { return false }
        if path == "/" { return true }
        if path.hasSuffix("/") { return false }
        for component in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty || component == "." || component == ".." { return false }
        }
        return true
    }

    /// Number of components: `/` is 0, `/usr` is 1, `/usr/lib` is 2.
    public static func depth(_ path: String) -> Int {
        path.split(separator: "/").count
    }

    /// Whether `path` is `ancestor` or lies below it.
    public static func isWithin(_ path: String, _ ancestor: String) -> Bool {
        ancestor == "/" || path == ancestor || path.hasPrefix(ancestor + "/")
    }
}
