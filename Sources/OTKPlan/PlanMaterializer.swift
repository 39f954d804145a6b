#if canImport(Glibc)
import Glibc
#endif
import OTKModel

/// Writes a plan's files into a new directory, safely (docs/plan-format.md, "Output directory").
///
/// - Everything is checked before the first write: a plan that fails validation writes nothing,
///   not even its directory.
/// - The directory is new: `parent/slug`, or `slug-2`, `slug-3`, ... when that name exists,
///   whatever it is (a file, a symlink, an empty directory). It is made with `mkdirat`, which
///   fails with EEXIST instead of following or reusing anything, so two runs cannot share one.
/// - Everything below it is made through directory file descriptors: `mkdirat` for directories,
///   each opened with `O_DIRECTORY|O_NOFOLLOW` before descending, and files opened with
///   `O_CREAT|O_EXCL|O_NOFOLLOW`, so that nothing is written through a symlink and no file is
///   written twice. Modes are set with `fchmod` on the open descriptor (the umask does not
///   apply): files get the plan's modes, directories 0755. The top directory is 0700 while it is
///   being written and 0755 once complete.
/// - When a write fails midway (a full disk), what was created is removed again, in reverse
///   order through the same descriptors (never following a symlink, never removing anything
///   otk did not create), and the error names the file.
public enum PlanMaterializer {
    /// The most numbered names tried (`slug-2` ... `slug-N`) before giving up.
    public static let maxAttempts = 10_000

    /// Writes `plan` into a new directory under `parent` (which must exist) and returns its path.
    /// With `owner`, everything created is given to that uid and gid (`fchown` on the open descriptor),
    /// as a root-run otk does for the unprivileged user its sandboxes run as.
    public static func write(_ plan: Plan, into parent: String, slug: String,
                             owner: (uid: UInt32, gid: UInt32)? = nil) throws(OTKError) -> String {
        try write(plan, into: parent, slug: slug, owner: owner, injectFailure: nil)
    }

    /// `injectFailure(i)` returning an errno makes the write of `files[i]` fail with it (tests only).
    static func write(_ plan: Plan, into parent: String, slug: String, owner: (uid: UInt32, gid: UInt32)? = nil,
                      injectFailure: ((Int) -> Int32?)?) throws(OTKError) -> String {
        try validate(plan, slug: slug)

        let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if parentFD < 0 {
            let e = errno
            throw OTKError(.badInput, "cannot open the output directory's parent `\(parent)`: \(message(e))",
                           remedy: "create it first, or choose another --output", errno: e)
        }
        defer { close(parentFD) }

        // The new top directory: the first free name.
        var name = slug
        var attempt = 1
        while mkdirat(parentFD, name, 0o700) != 0 {
            let e = errno
            guard e == EEXIST else {
                throw OTKError(.setupFailed, "cannot create `\(join(parent, name))`: \(message(e))", errno: e)
            }
            attempt += 1
            guard attempt <= maxAttempts else {
                throw OTKError(.setupFailed, "`\(join(parent, slug))` and \(maxAttempts - 1) numbered variants all exist",
                               remedy: "remove old output directories or choose another --output")
            }
            name = "\(slug)-\(attempt)"
        }
        let top = join(parent, name)

        var writer = Writer()
        writer.owner = owner
        let topFD = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if topFD < 0 {
            let e = errno
            unlinkat(parentFD, name, AT_REMOVEDIR)
            throw OTKError(.setupFailed, "cannot open the new directory `\(top)`: \(message(e))", errno: e)
        }
        writer.dirs[""] = topFD
        defer { writer.closeAll() }

        for (i, file) in plan.files.enumerated() {
            if let failure = writer.write(file, injected: injectFailure?(i)) {
                let cleanup = writer.removeCreated()
                let removed: String
                if cleanup == nil && unlinkat(parentFD, name, AT_REMOVEDIR) == 0 {
                    removed = "the partial directory `\(top)` was removed"
                } else {
                    let e = cleanup?.errno ?? errno
                    removed = "the partial directory `\(top)` could not be removed (\(cleanup?.what ?? "rmdir"): \(message(e)))"
                }
                throw OTKError(.setupFailed,
                               "cannot write `files[\(i)]` (`\(file.filename)`): \(failure.step): \(message(failure.errno)); \(removed)",
                               step: failure.step, errno: failure.errno)
            }
        }
        if fchmod(topFD, 0o755) != 0 || owner.map({ fchown(topFD, $0.uid, $0.gid) }) ?? 0 != 0 {
            let e = errno
            throw OTKError(.setupFailed, "cannot set the mode of `\(top)`: \(message(e))", errno: e)
        }
        return top
    }

    /// The checks `PlanParser` made that the writing depends on, made again because a `Plan`
    /// can be built in code: names, clashes, modes and the slug. Sizes are the parser's business.
    static func validate(_ plan: Plan, slug: String) throws(OTKError) {
        guard PlanParser.isSlug(slug) || isDirectoryName(slug) else {
            throw OTKError(.badInput, "`\(slug)` is not an output directory name (lowercase ASCII letters, digits and `-`, at most \(PlanParser.maxSlugLength) characters)",
                           remedy: "use PlanParser.slug(name)")
        }
        let structural = PlanLimits(maxPathBytes: 4095, maxDepth: 2048)
        for (i, file) in plan.files.enumerated() {
            if let problem = PlanParser.filenameProblem(file.filename, limits: structural) {
                throw OTKError(.badInput, "`files[\(i)].filename`: \(problem)")
            }
            if let problem = PlanParser.modeProblem(file.mode) {
                throw OTKError(.badInput, "`files[\(i)].mode`: \(problem)")
            }
        }
        if let clash = PlanParser.filesClash(plan.files.map(\.filename)) {
            throw OTKError(.badInput, "`files[\(clash.index)].filename`: \(clash.message)")
        }
    }

    /// A name `--output` may give: one component, not `.` or `..`, no NUL, at most 255 bytes.
    static func isDirectoryName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.utf8.contains(0) && name.utf8.count <= 255
    }

    static func join(_ parent: String, _ name: String) -> String {
        parent.hasSuffix("/") ? parent + name : parent + "/" + name
    }

    static func message(_ e: Int32) -> String {
        String(cString: strerror(e))
    }
}

/// The descriptors of the directories made so far, and everything created, in order.
private struct Writer {
    /// Relative directory path ("" for the top) -> an open descriptor.
    var dirs: [String: Int32] = [:]
    /// Who gets what is created; nil: whoever creates it.
    var owner: (uid: UInt32, gid: UInt32)?
    /// What was created: the directory it is in, its name, and whether it is a directory.
    var created: [(dir: String, name: String, isDirectory: Bool)] = []

    struct Failure {
        var step: String
        var errno: Int32
    }

    /// Writes one file, making its directories; nil on success.
    mutating func write(_ file: PlanFile, injected: Int32?) -> Failure? {
        let parts = file.filename.split(separator: "/").map(String.init)
        var key = ""
        var fd = dirs[""]!
        for part in parts.dropLast() {
            let next = key.isEmpty ? part : key + "/" + part
            if let d = dirs[next] {
                fd = d
            } else {
                if mkdirat(fd, part, 0o700) != 0 { return Failure(step: "mkdirat `\(next)`", errno: errno) }
                created.append((key, part, true))
                let d = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if d < 0 { return Failure(step: "open directory `\(next)`", errno: errno) }
                dirs[next] = d
                if fchmod(d, 0o755) != 0 { return Failure(step: "fchmod `\(next)`", errno: errno) }
                if let owner, fchown(d, owner.uid, owner.gid) != 0 { return Failure(step: "fchown `\(next)`", errno: errno) }
                fd = d
            }
            key = next
        }
        let base = parts.last!
        let f = openat(fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if f < 0 { return Failure(step: "openat", errno: errno) }
        created.append((key, base, false))
        if let injected {
            close(f)
            return Failure(step: "write", errno: injected)
        }
        let writeError: Int32? = file.content.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(f, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return nil
        }
        if let writeError {
            close(f)
            return Failure(step: "write", errno: writeError)
        }
        if fchmod(f, mode_t(file.mode)) != 0 {
            let e = errno
            close(f)
            return Failure(step: "fchmod", errno: e)
        }
        if let owner, fchown(f, owner.uid, owner.gid) != 0 {
            let e = errno
            close(f)
            return Failure(step: "fchown", errno: e)
        }
        if close(f) != 0 { return Failure(step: "close", errno: errno) }
        return nil
    }

    /// Removes what was created, newest first; the first failure, or nil.
    mutating func removeCreated() -> (what: String, errno: Int32)? {
        while let entry = created.popLast() {
            guard let fd = dirs[entry.dir] else { return ("lost directory `\(entry.dir)`", EBADF) }
            if unlinkat(fd, entry.name, entry.isDirectory ? AT_REMOVEDIR : 0) != 0 {
                return ("remove `\(entry.dir.isEmpty ? entry.name : entry.dir + "/" + entry.name)`", errno)
            }
        }
        return nil
    }

    mutating func closeAll() {
        for fd in dirs.values { close(fd) }
        dirs = [:]
    }
}
