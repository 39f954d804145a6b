import Foundation
import OTKModel
import OTKProxy
import Testing

/// The egress proxy's decisions, without I/O.
@Suite("Proxy policy")
struct ProxyPolicyTests {
    private func ip(_ text: String) -> IPAddress {
        guard let a = IPAddress(text) else { fatalError("test address `\(text)` does not parse") }
        return a
    }

    private func policy(_ texts: String...) -> ProxyPolicy {
        var list = NetworkAllowlist()
        for text in texts {
            guard case .success(let p) = HostPattern.parse(text) else { fatalError("test pattern `\(text)` does not parse") }
            list.add(p, source: "test")
        }
        return ProxyPolicy(allowlist: list)
    }

    // MARK: splitAuthority

    @Test(arguments: [
        ("example.org:443", nil as Int?, "example.org", 443),
        ("example.org:8443", 80, "example.org", 8443),
        ("example.org", 80, "example.org", 80),
        ("EXAMPLE.Org:443", nil, "example.org", 443),
        ("Example.ORG.:443", nil, "example.org", 443),
        ("10.0.0.1:80", nil, "10.0.0.1", 80),
        ("10.0.0.1", 80, "10.0.0.1", 80),
        ("[::1]:8443", nil, "::1", 8443),
        ("[::1]", 80, "::1", 80),
        ("[2001:DB8:0::1]:443", nil, "2001:db8::1", 443),
        ("a.b:1", nil, "a.b", 1),
        ("a.b:65535", nil, "a.b", 65535),
        ("my_host.internal:80", nil, "my_host.internal", 80),
    ])
    func splitsAuthorities(text: String, defaultPort: Int?, host: String, port: Int) {
        let split = ProxyPolicy.splitAuthority(text, defaultPort: defaultPort)
        #expect(split?.host == host, "\(text)")
        #expect(split?.port == port, "\(text)")
    }

    @Test(arguments: [
        // CONNECT needs a port.
        ("example.org", nil as Int?),
        ("[::1]", nil),
        ("10.0.0.1", nil),
        // Junk.
        ("", nil), ("", 80), (":443", nil), (":443", 80),
        ("example.org:", nil), ("example.org:abc", nil), ("example.org:0", nil), ("example.org:65536", nil),
        ("example.org:70000", 80), ("example.org:-1", nil),
        ("exa mple.org:443", nil), ("user@example.org:443", nil), ("user:pass@example.org", 80),
        ("example.org/path:443", nil), ("[::1:443", nil), ("[::1]:", nil), ("[::1]x", 80), ("[::1]:abc", nil),
        ("[example.org]:443", nil), ("[]:443", nil), ("a..b:443", nil), ("-a.example.org:443", nil),
        ("*.example.org:443", nil), ("exämple.org:443", nil), ("example.org:443\r\nX: y", nil),
        (String(repeating: "a", count: 300) + ":443", nil),
    ])
    func rejectsBadAuthorities(text: String, defaultPort: Int?) {
        let split = ProxyPolicy.splitAuthority(text, defaultPort: defaultPort)
        #expect(split == nil, "\(text) -> \(String(describing: split))")
    }

    // MARK: vetTarget

    @Test func allowedTargetsReturnTheirEntry() {
        let p = policy("example.org", "*.example.net:8443", "127.0.0.1:8080", "[::1]:9000")
        guard case .success(let entry) = p.vetTarget(host: "example.org", port: 443) else {
            Issue.record("example.org:443 should be allowed")
            return
        }
        #expect(entry.pattern.description == "example.org")
        #expect(entry.source == "test")
        guard case .success(let suffix) = p.vetTarget(host: "a.example.net", port: 8443) else {
            Issue.record("a.example.net:8443 should be allowed")
            return
        }
        #expect(suffix.pattern.description == "*.example.net:8443")
        guard case .success = p.vetTarget(host: "127.0.0.1", port: 8080) else {
            Issue.record("127.0.0.1:8080 should be allowed")
            return
        }
        guard case .success = p.vetTarget(host: "::1", port: 9000) else {
            Issue.record("[::1]:9000 should be allowed")
            return
        }
    }

    @Test func refusedTargetsNameTheAllowlist() {
        let p = policy("example.org", "*.example.net:8443")
        guard case .failure(let refusal) = p.vetTarget(host: "evil.test", port: 443) else {
            Issue.record("evil.test:443 should be refused")
            return
        }
        #expect(refusal.status == 403)
        #expect(refusal.reason.contains("`evil.test:443` is not in the allowlist"), "\(refusal.reason)")
        #expect(refusal.reason.contains("allowed: example.org, *.example.net:8443"), "\(refusal.reason)")

        guard case .failure(let wrongPort) = p.vetTarget(host: "example.org", port: 22) else {
            Issue.record("example.org:22 should be refused")
            return
        }
        #expect(wrongPort.status == 403)
        #expect(wrongPort.reason.contains("`example.org:22`"))

        guard case .failure(let v6) = p.vetTarget(host: "::1", port: 443) else {
            Issue.record("[::1]:443 should be refused")
            return
        }
        #expect(v6.reason.contains("`[::1]:443`"), "\(v6.reason)")
        #expect(p.vetTarget(host: "example.net", port: 8443).isFailure)
    }

    @Test func anEmptyAllowlistSaysSo() {
        guard case .failure(let refusal) = policy().vetTarget(host: "example.org", port: 443) else {
            Issue.record("nothing is allowed by an empty allowlist")
            return
        }
        #expect(refusal.status == 403)
        #expect(refusal.reason.contains("the allowlist is empty"), "\(refusal.reason)")
    }

    // MARK: vetAddresses

    @Test func publicAddressesPass() {
        let p = policy("registry.test")
        let public4 = [ip("93.184.216.34"), ip("2606:4700::1111")]
        #expect(p.vetAddresses(host: "registry.test", port: 443, public4).success == public4)
        // Duplicates are dropped, order kept.
        #expect(p.vetAddresses(host: "registry.test", port: 443, [ip("1.1.1.1"), ip("8.8.8.8"), ip("1.1.1.1")]).success
                == [ip("1.1.1.1"), ip("8.8.8.8")])
    }

    @Test func aNameResolvingOnlyToLoopbackIsRefused() {
        let p = policy("registry.test:8080")
        guard case .failure(let refusal) = p.vetAddresses(host: "registry.test", port: 8080, [ip("127.0.0.1")]) else {
            Issue.record("127.0.0.1 must not be reached through a name")
            return
        }
        #expect(refusal.status == 403)
        #expect(refusal.reason.contains("`registry.test`"), "\(refusal.reason)")
        #expect(refusal.reason.contains("127.0.0.1"), "\(refusal.reason)")
        #expect(refusal.reason.contains("loopback"), "\(refusal.reason)")
        #expect(refusal.reason.contains("literally"), "\(refusal.reason)")
        #expect(refusal.reason.contains("`127.0.0.1:8080`"), "\(refusal.reason)")
    }

    @Test func aLiteralEntryAllowsThatRestrictedAddress() {
        let p = policy("registry.test:8080", "127.0.0.1:8080")
        #expect(p.vetAddresses(host: "registry.test", port: 8080, [ip("127.0.0.1")]).success == [ip("127.0.0.1")])
        // Only for its port, and only that address.
        #expect(p.vetAddresses(host: "registry.test", port: 8081, [ip("127.0.0.1")]).isFailure)
        #expect(p.vetAddresses(host: "registry.test", port: 8080, [ip("127.0.0.2")]).isFailure)
        #expect(p.vetAddresses(host: "registry.test", port: 8080, [ip("::ffff:127.0.0.1")]).isFailure)
        // Of several restricted addresses only the allowed one is kept.
        #expect(p.vetAddresses(host: "registry.test", port: 8080, [ip("10.0.0.1"), ip("127.0.0.1")]).success == [ip("127.0.0.1")])
    }

    @Test func aNameEntryDoesNotAllowRestrictedAddresses() {
        let p = policy("localhost:8080", "*.internal.test")
        #expect(p.vetAddresses(host: "localhost", port: 8080, [ip("127.0.0.1"), ip("::1")]).isFailure)
        #expect(p.vetAddresses(host: "db.internal.test", port: 443, [ip("10.1.2.3")]).isFailure)
    }

    @Test func mixedAddressesKeepOnlyThePublicOnes() {
        let p = policy("registry.test")
        let result = p.vetAddresses(host: "registry.test", port: 443,
                                    [ip("10.0.0.1"), ip("93.184.216.34"), ip("127.0.0.1"), ip("::1"), ip("169.254.169.254")])
        #expect(result.success == [ip("93.184.216.34")])
    }

    @Test func metadataAddressesAreRefused() {
        let p = policy("metadata.test")
        for address in ["169.254.169.254", "fd00:ec2::254", "168.63.129.16", "100.100.100.200", "::ffff:169.254.169.254"] {
            guard case .failure(let refusal) = p.vetAddresses(host: "metadata.test", port: 80, [ip(address)]) else {
                Issue.record("\(address) must be refused")
                continue
            }
            #expect(refusal.status == 403)
            #expect(refusal.reason.contains("metadata"), "\(refusal.reason)")
            #expect(refusal.reason.contains(address), "\(refusal.reason)")
        }
    }

    @Test func restrictedIPv6IsShownBracketedInTheExample() {
        guard case .failure(let refusal) = policy("registry.test").vetAddresses(host: "registry.test", port: 443, [ip("::1")]) else {
            Issue.record("::1 must be refused")
            return
        }
        #expect(refusal.reason.contains("`[::1]:443`"), "\(refusal.reason)")
    }

    @Test func noAddressesAtAll() {
        guard case .failure(let refusal) = policy("registry.test").vetAddresses(host: "registry.test", port: 443, []) else {
            Issue.record("no address is not success")
            return
        }
        #expect(refusal.status == 502)
        #expect(refusal.reason.contains("resolves to no address"))
    }

    // MARK: vetServerName

    @Test func sameServerNamePasses() {
        let p = policy("registry.test")
        #expect(p.vetServerName("registry.test", connectHost: "registry.test") == nil)
        #expect(p.vetServerName("Registry.TEST", connectHost: "registry.test") == nil)
        #expect(p.vetServerName("registry.test.", connectHost: "registry.test") == nil)
        #expect(p.vetServerName("REGISTRY.test.", connectHost: "registry.test") == nil)
    }

    @Test func differentServerNameIsRefused() {
        let p = policy("registry.test")
        let refusal = p.vetServerName("evil.test", connectHost: "registry.test")
        #expect(refusal != nil)
        #expect(refusal?.reason.contains("evil.test") == true, "\(refusal?.reason ?? "")")
        #expect(refusal?.reason.contains("registry.test") == true, "\(refusal?.reason ?? "")")
        #expect(p.vetServerName("a.registry.test", connectHost: "registry.test") != nil)
        #expect(p.vetServerName("registry.test.evil", connectHost: "registry.test") != nil)
        #expect(p.vetServerName("", connectHost: "registry.test") != nil)
    }

    @Test func missingServerName() {
        let p = policy("registry.test")
        let refusal = p.vetServerName(nil, connectHost: "registry.test")
        #expect(refusal != nil)
        #expect(refusal?.reason.contains("SNI") == true)
        #expect(refusal?.reason.contains("registry.test") == true)
        // TLS clients send no name for a literal address.
        #expect(p.vetServerName(nil, connectHost: "93.184.216.34") == nil)
        #expect(p.vetServerName(nil, connectHost: "::1") == nil)
        #expect(p.vetServerName("93.184.216.34", connectHost: "93.184.216.34") == nil)
        // A literal CONNECT host with a name in the ClientHello is a different host.
        #expect(p.vetServerName("evil.test", connectHost: "93.184.216.34") != nil)
    }

    // MARK: records

    @Test func recordsEncodeWithSnakeCaseKeys() throws {
        var r = ProxyRecord(method: "CONNECT", host: "registry.test", port: 443, decision: "allowed")
        r.allowedBy = "registry.test (test)"
        r.bytesSent = 5
        r.bytesReceived = 7
        #expect(r.reason == nil && r.address == nil && r.sni == nil && r.durationMs == 0)
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(r)) as? [String: Any]
        let keys = Set(json?.keys.map { $0 } ?? [])
        for key in ["method", "host", "port", "decision", "allowed_by", "bytes_sent", "bytes_received", "duration_ms"] {
            #expect(keys.contains(key), "\(key) in \(keys)")
        }
        #expect(try JSONDecoder().decode(ProxyRecord.self, from: try JSONEncoder().encode(r)) == r)
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }

    var success: Success? {
        if case .success(let s) = self { return s }
        return nil
    }
}
