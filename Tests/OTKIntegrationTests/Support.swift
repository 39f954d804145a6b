import Foundation
import Testing

/// Who runs otk in a test: the test's own user (root in CI) or, when the test runs as root, nobody.
enum Runner: String, CaseIterable, CustomTestStringConvertible {
    case invoking
    case nobody

    var testDescription: String { rawValue }

    /// The runners this machine can exercise: nobody only when we are root, can switch to it, and could
    /// delegate cgroups to it (strict's limits need them; see CgroupDelegation).
    static var available: [Runner] {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") && CgroupDelegation.nobody
            ? [.invoking, .nobody] : [.invoking]
    }

    var uid: UInt32 { self == .nobody ? 65534 : geteuid() }

    /// The argv prefix that runs a program as this user.
    var prefix: [String] {
        self == .nobody ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] : []
    }

    /// otk as this user runs it: for nobody, a copy in a world-readable directory, since the
    /// checkout may sit below a directory nobody cannot enter (CI clones anywhere).
    var otk: String { self == .nobody ? NobodyInstall.shared.bin + "/otk" : Paths.otk }
    var probe: String { self == .nobody ? NobodyInstall.shared.bin + "/otk-probe" : Paths.probe }
}

/// otk, otk-launcher, otk-probe and the profiles copied to a temporary tree that nobody can read,
/// laid out as an installation (bin/ beside profiles/), removed when the test process exits.
final class NobodyInstall: Sendable {
    static let shared = NobodyInstall()
    let root: String
    var bin: String { root + "/bin" }

    private init() {
        var template = Array((NSTemporaryDirectory() + "/otk-it-install-XXXXXX").utf8CString)
        root = mkdtemp(&template).map { String(cString: $0) } ?? "/nonexistent"
        let fm = FileManager.default
        try? fm.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        for name in ["otk", "otk-launcher", "otk-probe"] {
            try? fm.copyItem(atPath: Paths.binDirectory + "/" + name, toPath: root + "/bin/" + name)
        }
        try? fm.copyItem(atPath: Paths.repository + "/profiles", toPath: root + "/profiles")
        for dir in [root, root + "/bin", root + "/profiles"] { chmod(dir, 0o755) }
        NobodyInstall.removeAtExit(root)
    }

    nonisolated(unsafe) private static var pathToRemove: String?

    private static func removeAtExit(_ path: String) {
        pathToRemove = path
        atexit {
            if let path = NobodyInstall.pathToRemove { try? FileManager.default.removeItem(atPath: path) }
        }
    }
}

/// Paths of the package's build products and sources.
enum Paths {
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["OTK_BIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test runner may live inside an .xctest bundle directory.
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("otk").path), url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url.path
    }()
    static var otk: String { binDirectory + "/otk" }
    static var probe: String { binDirectory + "/otk-probe" }
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var hostServices: String { repository + "/Tests/Fixtures/host_services.py" }
    /// Where tests bind the probe inside the sandbox (outside every read-only bind, so its mount point can be made).
    static let probeInside = "/.otk-probe"
}

struct Completed {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion, feeding `input` on stdin; the environment is inherited.
func run(_ argv: [String], input: String? = nil, environment: [String: String]? = nil) throws -> Completed {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: argv[0])
    process.arguments = Array(argv.dropFirst())
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = inp
    try process.run()
    if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
    try inp.fileHandleForWriting.close()
    // Read both pipes concurrently so a chatty child cannot block on a full pipe.
    let errData = LockedData()
    let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errData.isSet { usleep(1000) }
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return Completed(status: status, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData.get(), as: UTF8.self))
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    func set(_ d: Data) { lock.lock(); data = d; done = true; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return done }
}

/// One line of probe output.
struct ProbeResult {
    var fields: [String: Any]
    var ok: Bool { fields["ok"] as? Bool ?? false }
    var error: String { fields["error"] as? String ?? "" }
    subscript(key: String) -> Any? { fields[key] }
}

/// Probe output by check name and argument ("read=/etc/shadow").
struct ProbeReport {
    var results: [String: ProbeResult] = [:]

    init(_ stdout: String) {
        for line in stdout.split(separator: "\n") {
            guard let data = line.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let check = object["check"] as? String else { continue }
            let arg = object["arg"] as? String ?? ""
            results[arg.isEmpty ? check : "\(check)=\(arg)"] = ProbeResult(fields: object)
        }
    }

    subscript(key: String) -> ProbeResult? { results[key] }
}

/// A temporary directory owned by `uid` (the sandbox writes into it), removed at deinit.
final class TemporaryDirectory {
    let path: String

    init(owner uid: UInt32 = geteuid(), prefix: String = "otk-it-") throws {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = URL(fileURLWithPath: String(cString: made)).resolvingSymlinksInPath().path
        chmod(path, 0o755)
        if uid != geteuid() { chown(path, uid, uid) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The host-side services of Tests/Fixtures/host_services.py, running while this object lives.
final class HostServices {
    let process = Process()
    let stdin = Pipe()
    let info: [String: Any]

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.hostServices]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = stdin
        try process.run()
        var line = Data()
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line += byte
        }
        guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw POSIXError(.EIO)
        }
        info = object
    }

    var tcpPort: Int { info["tcp_port"] as? Int ?? 0 }
    var udpPort: Int { info["udp_port"] as? Int ?? 0 }
    var unixPath: String { info["unix"] as? String ?? "" }
    var abstractName: String { info["abstract"] as? String ?? "" }
    var targetPid: Int32 { Int32(info["target_pid"] as? Int ?? 0) }
    func sysvKey(_ kind: String) -> Int { (info["sysv"] as? [String: Int])?[kind] ?? 0 }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// Whether a process exists (and is not a zombie).
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    guard let close = stat.lastIndex(of: ")") else { return false }
    return !stat[stat.index(after: close)...].hasPrefix(" Z")
}

/// Every descendant of `pid`, from /proc.
func descendants(of pid: Int32) -> Set<Int32> {
    var parent: [Int32: Int32] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let p = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 1, let ppid = Int32(fields[1]) { parent[p] = ppid }
    }
    var out = Set<Int32>()
    var changed = true
    while changed {
        changed = false
        for (child, ppid) in parent where !out.contains(child) && (ppid == pid || out.contains(ppid)) {
            out.insert(child)
            changed = true
        }
    }
    return out
}

/// A profile file extending the shipped strict profile (by absolute path), in a directory of its own;
/// `body` starts on line 4 of the file.
final class DerivedProfile {
    static let strict = Paths.repository + "/profiles/strict.toml"
    let directory: TemporaryDirectory
    let path: String

    init(_ body: String, name: String = "derived") throws {
        directory = try TemporaryDirectory(prefix: "otk-it-profiles-")
        path = directory.path + "/\(name).toml"
        try "schema = 1\nextends = \"\(Self.strict)\"\n\n\(body)\n".write(toFile: path, atomically: false, encoding: .utf8)
    }
}

/// cgroup v1 parents that root makes and gives to nobody, as an administrator delegates to a CI user
/// (docs/limits.md): `<hierarchy>/otk-65534` for memory, pids and cpu. Removed at exit when empty.
/// On a v2-only host nobody gets none (moving a process needs the common ancestor's cgroup.procs).
enum CgroupDelegation {
    static let nobody: Bool = {
        guard geteuid() == 0, let mountinfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        var dirs: [String] = []
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), fields.count > dash + 3, fields[dash + 1] == "cgroup" else { continue }
            let options = fields[dash + 3].split(separator: ",")
            guard options.contains(where: { ["memory", "pids", "cpu"].contains(String($0)) }) else { continue }
            let dir = String(fields[4]) + "/otk-65534"
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { return false }
            if chown(dir, 65534, 65534) != 0 { return false }
            dirs.append(dir)
        }
        removeAtExit(dirs)
        return !dirs.isEmpty
    }()

    nonisolated(unsafe) private static var toRemove: [String] = []

    private static func removeAtExit(_ dirs: [String]) {
        toRemove = dirs
        atexit {
            for dir in CgroupDelegation.toRemove { rmdir(dir) }
        }
    }
}

