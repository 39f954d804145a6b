import OTKModel

/// Landlock access rights (linux/landlock.h) and the ruleset otk derives from a profile's mounts.
/// Pure: the host's ABI comes in as a number.
public enum Landlock {
    // Filesystem rights, ABI 1.
    public static let execute: UInt64 = 1 << 0
    public static let writeFile: UInt64 = 1 << 1
    public static let readFile: UInt64 = 1 << 2
    public static let readDir: UInt64 = 1 << 3
    public static let removeDir: UInt64 = 1 << 4
    public static let removeFile: UInt64 = 1 << 5
    public static let makeChar: UInt64 = 1 << 6
    public static let makeDir: UInt64 = 1 << 7
    public static let makeReg: UInt64 = 1 << 8
    public static let makeSock: UInt64 = 1 << 9
    public static let makeFifo: UInt64 = 1 << 10
    public static let makeBlock: UInt64 = 1 << 11
    public static let makeSym: UInt64 = 1 << 12
    /// ABI 2: link or rename into another directory.
    public static let refer: UInt64 = 1 << 13
    /// ABI 3.
    public static let truncate: UInt64 = 1 << 14
    /// ABI 5: ioctl on device files.
    public static let ioctlDev: UInt64 = 1 << 15
    // TCP, ABI 4.
    public static let bindTCP: UInt64 = 1 << 0
    public static let connectTCP: UInt64 = 1 << 1
    // Scopes, ABI 6.
    public static let scopeAbstractUnix: UInt64 = 1 << 0
    public static let scopeSignal: UInt64 = 1 << 1

    /// Every filesystem right the kernel of this ABI can restrict.
    public static func handledFS(abi: Int) -> UInt64 {
        var all: UInt64 = (1 << 13) - 1
        if abi >= 2 { all |= refer }
        if abi >= 3 { all |= truncate }
        if abi >= 5 { all |= ioctlDev }
        return all
    }

    public static let read: UInt64 = execute | readFile | readDir

    /// One mount of the sandbox, as Landlock sees it.
    public enum Area {
        case readOnly(String), writable(String), dev(String), proc(String)
    }

    public struct Plan: Equatable, Sendable {
        public var operations: [LaunchOperation]
        public var warnings: [String]
        public var layers: [String]
    }

    /// The ruleset for `settings` over the sandbox's mounts, on a kernel offering `abi`
    /// (nil: no Landlock). Throws when the profile requires what the kernel cannot give.
    public static func plan(_ settings: LandlockSettings, areas: [Area], etcFiles: Bool, network: NetworkMode,
                            abi: Int?, unavailableReason: String?) throws(OTKError) -> Plan {
        if settings.enforce == .off { return Plan(operations: [], warnings: [], layers: []) }
        let available = abi ?? 0
        if available < max(1, settings.minimumABI) {
            let why = abi == nil ? (unavailableReason ?? "this kernel offers no Landlock")
                : "this kernel offers Landlock ABI \(available), the profile needs ABI \(settings.minimumABI) (`landlock.min_abi`)"
            if settings.enforce == .required {
                throw OTKError(.isolationUnavailable, "landlock: the profile requires it, but \(why)",
                               remedy: "run on a kernel with Landlock (Linux 5.13+, `landlock` in the lsm= boot parameter), or use a profile with `[landlock] enforce = \"best_effort\"`")
            }
            if available < 1 {
                return Plan(operations: [], warnings: ["landlock not applied (best effort): \(why)"], layers: [])
            }
        }
        var warnings: [String] = []
        let handled = handledFS(abi: available)
        let all = handled
        var ops: [LaunchOperation] = []
        // Every directory may be listed (an empty grant on / makes `ls /` fail); files need a rule of their own.
        ops.append(.landlockPath(access: readDir, path: "/", optional: false))
        if etcFiles { ops.append(.landlockPath(access: read & ~execute, path: "/etc", optional: true)) }
        let narrowed = settings.writable != nil
        for area in areas {
            switch area {
            case .readOnly(let p): ops.append(.landlockPath(access: read, path: p, optional: false))
            case .writable(let p): ops.append(.landlockPath(access: narrowed ? read : all, path: p, optional: false))
            case .dev(let p): ops.append(.landlockPath(access: (readFile | writeFile | readDir | truncate | ioctlDev) & handled, path: p, optional: false))
            case .proc(let p): ops.append(.landlockPath(access: (readFile | writeFile | readDir | truncate) & handled, path: p, optional: false))
            }
        }
        // Narrower than the mounts: a path the workspace does not have yet gets nothing (fail closed).
        for path in settings.writable ?? [] { ops.append(.landlockPath(access: all, path: path, optional: true)) }

        var net: UInt64 = 0
        if available >= 4 {
            if settings.connectTCP != nil || network == .none { net |= connectTCP }
            if settings.bindTCP != nil || network == .none { net |= bindTCP }
            for port in settings.connectTCP ?? [] { ops.append(.landlockPort(access: connectTCP, port: port)) }
            // A port list narrows connect; the egress proxy's relay stays reachable in mode proxy.
            if network == .proxy, let ports = settings.connectTCP, !ports.contains(ProxyEndpoint.port) {
                ops.append(.landlockPort(access: connectTCP, port: ProxyEndpoint.port))
            }
            for port in settings.bindTCP ?? [] { ops.append(.landlockPort(access: bindTCP, port: port)) }
        } else if settings.connectTCP != nil || settings.bindTCP != nil {
            warnings.append("landlock: TCP port rules need ABI 4, this kernel offers \(available); the network namespace alone confines TCP")
        }
        let scoped: UInt64 = available >= 6 ? scopeAbstractUnix | scopeSignal : 0
        if available < 6 { warnings.append("landlock: signal and abstract-socket scoping need ABI 6, this kernel offers \(available)") }
        if available < settings.minimumABI {
            warnings.append("landlock applied at ABI \(available), below the profile's min_abi \(settings.minimumABI) (best effort)")
        }
        var layers = ["landlock-fs"]
        if net != 0 { layers.append("landlock-tcp") }
        if scoped != 0 { layers.append("landlock-scope") }
        return Plan(operations: [.landlock(fs: handled, net: net, scoped: scoped)] + ops, warnings: warnings, layers: layers)
    }
}
