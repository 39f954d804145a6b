import COTKSystem
import Foundation
import Glibc
import OTKConfig
import OTKModel

/// Compiled seccomp programs kept by policy hash, so that libseccomp (about 3 ms of a launch)
/// runs once per policy. Used only when otk runs as root: the cache directory and its entries
/// then belong to root with mode 0700/0600, and no sandbox ever runs as host root, so no
/// command can plant a weaker filter for a later run, even where a profile binds the directory
/// in. An unprivileged otk compiles every time: whatever it could write, its sandboxes (same
/// host uid) could write too wherever a bind exposes it. Anything unexpected about the
/// directory or an entry (owner, mode, symlink, size, header) means "not cached", never an error.
public struct SeccompCache: Sendable {
    public static let defaultDirectory = "/var/cache/otk/seccomp"
    static let magic = "otk-seccomp-cache-1"
    static let maximumSize = 4 * (4 + 4096 * 8)

    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The cache for this process: nil unless otk runs as root. `OTK_CACHE_DIR` names another directory (tests).
    public static func forThisProcess(environment: [String: String] = ProcessInfo.processInfo.environment) -> SeccompCache? {
        guard geteuid() == 0 else { return nil }
        return SeccompCache(directory: environment["OTK_CACHE_DIR"].map { $0 + "/seccomp" } ?? defaultDirectory)
    }

    /// The key: the policy, the libseccomp version and architecture, and this otk executable itself
    /// (a rebuilt otk may compile the same policy differently).
    public static func key(for policy: SeccompPolicy) -> String {
        var exe = stat()
        let identity = stat("/proc/self/exe", &exe) == 0
            ? "\(exe.st_dev):\(exe.st_ino):\(exe.st_size):\(exe.st_mtim.tv_sec).\(exe.st_mtim.tv_nsec)" : "unknown-executable"
        let text = [magic, SeccompCompiler.libraryVersion, SeccompCompiler.nativeArchitecture, identity, ProfileLoader.hash(policy)]
            .joined(separator: "\n")
        return String(ProfileLoader.sha256(text).dropFirst("sha256:".count))
    }

    /// The cached wire form for `key`, or nil.
    public func load(_ key: String) -> [UInt8]? {
        let dir = openTrusted()
        guard dir >= 0 else { return nil }
        defer { close(dir) }
        let fd = openat(dir, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == 0, st.st_mode & 0o077 == 0,
              st.st_size > 0, st.st_size <= Self.maximumSize + 256 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        guard bytes.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, $0.count, 0) }) == st.st_size else { return nil }
        let header = Array((Self.magic + "\n" + key + "\n").utf8)
        guard bytes.count > header.count, Array(bytes[..<header.count]) == header else { return nil }
        let wire = Array(bytes[header.count...])
        return Self.wellFormed(wire) ? wire : nil
    }

    /// Stores `wire` under `key`; best effort (a cache that cannot be written is just not used).
    public func store(_ key: String, _ wire: [UInt8]) {
        for path in [SandboxPath.parent(directory), directory] where mkdir(path, 0o700) != 0 && errno != EEXIST { return }
        let dir = openTrusted()
        guard dir >= 0 else { return }
        defer { close(dir) }
        let temporary = ".\(key).\(getpid())"
        let fd = openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let bytes = Array((Self.magic + "\n" + key + "\n").utf8) + wire
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written != bytes.count || renameat(dir, temporary, dir, key) != 0 { unlinkat(dir, temporary, 0) }
        prune(keeping: key)
    }

    /// Every rebuilt otk starts new entries: past `maximumEntries`, all but the newest one go.
    static let maximumEntries = 64

    private func prune(keeping key: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory), names.count > Self.maximumEntries else { return }
        for name in names where name != key { unlink(directory + "/" + name) }
    }

    /// The directory, opened without following a symlink, if it is root's alone: owned by uid 0 with
    /// no access for group or others. Checked on the open descriptor, so it cannot be swapped after the check.
    func openTrusted() -> Int32 {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return -1 }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_uid == 0, st.st_mode & 0o077 == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// The launcher checks the format again; this keeps a truncated entry from even reaching it.
    static func wellFormed(_ wire: [UInt8]) -> Bool {
        var offset = 0
        var programs = 0
        while offset < wire.count {
            guard wire.count - offset >= 4 else { return false }
            let count = Int(wire[offset]) | Int(wire[offset + 1]) << 8 | Int(wire[offset + 2]) << 16 | Int(wire[offset + 3]) << 24
            offset += 4
            guard count > 0, count <= 4096, wire.count - offset >= count * 8 else { return false }
            offset += count * 8
            programs += 1
        }
        return programs > 0 && programs <= 4
    }
}
