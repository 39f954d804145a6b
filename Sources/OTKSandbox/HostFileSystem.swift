import Foundation
import OTKModel

/// What otk needs to know about host paths to build a launch spec. A protocol so
/// that the spec builder is tested without touching the real file system.
public protocol HostFileSystem: Sendable {
    /// nil when the path does not exist.
    func kind(of path: String) -> HostFileKind?
    /// The canonical path (every symlink resolved), nil when it cannot be resolved.
    func realPath(_ path: String) -> String?
    /// The target of a symlink as written.
    func linkTarget(_ path: String) -> String?
    /// Owner uid of an existing path.
    func owner(of path: String) -> UInt32?
}

public enum HostFileKind: Sendable, Equatable {
    case directory, file, symlink, other
}

/// The real host file system, through lstat(2), realpath(3) and readlink(2).
public struct RealHostFileSystem: HostFileSystem {
    public init() {}

    public func kind(of path: String) -> HostFileKind? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    public func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func owner(of path: String) -> UInt32? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_uid
    }
}
