#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address, as bytes (4 or 16).
public struct IPAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// A numeric address as written: "10.0.0.1", "::1" (no brackets, no zone).
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = isIPv4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        return ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    /// The address as a URL or CONNECT authority writes it: IPv6 in brackets.
    public var authority: String { isIPv4 ? description : "[\(description)]" }

    /// The IPv4 address an IPv6 address carries (v4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d,
    /// the deprecated v4-compatible ::a.b.c.d); nil for every other address.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let head = Array(bytes[0..<12])
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        let nat64: [UInt8] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]
        let compatible = [UInt8](repeating: 0, count: 12)
        guard head == mapped || head == nat64 || (head == compatible && bytes[12...].contains { $0 != 0 } && !(bytes[12...15].elementsEqual([0, 0, 0, 1]))) else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// Why the egress proxy must not connect here unless this exact address is allowed: loopback,
    /// private, link-local, cloud metadata and every other address that is not a public unicast one.
    /// nil for a public address.
    public var restriction: String? {
        if let v4 = embeddedIPv4 { return v4.restriction.map { "\($0) (inside the IPv6 address \(description))" } }
        if isIPv4 {
            let b = bytes
            if Self.metadataV4.contains(b) { return "a cloud metadata address" }
            switch (b[0], b[1]) {
            case (0, _): return "a 'this network' address (0.0.0.0/8)"
            case (10, _): return "a private address (10.0.0.0/8)"
            case (100, 64...127): return "a shared (carrier-grade NAT) address (100.64.0.0/10)"
            case (127, _): return "a loopback address (127.0.0.0/8)"
            case (169, 254): return "a link-local address (169.254.0.0/16)"
            case (172, 16...31): return "a private address (172.16.0.0/12)"
            case (192, 168): return "a private address (192.168.0.0/16)"
            case (198, 18...19): return "a benchmarking address (198.18.0.0/15)"
            case (224...239, _): return "a multicast address (224.0.0.0/4)"
            case (240...255, _): return "a reserved or broadcast address (240.0.0.0/4)"
            default: break
            }
            if b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2) { return "a reserved address (192.0.0.0/24, 192.0.2.0/24)" }
            if (b[0] == 198 && b[1] == 51 && b[2] == 100) || (b[0] == 203 && b[1] == 0 && b[2] == 113) { return "a documentation address" }
            return nil
        }
        let b = bytes
        if Self.metadataV6.contains(b) { return "a cloud metadata address" }
        if b.allSatisfy({ $0 == 0 }) { return "the unspecified address (::)" }
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "the loopback address (::1)" }
        if b[0] == 0xfe && (b[1] & 0xc0) == 0x80 { return "a link-local address (fe80::/10)" }
        if b[0] == 0xfe && (b[1] & 0xc0) == 0xc0 { return "a site-local address (fec0::/10)" }
        if (b[0] & 0xfe) == 0xfc { return "a unique local (private) address (fc00::/7)" }
        if b[0] == 0xff { return "a multicast address (ff00::/8)" }
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 { return "a documentation address (2001:db8::/32)" }
        if b[0] == 0x01 && b[1..<8].allSatisfy({ $0 == 0 }) { return "a discard-only address (100::/64)" }
        // 2002::/16 (6to4) carries an IPv4 address in bytes 2-5.
        if b[0] == 0x20 && b[1] == 0x02, let v4 = IPAddress(bytes: Array(b[2..<6])), let why = v4.restriction {
            return "\(why) (inside the 6to4 address \(description))"
        }
        return nil
    }

    /// Cloud instance metadata and host-agent endpoints: some are public addresses, so the ranges
    /// above do not catch them all (Azure's wire server is 168.63.129.16).
    static let metadataV4: Set<[UInt8]> = [[169, 254, 169, 254], [169, 254, 170, 2], [168, 63, 129, 16], [100, 100, 100, 200]]
    static let metadataV6: Set<[UInt8]> = [[0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54]]
}

/// One entry of an allowlist: `host`, `*.suffix`, or a literal address, with an optional `:port`.
/// Without a port the entry allows the web's ports, 80 and 443.
public struct HostPattern: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Host: Sendable, Hashable, Codable {
        /// Exactly this name (lower case, no trailing dot).
        case name(String)
        /// Any name ending in `.suffix` (not the suffix itself).
        case suffix(String)
        case address(IPAddress)
    }

    public var host: Host
    public var port: Int?

    public static let defaultPorts = [80, 443]

    public init(host: Host, port: Int?) {
        self.host = host
        self.port = port
    }

    /// Parses `example.org`, `*.example.org`, `registry.example.org:8443`, `10.1.2.3`, `10.1.2.3:8080`,
    /// `[::1]:8080` or `::1`. The error says what is wrong.
    public static func parse(_ text: String) -> Result<HostPattern, PatternError> {
        func fail(_ why: String) -> Result<HostPattern, PatternError> { .failure(PatternError(message: "`\(text)` is not a host pattern: \(why)")) }
        var hostText = Substring(text)
        var port: Int?
        if hostText.hasPrefix("[") {
            guard let close = hostText.firstIndex(of: "]") else { return fail("no `]` after the IPv6 address") }
            let rest = hostText[hostText.index(after: close)...]
            hostText = hostText[hostText.index(after: hostText.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(rest.dropFirst()),
                      (1...65535).contains(p) else { return fail("the port must be 1-65535") }
                port = p
            }
            guard let address = IPAddress(String(hostText)), !address.isIPv4 else { return fail("`\(hostText)` is not an IPv6 address") }
            return .success(HostPattern(host: .address(address), port: port))
        }
        if let address = IPAddress(String(hostText)), !address.isIPv4 {
            return .success(HostPattern(host: .address(address), port: nil))
        }
        if let colon = hostText.lastIndex(of: ":") {
            let portText = hostText[hostText.index(after: colon)...]
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(portText), (1...65535).contains(p) else { return fail("the port must be 1-65535") }
            port = p
            hostText = hostText[..<colon]
        }
        if let address = IPAddress(String(hostText)) {
            guard address.isIPv4 else { return fail("an IPv6 address with a port is written [ADDRESS]:PORT") }
            return .success(HostPattern(host: .address(address), port: port))
        }
        var name = hostText.lowercased()
        var wildcard = false
        if name.hasPrefix("*.") {
            wildcard = true
            name.removeFirst(2)
        }
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.contains("*") else { return fail("`*` is allowed only as the whole first label (`*.example.org`)") }
        guard isHostName(name) else { return fail("not a host name (letters, digits, '-' and '.', labels of 1-63)") }
        if wildcard && !name.contains(".") {
            return fail("`*.\(name)` would allow a whole top-level domain; name at least two labels")
        }
        return .success(HostPattern(host: wildcard ? .suffix(name) : .name(name), port: port))
    }

    public struct PatternError: Error, Sendable, Equatable {
        public var message: String
    }

    /// Letters, digits, '-' and '_' in dot-separated labels of 1-63, 253 at most in all.
    public static func isHostName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }

    func allowsPort(_ p: Int) -> Bool { port.map { $0 == p } ?? Self.defaultPorts.contains(p) }

    /// Whether a request for `host` (a name, lower case, or a literal address) and `port` is allowed.
    public func matches(host requested: String, port requestedPort: Int) -> Bool {
        guard allowsPort(requestedPort) else { return false }
        switch host {
        case .name(let n): return requested == n
        case .suffix(let s): return requested.hasSuffix("." + s) && requested.utf8.count > s.utf8.count + 1
        case .address(let a): return IPAddress(requested) == a
        }
    }

    public var description: String {
        let h: String
        switch host {
        case .name(let n): h = n
        case .suffix(let s): h = "*." + s
        case .address(let a): h = a.isIPv4 ? a.description : (port == nil ? a.description : "[\(a.description)]")
        }
        return port.map { "\(h):\($0)" } ?? h
    }
}

/// Who may be reached through the egress proxy: host patterns, and the restricted addresses
/// (loopback, private, metadata ...) that were allowed by writing them as literal addresses.
public struct NetworkAllowlist: Sendable, Hashable, Codable {
    public struct Entry: Sendable, Hashable, Codable {
        public var pattern: HostPattern
        /// Where the entry came from: "profile strict", "--allow-host", "pip: /etc/pip.conf [global] index-url".
        public var source: String

        public init(pattern: HostPattern, source: String) {
            self.pattern = pattern
            self.source = source
        }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry] = []) { self.entries = entries }

    /// The entry that allows `host:port`, if any. `host` is compared in lower case, without a trailing dot.
    public func entry(host: String, port: Int) -> Entry? {
        let canonical = Self.canonical(host)
        return entries.first { $0.pattern.matches(host: canonical, port: port) }
    }

    /// Whether `address` was allowed literally (for `port`): only then may a connection go to a
    /// loopback, private, link-local or metadata address.
    public func allowsRestricted(_ address: IPAddress, port: Int) -> Bool {
        entries.contains { entry in
            if case .address(let a) = entry.pattern.host { return a == address && entry.pattern.allowsPort(port) }
            return false
        }
    }

    /// `host:port` as a URL or CONNECT writes it (an IPv6 address in brackets).
    public static func authority(_ host: String, _ port: Int) -> String {
        "\(IPAddress(host).map(\.authority) ?? host):\(port)"
    }

    public static func canonical(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasSuffix(".") { h.removeLast() }
        if let a = IPAddress(h) { return a.description }
        return h
    }

    public mutating func add(_ pattern: HostPattern, source: String) {
        guard !entries.contains(where: { $0.pattern == pattern }) else { return }
        entries.append(Entry(pattern: pattern, source: source))
    }
}

/// Where the egress proxy appears inside a sandbox in network mode `proxy`, and the variables
/// that point programs at it.
public enum ProxyEndpoint {
    /// The relay's TCP port on the sandbox's own 127.0.0.1.
    public static let port: UInt16 = 3128
    /// The unix socket of otk's proxy, bound read-only into the sandbox.
    public static let socketPath = "/run/otk/proxy.sock"
    public static var url: String { "http://127.0.0.1:\(port)" }

    /// Set in the sandbox over anything the profile or the host passed: the common variables
    /// (HTTP_PROXY, HTTPS_PROXY in both cases) and the package managers' own. NO_PROXY is emptied,
    /// so that no host, not even 127.0.0.1, is reached around the proxy by a program that honours it.
    public static var environment: [(String, String)] {
        let hostPort = "127.0.0.1:\(port)"
        let javaProperties = "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=\(port) -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=\(port)"
        return [
            ("HTTP_PROXY", url), ("HTTPS_PROXY", url), ("http_proxy", url), ("https_proxy", url),
            ("NO_PROXY", ""), ("no_proxy", ""),
            ("npm_config_proxy", url), ("npm_config_https_proxy", url), ("npm_config_noproxy", ""),
            ("YARN_HTTP_PROXY", url), ("YARN_HTTPS_PROXY", url),
            ("PIP_PROXY", url),
            ("CARGO_HTTP_PROXY", hostPort),
            ("MAVEN_OPTS", javaProperties), ("GRADLE_OPTS", javaProperties),
        ]
    }
}
