import Foundation
import OTKModel
import Testing

/// The network model of proxy mode: addresses, host patterns, allowlists and the sandbox's proxy variables.
@Suite("Network model")
struct NetworkModelTests {
    private func ip(_ text: String) -> IPAddress {
        guard let a = IPAddress(text) else { fatalError("test address `\(text)` does not parse") }
        return a
    }

    private func pattern(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> HostPattern {
        switch HostPattern.parse(text) {
        case .success(let p): return p
        case .failure(let e):
            Issue.record("`\(text)` should parse: \(e.message)", sourceLocation: sourceLocation)
            throw e
        }
    }

    private func allowlist(_ texts: String..., source: String = "test") throws -> NetworkAllowlist {
        var list = NetworkAllowlist()
        for t in texts { list.add(try pattern(t), source: source) }
        return list
    }

    // MARK: IPAddress

    @Test(arguments: [
        ("10.0.0.1", [10, 0, 0, 1] as [UInt8], "10.0.0.1"),
        ("0.0.0.0", [0, 0, 0, 0], "0.0.0.0"),
        ("255.255.255.255", [255, 255, 255, 255], "255.255.255.255"),
        ("93.184.216.34", [93, 184, 216, 34], "93.184.216.34"),
    ])
    func parsesAndPrintsIPv4(text: String, bytes: [UInt8], printed: String) {
        let a = IPAddress(text)
        #expect(a?.bytes == bytes)
        #expect(a?.isIPv4 == true)
        #expect(a?.description == printed)
        #expect(a?.authority == printed)
    }

    @Test(arguments: [
        ("::1", "::1"),
        ("::", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2606:4700:0000:0000:0000:0000:0000:1111", "2606:4700::1111"),
        ("fe80::1", "fe80::1"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
    ])
    func parsesAndPrintsIPv6(text: String, printed: String) {
        let a = IPAddress(text)
        #expect(a?.bytes.count == 16)
        #expect(a?.isIPv4 == false)
        #expect(a?.description == printed)
        #expect(a?.authority == "[\(printed)]")
    }

    @Test func ipv6BytesAreNetworkOrder() {
        #expect(IPAddress("::1")?.bytes == [UInt8](repeating: 0, count: 15) + [1])
        #expect(IPAddress("fd00:ec2::254")?.bytes == [0xfd, 0, 0x0e, 0xc2] + [UInt8](repeating: 0, count: 10) + [0x02, 0x54])
    }

    @Test(arguments: [
        "", " ", "10.0.0", "10.0.0.256", "10.0.0.1.2", "1.2.3.4 ", " 1.2.3.4", "[::1]", "::1]", "fe80::1%eth0",
        "example.org", "10.0.0.1:80", "::g", "1:2:3:4:5:6:7:8:9", "localhost",
    ])
    func rejectsNonAddresses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func bytesInitialiserTakesOnlyFourOrSixteen() {
        #expect(IPAddress(bytes: [127, 0, 0, 1])?.description == "127.0.0.1")
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 15) + [1])?.description == "::1")
        #expect(IPAddress(bytes: []) == nil)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [1, 2, 3, 4, 5]) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 17)) == nil)
    }

    @Test func equalAddressesWrittenDifferentlyAreEqual() {
        #expect(IPAddress("::1") == IPAddress("0:0:0:0:0:0:0:1"))
        #expect(IPAddress("2001:db8::1") == IPAddress("2001:DB8:0::1"))
        // A v4-mapped address is not the IPv4 address itself.
        #expect(IPAddress("::ffff:127.0.0.1") != IPAddress("127.0.0.1"))
    }

    @Test(arguments: [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("::ffff:a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b::1.2.3.4", "1.2.3.4"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("::1.2.3.4", "1.2.3.4"),            // deprecated v4-compatible
    ])
    func embeddedIPv4IsFound(text: String, v4: String) {
        #expect(ip(text).embeddedIPv4 == ip(v4))
    }

    @Test(arguments: ["::1", "::", "2001:db8::1", "fe80::1", "2606:4700::1111", "1.2.3.4", "127.0.0.1", "64:ff9b:1::1.2.3.4"])
    func noEmbeddedIPv4(text: String) {
        #expect(ip(text).embeddedIPv4 == nil)
    }

    @Test(arguments: [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.20.5.5", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("192.168.255.254", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "shared"),
        ("100.127.255.255", "shared"),
        ("100.100.100.200", "metadata"),
        ("168.63.129.16", "metadata"),
        ("0.0.0.0", "this network"),
        ("0.1.2.3", "this network"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.2.1", "reserved"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("fd00:ec2::254", "metadata"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("100::1", "discard"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
        ("64:ff9b::7f00:1", "loopback"),
        ("::127.0.0.1", "loopback"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a9fe:a9fe::1", "metadata"),
        ("2002:c0a8:101::1", "private"),
    ])
    func restrictedAddresses(text: String, kind: String) {
        let why = ip(text).restriction
        #expect(why != nil, "\(text) must be restricted")
        #expect(why?.contains(kind) == true, "\(text): \(why ?? "nil") should say \(kind)")
    }

    @Test func embeddedRestrictionsNameTheOuterAddress() {
        #expect(ip("::ffff:127.0.0.1").restriction?.contains("::ffff:127.0.0.1") == true)
        #expect(ip("64:ff9b::a9fe:a9fe").restriction?.contains("64:ff9b::a9fe:a9fe") == true)
        #expect(ip("2002:7f00:1::1").restriction?.contains("6to4") == true)
        #expect(ip("2002:7f00:1::1").restriction?.contains("2002:7f00:1::1") == true)
    }

    @Test(arguments: [
        "93.184.216.34", "1.1.1.1", "8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "100.63.255.255",
        "100.128.0.1", "11.0.0.1", "126.255.255.255", "128.0.0.1", "169.253.1.1", "169.255.0.1", "223.255.255.254",
        "198.20.0.1", "192.0.1.1",
        "2606:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001::200e", "::ffff:1.1.1.1", "64:ff9b::808:808",
        "2002:808:808::1",
    ])
    func publicAddressesAreNotRestricted(text: String) {
        #expect(ip(text).restriction == nil, "\(text): \(ip(text).restriction ?? "")")
    }

    // MARK: HostPattern.parse

    @Test func parsesNames() throws {
        #expect(try pattern("example.org") == HostPattern(host: .name("example.org"), port: nil))
        #expect(try pattern("Example.ORG.") == HostPattern(host: .name("example.org"), port: nil))
        #expect(try pattern("*.example.org") == HostPattern(host: .suffix("example.org"), port: nil))
        #expect(try pattern("*.Example.Org.") == HostPattern(host: .suffix("example.org"), port: nil))
        #expect(try pattern("registry.example.org:8443") == HostPattern(host: .name("registry.example.org"), port: 8443))
        #expect(try pattern("*.example.org:8443") == HostPattern(host: .suffix("example.org"), port: 8443))
        #expect(try pattern("localhost") == HostPattern(host: .name("localhost"), port: nil))
        #expect(try pattern("my_host.internal:1") == HostPattern(host: .name("my_host.internal"), port: 1))
        #expect(try pattern("a.b:65535") == HostPattern(host: .name("a.b"), port: 65535))
    }

    @Test func parsesAddresses() throws {
        #expect(try pattern("10.1.2.3") == HostPattern(host: .address(ip("10.1.2.3")), port: nil))
        #expect(try pattern("10.1.2.3:8080") == HostPattern(host: .address(ip("10.1.2.3")), port: 8080))
        #expect(try pattern("[::1]:8080") == HostPattern(host: .address(ip("::1")), port: 8080))
        #expect(try pattern("[::1]") == HostPattern(host: .address(ip("::1")), port: nil))
        #expect(try pattern("::1") == HostPattern(host: .address(ip("::1")), port: nil))
        #expect(try pattern("[2001:DB8::1]:443") == HostPattern(host: .address(ip("2001:db8::1")), port: 443))
    }

    /// A bare IPv6 literal never carries a port: `::1:80` is the address ::1:80 (0:0:0:0:0:0:1:80).
    @Test func bareIPv6LiteralNeverCarriesAPort() throws {
        let p = try pattern("::1:80")
        #expect(p.host == .address(ip("::1:80")))
        #expect(p.port == nil)
        #expect(p.host != .address(ip("::1")))
    }

    @Test(arguments: [
        ("*", "`*`"),
        ("*.org", "top-level domain"),
        ("*.", "not a host name"),
        ("a*.example.org", "`*`"),
        ("*.*.example.org", "`*`"),
        ("www.*.example.org", "`*`"),
        ("example.org:0", "port"),
        ("example.org:70000", "port"),
        ("example.org:65536", "port"),
        ("example.org:-1", "port"),
        ("example.org:abc", "port"),
        ("example.org:", "port"),
        ("[::1", "`]`"),
        ("[::1]:", "port"),
        ("[::1]:0", "port"),
        ("[::1]8080", "port"),
        ("[10.0.0.1]:80", "not an IPv6 address"),
        ("[example.org]:80", "not an IPv6 address"),
        ("bad_host!", "not a host name"),
        ("", "not a host name"),
        ("a..b", "not a host name"),
        (".example.org", "not a host name"),
        ("-a.example.org", "not a host name"),
        ("a-.example.org", "not a host name"),
        ("exa mple.org", "not a host name"),
        ("exämple.org", "not a host name"),
        ("user@example.org", "not a host name"),
        ("http://example.org", "port"),
        ("example.org/path", "not a host name"),
        (String(repeating: "a", count: 64) + ".org", "not a host name"),
    ])
    func rejectsBadPatterns(text: String, says: String) {
        guard case .failure(let e) = HostPattern.parse(text) else {
            Issue.record("`\(text)` should not parse")
            return
        }
        #expect(e.message.hasPrefix("`\(text)` is not a host pattern: "), "\(e.message)")
        #expect(e.message.contains(says), "\(e.message)")
    }

    @Test func rejectsOverlongNames() {
        // 300 characters: labels of 49 joined by dots.
        let long = String(Array(repeating: String(repeating: "a", count: 49), count: 6).joined(separator: ".").prefix(300))
        #expect(long.count == 299)
        let longer = long + "b"
        #expect(longer.count == 300)
        for text in [longer, "*." + longer, longer + ":443"] {
            guard case .failure(let e) = HostPattern.parse(text) else {
                Issue.record("a \(text.count)-character name should not parse")
                continue
            }
            #expect(e.message.contains("not a host name"))
        }
        // 253 is the most a name may have.
        let max = [String](repeating: String(repeating: "b", count: 62), count: 4).joined(separator: ".") + ".c"
        #expect(max.utf8.count == 253)
        #expect(HostPattern.isHostName(max))
        #expect(!HostPattern.isHostName(max + "c"))
    }

    @Test func descriptionsRoundTrip() throws {
        for text in ["example.org", "*.example.org", "registry.example.org:8443", "*.example.org:8443",
                     "10.1.2.3", "10.1.2.3:8080", "[::1]:8080", "::1", "2001:db8::1"] {
            let p = try pattern(text)
            #expect(p.description == text)
            #expect(try pattern(p.description) == p)
        }
        #expect(try pattern("Example.ORG.:443").description == "example.org:443")
        #expect(try pattern("[::1]").description == "::1")
    }

    @Test func allowlistsAreCodable() throws {
        let list = try allowlist("example.org", "*.example.net:8443", "10.0.0.1:80", "[::1]:8080")
        #expect(list.entries.map(\.pattern.description) == ["example.org", "*.example.net:8443", "10.0.0.1:80", "[::1]:8080"])
        let decoded = try JSONDecoder().decode(NetworkAllowlist.self, from: try JSONEncoder().encode(list))
        #expect(decoded == list)
    }

    // MARK: HostPattern.matches

    @Test func exactNameMatchesOnlyThatName() throws {
        let p = try pattern("example.org")
        #expect(p.matches(host: "example.org", port: 443))
        #expect(p.matches(host: "example.org", port: 80))
        #expect(!p.matches(host: "a.example.org", port: 443))
        #expect(!p.matches(host: "badexample.org", port: 443))
        #expect(!p.matches(host: "example.org.evil.test", port: 443))
        #expect(!p.matches(host: "93.184.216.34", port: 443))
    }

    @Test func suffixMatchesSubdomainsOnly() throws {
        let p = try pattern("*.example.org")
        #expect(p.matches(host: "a.example.org", port: 443))
        #expect(p.matches(host: "a.b.example.org", port: 80))
        #expect(!p.matches(host: "example.org", port: 443))
        #expect(!p.matches(host: "badexample.org", port: 443))
        #expect(!p.matches(host: ".example.org", port: 443))
        #expect(!p.matches(host: "a.example.org.evil.test", port: 443))
        #expect(!p.matches(host: "a.example.org", port: 8443))
    }

    @Test func defaultPortsOnlyWithoutAPort() throws {
        #expect(HostPattern.defaultPorts == [80, 443])
        let any = try pattern("example.org")
        for port in [1, 22, 8080, 8443, 65535] { #expect(!any.matches(host: "example.org", port: port)) }
        let explicit = try pattern("example.org:8443")
        #expect(explicit.matches(host: "example.org", port: 8443))
        #expect(!explicit.matches(host: "example.org", port: 443))
        #expect(!explicit.matches(host: "example.org", port: 80))
        let web = try pattern("example.org:443")
        #expect(web.matches(host: "example.org", port: 443))
        #expect(!web.matches(host: "example.org", port: 80))
    }

    @Test func addressPatternsMatchLiterals() throws {
        let v4 = try pattern("10.1.2.3")
        #expect(v4.matches(host: "10.1.2.3", port: 80))
        #expect(v4.matches(host: "10.1.2.3", port: 443))
        #expect(!v4.matches(host: "10.1.2.3", port: 8080))
        #expect(!v4.matches(host: "10.1.2.4", port: 80))
        #expect(!v4.matches(host: "example.org", port: 80))
        let v4port = try pattern("10.1.2.3:8080")
        #expect(v4port.matches(host: "10.1.2.3", port: 8080))
        #expect(!v4port.matches(host: "10.1.2.3", port: 80))
        let v6 = try pattern("[::1]:8080")
        #expect(v6.matches(host: "::1", port: 8080))
        #expect(!v6.matches(host: "::1", port: 443))
        #expect(!v6.matches(host: "::2", port: 8080))
        // The v4-mapped form is a different address.
        let loopback = try pattern("127.0.0.1:8080")
        #expect(!loopback.matches(host: "::ffff:127.0.0.1", port: 8080))
        // A name pattern never matches an address.
        let localhost = try pattern("localhost")
        #expect(!localhost.matches(host: "127.0.0.1", port: 80))
    }

    // MARK: NetworkAllowlist

    @Test func entryCanonicalisesTheHost() throws {
        let list = try allowlist("registry.example.org", "*.example.net:8443", "[::1]:8080", "10.0.0.5")
        #expect(list.entry(host: "registry.example.org", port: 443)?.pattern.description == "registry.example.org")
        #expect(list.entry(host: "REGISTRY.Example.ORG", port: 443)?.pattern.description == "registry.example.org")
        #expect(list.entry(host: "registry.example.org.", port: 80)?.pattern.description == "registry.example.org")
        #expect(list.entry(host: "A.B.Example.NET.", port: 8443)?.pattern.description == "*.example.net:8443")
        #expect(list.entry(host: "[::1]", port: 8080)?.pattern.description == "[::1]:8080")
        #expect(list.entry(host: "::1", port: 8080)?.pattern.description == "[::1]:8080")
        #expect(list.entry(host: "[0:0:0:0:0:0:0:1]", port: 8080)?.pattern.description == "[::1]:8080")
        #expect(list.entry(host: "10.0.0.5", port: 443)?.source == "test")
        #expect(list.entry(host: "registry.example.org", port: 8443) == nil)
        #expect(list.entry(host: "a.example.net", port: 443) == nil)
        #expect(list.entry(host: "[::1]", port: 8081) == nil)
        #expect(list.entry(host: "evil.test", port: 443) == nil)
        #expect(NetworkAllowlist().entry(host: "example.org", port: 443) == nil)
    }

    @Test func canonicalForm() {
        #expect(NetworkAllowlist.canonical("Example.ORG.") == "example.org")
        #expect(NetworkAllowlist.canonical("[::1]") == "::1")
        #expect(NetworkAllowlist.canonical("[2001:DB8:0::1]") == "2001:db8::1")
        #expect(NetworkAllowlist.canonical("10.0.0.1") == "10.0.0.1")
        #expect(NetworkAllowlist.canonical("example.org") == "example.org")
    }

    @Test func entryReturnsTheFirstMatchWithItsSource() {
        var list = NetworkAllowlist()
        list.add(HostPattern(host: .suffix("example.org"), port: nil), source: "profile strict")
        list.add(HostPattern(host: .name("a.example.org"), port: nil), source: "--allow-host")
        #expect(list.entry(host: "a.example.org", port: 443)?.source == "profile strict")
    }

    @Test func restrictedAddressesOnlyByLiteralEntryAndPort() throws {
        let list = try allowlist("127.0.0.1:8080", "10.0.0.5", "[::1]:9000", "localhost", "*.internal.example", "registry.test:8080")
        #expect(list.allowsRestricted(ip("127.0.0.1"), port: 8080))
        #expect(!list.allowsRestricted(ip("127.0.0.1"), port: 8081))
        #expect(!list.allowsRestricted(ip("127.0.0.1"), port: 80))
        #expect(!list.allowsRestricted(ip("127.0.0.2"), port: 8080))
        #expect(list.allowsRestricted(ip("10.0.0.5"), port: 80))
        #expect(list.allowsRestricted(ip("10.0.0.5"), port: 443))
        #expect(!list.allowsRestricted(ip("10.0.0.5"), port: 8080))
        #expect(list.allowsRestricted(ip("::1"), port: 9000))
        #expect(!list.allowsRestricted(ip("::1"), port: 8080))
        // The v4-mapped form of an allowed address is not that address.
        #expect(!list.allowsRestricted(ip("::ffff:127.0.0.1"), port: 8080))
        // Name entries never allow a restricted address.
        let names = try allowlist("localhost", "*.internal.example", "registry.test:8080", "metadata.google.internal")
        for address in ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1"] {
            for port in [80, 443, 8080] { #expect(!names.allowsRestricted(ip(address), port: port)) }
        }
        #expect(!NetworkAllowlist().allowsRestricted(ip("127.0.0.1"), port: 80))
    }

    @Test func addDeduplicates() throws {
        var list = NetworkAllowlist()
        list.add(try pattern("example.org"), source: "profile strict")
        list.add(try pattern("Example.ORG."), source: "--allow-host")
        list.add(try pattern("example.org"), source: "pip")
        #expect(list.entries.count == 1)
        #expect(list.entries.first?.source == "profile strict")
        list.add(try pattern("example.org:8443"), source: "b")
        list.add(try pattern("*.example.org"), source: "c")
        list.add(try pattern("[::1]:8080"), source: "d")
        list.add(try pattern("[0::1]:8080"), source: "e")
        #expect(list.entries.map(\.pattern.description) == ["example.org", "example.org:8443", "*.example.org", "[::1]:8080"])
        #expect(list.entries.map(\.source) == ["profile strict", "b", "c", "d"])
    }

    // MARK: ProxyEndpoint

    @Test func proxyEnvironmentPointsAtTheRelay() {
        #expect(ProxyEndpoint.port == 3128)
        #expect(ProxyEndpoint.url == "http://127.0.0.1:3128")
        #expect(ProxyEndpoint.socketPath == "/run/otk/proxy.sock")
        let env = ProxyEndpoint.environment
        #expect(Set(env.map(\.0)).count == env.count, "no variable is set twice")
        let vars = Dictionary(env, uniquingKeysWith: { first, _ in first })
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            #expect(vars[name] == "http://127.0.0.1:3128", "\(name)")
        }
        #expect(vars["NO_PROXY"] == "")
        #expect(vars["no_proxy"] == "")
    }
}
