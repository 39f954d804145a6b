import OTKModel

/// One connection the egress proxy handled: what was asked, what it decided, and what passed.
public struct ProxyRecord: Sendable, Codable, Equatable {
    /// "CONNECT", or the plain-HTTP method ("GET", "POST", ...).
    public var method: String
    /// The host asked for (CONNECT target or URL host), lower case.
    public var host: String
    public var port: Int
    /// The address connected to, when one was.
    public var address: String?
    /// The TLS server name of a CONNECT tunnel, when the ClientHello carried one.
    public var sni: String?
    /// "allowed" or "refused".
    public var decision: String
    /// Why it was refused, or why an allowed connection failed ("connect: Connection refused").
    public var reason: String?
    /// The allowlist entry that allowed it, and where that entry came from.
    public var allowedBy: String?
    /// Bytes from the sandbox to the upstream host, and back.
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    public var durationMs: Double

    public init(method: String, host: String, port: Int, decision: String, reason: String? = nil) {
        self.method = method
        self.host = host
        self.port = port
        self.decision = decision
        self.reason = reason
        self.bytesSent = 0
        self.bytesReceived = 0
        self.durationMs = 0
    }

    enum CodingKeys: String, CodingKey {
        case method, host, port, address, sni, decision, reason
        case allowedBy = "allowed_by", bytesSent = "bytes_sent", bytesReceived = "bytes_received", durationMs = "duration_ms"
    }
}

/// A refusal: the status the client gets and the reason the record keeps.
public struct ProxyRefusal: Error, Sendable, Equatable {
    public var status: Int
    public var reason: String

    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }
}

/// Resolves host names for the proxy; the sandbox itself has no DNS.
public protocol HostResolver: Sendable {
    /// Blocking; called off the event loop. Throws a message when the name does not resolve.
    func resolve(_ host: String) throws(ProxyRefusal) -> [IPAddress]
}

/// What the egress proxy allows: pure decisions over an allowlist, no I/O.
public struct ProxyPolicy: Sendable {
    public var allowlist: NetworkAllowlist

    public init(allowlist: NetworkAllowlist) {
        self.allowlist = allowlist
    }

    /// Splits a CONNECT target or URL authority, "host:port" or "[v6]:port", into its parts.
    /// `defaultPort` fills a missing port (plain HTTP); CONNECT needs one.
    public static func splitAuthority(_ authority: String, defaultPort: Int?) -> (host: String, port: Int)? {
        // The grammar of an allowlist entry, without wildcards; an IPv6 address needs its brackets here.
        guard authority.hasPrefix("[") || authority.filter({ $0 == ":" }).count <= 1,
              case .success(let parsed) = HostPattern.parse(authority), let port = parsed.port ?? defaultPort else { return nil }
        switch parsed.host {
        case .name(let name): return (name, port)
        case .address(let address): return (address.description, port)
        case .suffix: return nil
        }
    }

    /// The allowlist entry for `host:port`, or the refusal.
    public func vetTarget(host: String, port: Int) -> Result<NetworkAllowlist.Entry, ProxyRefusal> {
        if let entry = allowlist.entry(host: host, port: port) { return .success(entry) }
        let known = allowlist.entries.isEmpty ? "the allowlist is empty"
            : "allowed: " + allowlist.entries.map(\.pattern.description).joined(separator: ", ")
        return .failure(ProxyRefusal(status: 403, reason: "`\(NetworkAllowlist.authority(host, port))` is not in the allowlist (\(known))"))
    }

    /// The addresses of `host` the proxy may connect to: public ones, and restricted ones (loopback,
    /// private, link-local, metadata ...) only when that exact address is allowed. Checked after
    /// resolution, so a name that resolves somewhere else later (DNS rebinding) gains nothing.
    public func vetAddresses(host: String, port: Int, _ addresses: [IPAddress]) -> Result<[IPAddress], ProxyRefusal> {
        var permitted: [IPAddress] = []
        var refused: [String] = []
        var example: IPAddress?
        for address in addresses {
            if let why = address.restriction, !allowlist.allowsRestricted(address, port: port) {
                refused.append("\(address) (\(why))")
                example = example ?? address
            } else if !permitted.contains(address) {
                permitted.append(address)
            }
        }
        guard permitted.isEmpty else { return .success(permitted) }
        if refused.isEmpty { return .failure(ProxyRefusal(status: 502, reason: "`\(host)` resolves to no address")) }
        return .failure(ProxyRefusal(status: 403, reason: "`\(host)` resolves only to restricted addresses: \(refused.joined(separator: ", ")); "
                                         + "allow such an address by writing it literally (e.g. `\(example?.authority ?? "ADDRESS"):\(port)`)"))
    }

    /// A CONNECT tunnel's TLS server name against the CONNECT host: the same name, or (only for a
    /// literal address, which TLS clients do not send as a name) none.
    public func vetServerName(_ sni: String?, connectHost: String) -> ProxyRefusal? {
        let isLiteral = IPAddress(connectHost) != nil
        guard let sni else {
            if isLiteral { return nil }
            return ProxyRefusal(status: 0, reason: "the tunnel to `\(connectHost)` did not start with a TLS ClientHello naming it (SNI); CONNECT carries TLS to the named host only")
        }
        let name = NetworkAllowlist.canonical(sni)
        if name == connectHost { return nil }
        return ProxyRefusal(status: 0, reason: "TLS server name (SNI) `\(name)` differs from the CONNECT host `\(connectHost)`")
    }
}
