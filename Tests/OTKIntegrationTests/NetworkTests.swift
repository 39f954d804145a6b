import Foundation
import Testing

/// Tests/Fixtures/network_services.py running: an echo server, an HTTP server and a DNS responder
/// on the host's 127.0.0.1, with counters of what reached them.
final class NetworkServices {
    let process = Process()
    let stdin = Pipe()
    let stdout = Pipe()
    let ports: [String: Int]

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.repository + "/Tests/Fixtures/network_services.py"]
        process.standardOutput = stdout
        process.standardInput = stdin
        try process.run()
        ports = try #require(try JSONSerialization.jsonObject(with: Self.line(stdout)) as? [String: Int])
    }

    var echo: Int { ports["echo"] ?? 0 }
    var http: Int { ports["http"] ?? 0 }
    var dns: Int { ports["dns"] ?? 0 }

    /// What reached the servers so far.
    func stats() throws -> (echoConnections: Int, httpRequests: [String], dnsQueries: Int) {
        stdin.fileHandleForWriting.write(Data("stats\n".utf8))
        let object = try #require(try JSONSerialization.jsonObject(with: Self.line(stdout)) as? [String: Any])
        return (object["echo_connections"] as? Int ?? -1, object["http_requests"] as? [String] ?? [], object["dns_queries"] as? Int ?? -1)
    }

    private static func line(_ pipe: Pipe) -> Data {
        var line = Data()
        while true {
            let byte = pipe.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { return line }
            line += byte
        }
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// Network modes none, loopback and proxy, checked from inside the sandbox with the probe, and the
/// egress proxy's decisions checked on both sides: what the probe got, and what reached the host.
@Suite(.serialized) struct NetworkTests {
    static let proxy = "127.0.0.1:3128"

    func sandboxed(_ runner: Runner = .invoking, profile: String = "strict", net: String, allow: [String] = [], _ checks: [String]) throws -> (Completed, ProbeReport, [String: Any]) {
        let argv = runner.prefix + [runner.otk, "sandbox", "run", "--profile", profile, "--net", net, "--json"]
            + allow.flatMap { ["--allow-host", $0] }
            + ["--ro-bind", "\(runner.probe):\(Paths.probeInside)", "--", Paths.probeInside] + checks
        let result = try run(argv)
        let lastLine = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let document = (try? JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any]) ?? [:]
        return (result, ProbeReport(result.stdout), document)
    }

    func connections(_ document: [String: Any]) -> [[String: Any]] {
        (document["network"] as? [String: Any])?["connections"] as? [[String: Any]] ?? []
    }

    @Test("proxy: only allowed hosts, only through the proxy, TLS name checked, no DNS", arguments: Runner.available)
    func proxyFromInside(runner: Runner) throws {
        let s = try NetworkServices()
        let checks = [
            "interfaces",
            "tcp=127.0.0.1:\(s.echo)",
            "proxy-connect=\(Self.proxy),localhost:\(s.echo),localhost",
            "proxy-connect=\(Self.proxy),localhost:\(s.echo),evil.example",
            "proxy-connect=\(Self.proxy),example.org:443,example.org",
            "proxy-get=\(Self.proxy),http://localhost:\(s.http)/allowed",
            "proxy-get=\(Self.proxy),http://localhost:\(s.http)/smuggled,evil.example",
            "proxy-get=\(Self.proxy),http://169.254.169.254/latest/meta-data/",
            "resolve=example.org",
            "dns=127.0.0.1:\(s.dns),example.org",
        ]
        let (result, r, document) = try sandboxed(runner, net: "proxy",
                                                   allow: ["localhost:\(s.echo)", "127.0.0.1:\(s.echo)", "localhost:\(s.http)", "127.0.0.1:\(s.http)"], checks)
        #expect(result.status == 0, "otk failed: \(result.stderr)")

        // Nothing but the sandbox's own loopback: the host's listener is not there.
        #expect(r["interfaces"]?["names"] as? [String] == ["lo"], "\(r["interfaces"]?.fields ?? [:])")
        #expect(r["interfaces"]?["up"] as? [String] == ["lo"])
        #expect(r["tcp=127.0.0.1:\(s.echo)"]?.error == "ECONNREFUSED")

        // An allowed CONNECT with the matching server name: the ClientHello went to the echo server and came back.
        let tunnel = try #require(r["proxy-connect=\(Self.proxy),localhost:\(s.echo),localhost"])
        #expect(tunnel["status"] as? Int == 200, "\(tunnel.fields)")
        #expect(tunnel["first_byte"] as? Int == 0x16, "\(tunnel.fields)")
        #expect(tunnel["received"] as? Int == tunnel["sent"] as? Int, "\(tunnel.fields)")

        // The same host, another TLS name: refused after the 200, with an alert, nothing echoed.
        let fronted = try #require(r["proxy-connect=\(Self.proxy),localhost:\(s.echo),evil.example"])
        #expect(fronted["status"] as? Int == 200)
        #expect(fronted["first_byte"] as? Int != 0x16, "the mismatched ClientHello reached the upstream: \(fronted.fields)")

        let unknown = try #require(r["proxy-connect=\(Self.proxy),example.org:443,example.org"])
        #expect(unknown["status"] as? Int == 403, "\(unknown.fields)")
        #expect((unknown["body"] as? String ?? "").contains("not in the allowlist"), "\(unknown.fields)")

        let get = try #require(r["proxy-get=\(Self.proxy),http://localhost:\(s.http)/allowed"])
        #expect(get.ok, "\(get.fields)")
        #expect((get["body"] as? String ?? "").contains("hello from upstream"))
        let smuggled = try #require(r["proxy-get=\(Self.proxy),http://localhost:\(s.http)/smuggled,evil.example"])
        #expect(smuggled["status"] as? Int == 403, "\(smuggled.fields)")
        let metadata = try #require(r["proxy-get=\(Self.proxy),http://169.254.169.254/latest/meta-data/"])
        #expect(metadata["status"] as? Int == 403, "\(metadata.fields)")

        // No DNS inside: no resolver configuration, and no route to one on the host.
        #expect(r["resolve=example.org"]?.ok == false)
        #expect(r["dns=127.0.0.1:\(s.dns),example.org"]?.ok == false)

        // What reached the host: one tunnel (the matching one) and one request, sent with Connection: close.
        let stats = try s.stats()
        #expect(stats.echoConnections == 1, "only the tunnel with the right server name reached the upstream")
        #expect(stats.httpRequests.count == 1, "\(stats.httpRequests)")
        #expect(stats.httpRequests.first?.hasPrefix("GET /allowed HTTP/1.1") == true, "\(stats.httpRequests)")
        #expect(stats.httpRequests.first?.lowercased().contains("connection: close") == true)
        #expect(stats.dnsQueries == 0)

        // Every decision is in the result, with its reason.
        let records = connections(document)
        func record(_ host: String, _ port: Int, _ decision: String) -> [String: Any]? {
            records.first { $0["host"] as? String == host && $0["port"] as? Int == port && $0["decision"] as? String == decision }
        }
        let allowedTunnel = try #require(record("localhost", s.echo, "allowed"), "\(records)")
        #expect(allowedTunnel["sni"] as? String == "localhost")
        #expect(allowedTunnel["address"] as? String == "127.0.0.1")
        #expect(allowedTunnel["bytes_sent"] as? Int == tunnel["sent"] as? Int)
        let sni = try #require(records.first { $0["sni"] as? String == "evil.example" }, "\(records)")
        #expect(sni["decision"] as? String == "refused")
        #expect((sni["reason"] as? String ?? "").contains("differs"), "\(sni)")
        #expect(record("example.org", 443, "refused") != nil, "\(records)")
        #expect(record("169.254.169.254", 80, "refused") != nil, "\(records)")
        #expect(records.contains { ($0["reason"] as? String ?? "").contains("Host header") }, "\(records)")
        #expect(result.stderr.contains("network: refused CONNECT example.org:443"), "\(result.stderr)")
    }

    @Test func anAllowedNameThatResolvesToLoopbackIsRefusedUnlessTheAddressIsAllowed() throws {
        let s = try NetworkServices()
        let check = "proxy-connect=\(Self.proxy),localhost:\(s.echo),localhost"
        let (result, r, document) = try sandboxed(net: "proxy", allow: ["localhost:\(s.echo)"], [check])
        #expect(result.status == 0, "otk failed: \(result.stderr)")
        #expect(r[check]?["status"] as? Int == 403, "\(r[check]?.fields ?? [:])")
        #expect((r[check]?["body"] as? String ?? "").contains("127.0.0.1"), "\(r[check]?.fields ?? [:])")
        let refused = try #require(connections(document).first, "\(document)")
        #expect((refused["reason"] as? String ?? "").contains("loopback"), "\(refused)")
        #expect(try s.stats().echoConnections == 0)
    }

    @Test("none: no interface up, so not even the proxy's port; no DNS")
    func noneFromInside() throws {
        let s = try NetworkServices()
        let checks = ["interfaces", "tcp=127.0.0.1:\(s.echo)", "proxy-connect=\(Self.proxy),localhost:\(s.echo),localhost",
                      "proxy-get=\(Self.proxy),http://localhost:\(s.http)/x", "resolve=example.org", "dns=127.0.0.1:\(s.dns),example.org"]
        let (result, r, document) = try sandboxed(net: "none", checks)
        #expect(result.status == 0, "otk failed: \(result.stderr)")
        #expect(r["interfaces"]?["names"] as? [String] == ["lo"])
        #expect(r["interfaces"]?["up"] as? [String] == [])
        for check in checks.dropFirst() { #expect(r[check]?.ok == false, "\(check): \(r[check]?.fields ?? [:])") }
        #expect(document["network"] == nil, "no proxy ran in mode none")
        let stats = try s.stats()
        #expect(stats.echoConnections == 0 && stats.httpRequests.isEmpty && stats.dnsQueries == 0)
    }

    @Test func loopbackHasNoProxy() throws {
        let s = try NetworkServices()
        let check = "proxy-connect=\(Self.proxy),localhost:\(s.echo),localhost"
        let (result, r, _) = try sandboxed(profile: "standard", net: "loopback", [check])
        #expect(result.status == 0, "otk failed: \(result.stderr)")
        #expect(r[check]?.error == "ECONNREFUSED", "\(r[check]?.fields ?? [:])")
    }

    @Test func allowHostNeedsTheProxyAndAValidPattern() throws {
        let loopback = try run([Paths.otk, "sandbox", "run", "--net", "loopback", "--allow-host", "example.org", "--", "/bin/true"])
        #expect(loopback.status == 2, "\(loopback.stderr)")
        #expect(loopback.stderr.contains("--net proxy"), "\(loopback.stderr)")
        let bad = try run([Paths.otk, "sandbox", "run", "--net", "proxy", "--allow-host", "*.org", "--", "/bin/true"])
        #expect(bad.status == 2, "\(bad.stderr)")
        #expect(bad.stderr.contains("top-level domain"), "\(bad.stderr)")
        let host = try run([Paths.otk, "sandbox", "run", "--net", "host", "--", "/bin/true"])
        #expect(host.status == 2, "\(host.stderr)")
    }
}
