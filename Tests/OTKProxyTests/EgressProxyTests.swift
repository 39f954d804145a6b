import Foundation
#if canImport(Glibc)
import Glibc
#endif
import OTKModel
import OTKProxy
import Testing

/// The egress proxy end to end: a real unix socket in front, real TCP servers on 127.0.0.1 behind.
/// Only name resolution is faked.
@Suite("Egress proxy")
struct EgressProxyTests {
    // MARK: a. CONNECT with the right server name

    @Test func connectTunnelCarriesTLSToTheNamedHost() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let hello = TLS.clientHello(serverName: "registry.test")
        try Scenario.tunnelEchoes(fixture, target: "registry.test:\(echo.port)", hello: hello)
        #expect(echo.accepted == 1)
        #expect(echo.received == [hello])

        let (records, dropped) = fixture.stop()
        stopped = true
        #expect(dropped == 0)
        try #require(records.count == 1, "\(records)")
        let r = records[0]
        #expect(r.method == "CONNECT")
        #expect(r.host == "registry.test")
        #expect(r.port == echo.port)
        #expect(r.decision == "allowed")
        #expect(r.sni == "registry.test")
        #expect(r.address == "127.0.0.1")
        #expect(r.reason == nil, "\(r.reason ?? "")")
        #expect(r.allowedBy?.contains("registry.test:\(echo.port)") == true, "\(r.allowedBy ?? "nil")")
        #expect(r.allowedBy?.contains("test") == true)
        #expect(r.bytesSent == UInt64(hello.count))
        #expect(r.bytesReceived == UInt64(hello.count))
        #expect(r.durationMs >= 0)
    }

    /// A client that sends its ClientHello right behind the CONNECT head, before the 200.
    @Test func clientHelloSentWithTheConnectHeadIsNotLost() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        defer { _ = fixture.stop() }
        let hello = TLS.clientHello(serverName: "registry.test")
        let client = try fixture.connect()
        defer { client.close() }
        let head = "CONNECT registry.test:\(echo.port) HTTP/1.1\r\nHost: registry.test:\(echo.port)\r\n\r\n"
        try client.send(Array(head.utf8) + hello)
        let established = client.readHead()
        #expect(established.starts(with: Array("HTTP/1.1 200".utf8)), "got \(established.text)")
        let expected = Array(established[established.headEnd...])
        let echoed = expected + client.read(count: hello.count - expected.count)
        #expect(echoed == hello, "echoed \(echoed.count) of \(hello.count) bytes")
        client.shutdownWrite()
        #expect(client.readToEnd().eof)
    }

    /// The literal address of a CONNECT needs no server name: TLS clients send none for addresses.
    @Test func connectToAnAllowedAddressWithoutServerNamePasses() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let fixture = try ProxyFixture(allow: ["127.0.0.1:\(echo.port)"], resolve: [:])
        defer { _ = fixture.stop() }
        let hello = TLS.clientHello(serverName: nil)
        try Scenario.tunnelEchoes(fixture, target: "127.0.0.1:\(echo.port)", hello: hello)
        #expect(echo.accepted == 1)
    }

    @Test func serverNameIsComparedWithoutCaseOrTrailingDot() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }
        try Scenario.tunnelEchoes(fixture, target: "Registry.TEST:\(echo.port)", hello: TLS.clientHello(serverName: "REGISTRY.test."))
        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1)
        #expect(records[0].host == "registry.test")
        #expect(records[0].sni == "registry.test")
        #expect(records[0].decision == "allowed")
    }

    /// The policy allowed the tunnel; the upstream host refused the connection. Plain HTTP records
    /// such a failure as `allowed` with a reason (see anAllowedUpstreamThatRefusesIs502); CONNECT should too.
    @Test func connectTunnelToAnUpstreamThatRefusesIsRecordedAsAFailedAllowedConnection() throws {
        let closed = try TestServer(.echo)
        closed.stop()
        let fixture = try ProxyFixture(allow: ["registry.test:\(closed.port)", "127.0.0.1:\(closed.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let client = try fixture.connect()
        defer { client.close() }
        try client.send("CONNECT registry.test:\(closed.port) HTTP/1.1\r\nHost: registry.test:\(closed.port)\r\n\r\n")
        let established = client.readHead()
        try #require(established.starts(with: Array("HTTP/1.1 200".utf8)), "\(established.text)")
        try? client.send(TLS.clientHello(serverName: "registry.test"))
        let answer = client.readToEnd()
        #expect(answer.eof && answer.bytes.isEmpty, "\(answer.bytes)")

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1)
        let r = records[0]
        #expect(r.sni == "registry.test")
        #expect(r.reason?.contains("cannot connect") == true, "\(r.reason ?? "nil")")
        #expect(r.decision == "allowed", "decision `\(r.decision)` for a tunnel the policy allowed but the host refused (reason: \(r.reason ?? "nil"))")
        #expect(r.allowedBy?.contains("registry.test:\(closed.port)") == true)
        #expect(r.bytesSent == 0, "bytes_sent \(r.bytesSent) although no upstream connection was made")
    }

    // MARK: b. CONNECT with another server name

    @Test func connectTunnelWithAnotherServerNameIsRefused() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let hello = TLS.clientHello(serverName: "evil.test")
        try Scenario.tunnelRefusesServerName(fixture, target: "registry.test:\(echo.port)", hello: hello)
        #expect(echo.accepted == 0)

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1, "\(records)")
        let r = records[0]
        #expect(r.method == "CONNECT" && r.host == "registry.test" && r.port == echo.port)
        #expect(r.decision == "refused")
        #expect(r.sni == "evil.test")
        #expect(r.address == nil)
        #expect(r.reason?.contains("evil.test") == true, "\(r.reason ?? "nil")")
        #expect(r.reason?.contains("registry.test") == true, "\(r.reason ?? "nil")")
        // Nothing reached an upstream host: the tunnel never connected.
        #expect(r.bytesSent == 0, "bytes_sent \(r.bytesSent) although no upstream connection was made (ClientHello: \(hello.count) bytes)")
        #expect(r.bytesReceived == 0)
        #expect(echo.accepted == 0)
    }

    @Test func connectTunnelWithoutServerNameOrTLSIsRefusedForAName() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        // A ClientHello without SNI, then something that is not TLS at all.
        try Scenario.tunnelRefusesServerName(fixture, target: "registry.test:\(echo.port)", hello: TLS.clientHello(serverName: nil))
        try Scenario.tunnelRefusesServerName(fixture, target: "registry.test:\(echo.port)",
                                             hello: Array("SSH-2.0-OpenSSH_9.6\r\n".utf8))
        #expect(echo.accepted == 0)

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 2, "\(records)")
        for r in records {
            #expect(r.decision == "refused")
            #expect(r.sni == nil)
            #expect(r.reason?.contains("SNI") == true, "\(r.reason ?? "nil")")
            #expect(r.bytesSent == 0, "bytes_sent \(r.bytesSent) although no upstream connection was made")
            #expect(r.address == nil)
        }
    }

    // MARK: c. CONNECT to a host that is not allowed

    @Test func connectToAHostNotAllowedIs403() throws {
        let fixture = try ProxyFixture(allow: ["registry.test"], resolve: ["evil.test": ["93.184.216.34"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let response = try Scenario.connect(fixture, target: "evil.test:443")
        #expect(response.status == 403, "\(response.text)")
        #expect(response.body.contains("evil.test:443"), "\(response.body)")
        #expect(response.body.contains("not in the allowlist"), "\(response.body)")
        #expect(response.body.contains("registry.test"), "\(response.body)")
        #expect(response.eof)

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1, "\(records)")
        #expect(records[0].method == "CONNECT" && records[0].host == "evil.test" && records[0].port == 443)
        #expect(records[0].decision == "refused")
        #expect(records[0].reason?.contains("not in the allowlist") == true)
        #expect(records[0].address == nil)
    }

    // MARK: d. an allowed name resolving to a restricted address

    @Test func allowedNameResolvingToLoopbackIs403() throws {
        let victim = try TestServer(.echo)
        defer { victim.stop() }
        let fixture = try ProxyFixture(allow: ["internal.test:\(victim.port)", "metadata.test"],
                                       resolve: ["internal.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let loopback = try Scenario.connect(fixture, target: "internal.test:\(victim.port)")
        #expect(loopback.status == 403, "\(loopback.text)")
        #expect(loopback.body.contains("127.0.0.1"), "\(loopback.body)")
        #expect(loopback.body.contains("loopback"), "\(loopback.body)")
        #expect(loopback.body.contains("`127.0.0.1:\(victim.port)`"), "\(loopback.body)")
        #expect(victim.accepted == 0)

        let metadata = try Scenario.connect(fixture, target: "metadata.test:80")
        #expect(metadata.status == 403, "\(metadata.text)")
        #expect(metadata.body.contains("169.254.169.254"), "\(metadata.body)")
        #expect(metadata.body.contains("metadata"), "\(metadata.body)")

        let plain = try Scenario.request(fixture, "GET http://metadata.test/latest/meta-data/ HTTP/1.1\r\nHost: metadata.test\r\n\r\n")
        #expect(plain.status == 403, "\(plain.text)")
        #expect(plain.body.contains("metadata"), "\(plain.body)")

        let (records, _) = fixture.stop()
        stopped = true
        #expect(victim.accepted == 0)
        try #require(records.count == 3, "\(records)")
        #expect(records.map(\.host) == ["internal.test", "metadata.test", "metadata.test"])
        #expect(records.map(\.method) == ["CONNECT", "CONNECT", "GET"])
        #expect(records.allSatisfy { $0.decision == "refused" && $0.address == nil })
        #expect(records[0].reason?.contains("loopback") == true)
        #expect(records[1].reason?.contains("metadata") == true)
    }

    // MARK: e. plain HTTP

    @Test func plainHTTPGoesUpstreamInOriginFormWithConnectionClose() throws {
        let http = try TestServer(.http(body: "hello from upstream\n"))
        defer { http.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(http.port)", "127.0.0.1:\(http.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let response = try Scenario.request(fixture, "GET http://registry.test:\(http.port)/x?y=1 HTTP/1.1\r\n"
                                            + "Host: registry.test:\(http.port)\r\nUser-Agent: otk-test\r\n"
                                            + "Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\r\n")
        #expect(response.status == 200, "\(response.text)")
        #expect(response.body == "hello from upstream\n")
        #expect(response.eof)

        try #require(http.requests.count == 1)
        let upstream = http.requests[0]
        let lines = upstream.head.components(separatedBy: "\r\n")
        #expect(lines.first == "GET /x?y=1 HTTP/1.1", "\(upstream.head)")
        let headers = lines.dropFirst().filter { !$0.isEmpty }.map { $0.lowercased() }
        #expect(headers.contains("connection: close"), "\(upstream.head)")
        #expect(headers.filter { $0.hasPrefix("connection:") }.count == 1, "\(upstream.head)")
        #expect(!headers.contains { $0.hasPrefix("proxy-connection:") }, "\(upstream.head)")
        #expect(!headers.contains { $0.hasPrefix("x-hop:") }, "\(upstream.head)")
        #expect(headers.contains("host: registry.test:\(http.port)"), "\(upstream.head)")
        #expect(headers.contains("user-agent: otk-test"), "\(upstream.head)")

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1, "\(records)")
        let r = records[0]
        #expect(r.method == "GET" && r.host == "registry.test" && r.port == http.port)
        #expect(r.decision == "allowed")
        #expect(r.address == "127.0.0.1")
        #expect(r.sni == nil)
        #expect(r.allowedBy?.contains("registry.test:\(http.port)") == true)
        #expect(r.bytesSent == 0)
        #expect(r.bytesReceived == UInt64(response.raw.count), "\(r.bytesReceived) vs \(response.raw.count)")
    }

    @Test func plainHTTPBodyIsForwardedAndCounted() throws {
        let http = try TestServer(.http(body: "stored\n"))
        defer { http.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(http.port)", "127.0.0.1:\(http.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let payload = "name=otk&value=" + String(repeating: "z", count: 3000)
        let response = try Scenario.request(fixture, "POST http://registry.test:\(http.port)/upload HTTP/1.1\r\n"
                                            + "Host: registry.test:\(http.port)\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                            + "Content-Length: \(payload.utf8.count)\r\n\r\n\(payload)")
        #expect(response.status == 200, "\(response.text)")
        #expect(response.body == "stored\n")
        try #require(http.requests.count == 1)
        #expect(http.requests[0].head.hasPrefix("POST /upload HTTP/1.1\r\n"), "\(http.requests[0].head)")
        #expect(http.requests[0].body == Array(payload.utf8))

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1)
        #expect(records[0].decision == "allowed")
        #expect(records[0].bytesSent == UInt64(payload.utf8.count))
        #expect(records[0].bytesReceived == UInt64(response.raw.count))
    }

    @Test func plainHTTPWithAnotherHostHeaderIs403() throws {
        let http = try TestServer(.http(body: "secret\n"))
        defer { http.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(http.port)", "127.0.0.1:\(http.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let response = try Scenario.request(fixture, "GET http://registry.test:\(http.port)/x HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        #expect(response.status == 403, "\(response.text)")
        #expect(response.body.contains("evil.test"), "\(response.body)")
        #expect(!response.body.contains("secret"))
        #expect(http.accepted == 0)

        // Two Host headers are refused too.
        let twice = try Scenario.request(fixture, "GET http://registry.test:\(http.port)/x HTTP/1.1\r\n"
                                         + "Host: registry.test:\(http.port)\r\nHost: evil.test\r\n\r\n")
        #expect(twice.status == 400 || twice.status == 403, "\(twice.text)")
        #expect(http.accepted == 0)

        let (records, _) = fixture.stop()
        stopped = true
        #expect(http.accepted == 0)
        try #require(records.count == 2, "\(records)")
        #expect(records.allSatisfy { $0.decision == "refused" && $0.method == "GET" && $0.host == "registry.test" })
        #expect(records[0].reason?.contains("Host header") == true, "\(records[0].reason ?? "nil")")
    }

    @Test func requestsTheProxyDoesNotServeAre400() throws {
        let http = try TestServer(.http(body: "nope\n"))
        defer { http.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(http.port)", "registry.test", "127.0.0.1:\(http.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let https = try Scenario.request(fixture, "GET https://registry.test/x HTTP/1.1\r\nHost: registry.test\r\n\r\n")
        #expect(https.status == 400, "\(https.text)")
        #expect(https.body.contains("CONNECT"), "\(https.body)")

        let origin = try Scenario.request(fixture, "GET /x HTTP/1.1\r\nHost: registry.test:\(http.port)\r\n\r\n")
        #expect(origin.status == 400, "\(origin.text)")
        #expect(origin.body.contains("absolute form"), "\(origin.body)")

        let garbage = try Scenario.request(fixture, TLS.clientHello(serverName: "registry.test"))
        #expect(garbage.status == 400, "\(garbage.text)")

        let noPort = try Scenario.connect(fixture, target: "registry.test")
        #expect(noPort.status == 400, "\(noPort.text)")

        let userinfo = try Scenario.request(fixture, "GET http://user@registry.test:\(http.port)/ HTTP/1.1\r\nHost: registry.test:\(http.port)\r\n\r\n")
        #expect(userinfo.status == 400, "\(userinfo.text)")

        #expect(http.accepted == 0)
        let (records, _) = fixture.stop()
        stopped = true
        #expect(records.count == 5, "\(records)")
        #expect(records.allSatisfy { $0.decision == "refused" })
        #expect(records.map(\.method) == ["GET", "GET", "?", "CONNECT", "GET"])
    }

    // MARK: f. a name that does not resolve

    @Test func aNameThatDoesNotResolveIs502() throws {
        let fixture = try ProxyFixture(allow: ["unknown.test:443", "unknown.test"], resolve: [:])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let response = try Scenario.connect(fixture, target: "unknown.test:443")
        #expect(response.status == 502, "\(response.text)")
        #expect(response.body.contains("cannot resolve"), "\(response.body)")
        #expect(response.body.contains("unknown.test"), "\(response.body)")

        let plain = try Scenario.request(fixture, "GET http://unknown.test/ HTTP/1.1\r\nHost: unknown.test\r\n\r\n")
        #expect(plain.status == 502, "\(plain.text)")

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 2)
        #expect(records.allSatisfy { $0.decision == "refused" && $0.reason?.contains("cannot resolve") == true })
    }

    @Test func anAllowedUpstreamThatRefusesIs502() throws {
        // A port nobody listens on: bind one, learn it, close it.
        let closed = try TestServer(.echo)
        closed.stop()
        let fixture = try ProxyFixture(allow: ["registry.test:\(closed.port)", "127.0.0.1:\(closed.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let response = try Scenario.request(fixture, "GET http://registry.test:\(closed.port)/ HTTP/1.1\r\nHost: registry.test:\(closed.port)\r\n\r\n")
        #expect(response.status == 502, "\(response.text)")
        #expect(response.body.contains("cannot connect"), "\(response.body)")

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1)
        #expect(records[0].reason?.contains("cannot connect") == true)
    }

    // MARK: g. the record of a session

    @Test func recordsListEveryConnectionOnceInOrder() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let http = try TestServer(.http(body: "ok\n"))
        defer { http.stop() }
        let victim = try TestServer(.echo)
        defer { victim.stop() }
        let fixture = try ProxyFixture(
            allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)", "registry.test:\(http.port)", "127.0.0.1:\(http.port)",
                    "internal.test:\(victim.port)", "metadata.test", "unknown.test"],
            resolve: ["registry.test": ["127.0.0.1"], "internal.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"],
                      "evil.test": ["127.0.0.1"]])
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let hello = TLS.clientHello(serverName: "registry.test")
        try Scenario.tunnelEchoes(fixture, target: "registry.test:\(echo.port)", hello: hello)                            // 1
        try Scenario.tunnelRefusesServerName(fixture, target: "registry.test:\(echo.port)",
                                             hello: TLS.clientHello(serverName: "evil.test"))                             // 2
        #expect(try Scenario.connect(fixture, target: "evil.test:443").status == 403)                                    // 3
        #expect(try Scenario.connect(fixture, target: "internal.test:\(victim.port)").status == 403)                     // 4
        #expect(try Scenario.connect(fixture, target: "metadata.test:80").status == 403)                                 // 5
        #expect(try Scenario.request(fixture, "GET http://registry.test:\(http.port)/x HTTP/1.1\r\n"
                                     + "Host: registry.test:\(http.port)\r\n\r\n").status == 200)                         // 6
        #expect(try Scenario.request(fixture, "GET http://registry.test:\(http.port)/x HTTP/1.1\r\nHost: evil.test\r\n\r\n")
            .status == 403)                                                                                                // 7
        #expect(try Scenario.request(fixture, "GET https://registry.test/ HTTP/1.1\r\nHost: registry.test\r\n\r\n").status == 400) // 8
        #expect(try Scenario.request(fixture, Array("\u{1}\u{2}\u{3} garbage\r\n\r\n".utf8)).status == 400)             // 9
        #expect(try Scenario.connect(fixture, target: "unknown.test:443").status == 502)                                 // 10

        let (records, dropped) = fixture.stop()
        stopped = true
        #expect(dropped == 0)
        let summary = records.map { "\($0.method) \($0.host):\($0.port) \($0.decision)" }
        #expect(summary == [
            "CONNECT registry.test:\(echo.port) allowed",
            "CONNECT registry.test:\(echo.port) refused",
            "CONNECT evil.test:443 refused",
            "CONNECT internal.test:\(victim.port) refused",
            "CONNECT metadata.test:80 refused",
            "GET registry.test:\(http.port) allowed",
            "GET registry.test:\(http.port) refused",
            "GET :0 refused",
            "? :0 refused",
            "CONNECT unknown.test:443 refused",
        ], "\(summary.joined(separator: "\n"))")
        guard records.count == 10 else { return }
        #expect(records[0].sni == "registry.test" && records[0].bytesSent == UInt64(hello.count)
                && records[0].bytesReceived == UInt64(hello.count))
        #expect(records[1].sni == "evil.test")
        #expect(records[2].reason?.contains("not in the allowlist") == true)
        #expect(records[3].reason?.contains("loopback") == true)
        #expect(records[4].reason?.contains("metadata") == true)
        #expect(records[5].address == "127.0.0.1" && records[5].bytesReceived > 0)
        #expect(records[6].reason?.contains("Host header") == true)
        #expect(records[7].reason?.contains("CONNECT") == true)
        #expect(records[8].reason?.contains("not an HTTP request") == true)
        #expect(records[9].reason?.contains("cannot resolve") == true)
        #expect(records.allSatisfy { $0.decision == "allowed" ? $0.reason == nil : $0.reason != nil })
        #expect(echo.accepted == 1)
        #expect(http.accepted == 1)
        #expect(victim.accepted == 0)
    }

    // MARK: resources

    /// Finished connections give their slot back: with room for two at once, many in a row all pass.
    @Test func finishedConnectionsReleaseTheirSlot() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let http = try TestServer(.http(body: "ok\n"))
        defer { http.stop() }
        var options = EgressProxy.Options()
        options.maxConnections = 2
        let fixture = try ProxyFixture(allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)",
                                               "registry.test:\(http.port)", "127.0.0.1:\(http.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]], options: options)
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let hello = TLS.clientHello(serverName: "registry.test")
        var statuses: [String] = []
        for round in 0..<3 {
            try Scenario.tunnelEchoes(fixture, target: "registry.test:\(echo.port)", hello: hello)
            Thread.sleep(forTimeInterval: 0.2)
            let get = try Scenario.request(fixture, "GET http://registry.test:\(http.port)/\(round) HTTP/1.1\r\n"
                                           + "Host: registry.test:\(http.port)\r\n\r\n")
            statuses.append("GET \(get.status)")
            Thread.sleep(forTimeInterval: 0.2)
            let refused = try Scenario.connect(fixture, target: "evil.test:443")
            statuses.append("CONNECT \(refused.status)")
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(statuses == ["GET 200", "CONNECT 403", "GET 200", "CONNECT 403", "GET 200", "CONNECT 403"])

        let (records, _) = fixture.stop()
        stopped = true
        let busy = records.filter { $0.reason?.contains("connections at once") == true }
        #expect(busy.isEmpty, "refused as busy: \(busy.count) of \(records.count)")
        #expect(records.count == 9)
    }

    /// Past the limit of connections at once a connection is closed at once, and recorded.
    @Test func connectionsPastTheLimitAreRefusedAndRecorded() throws {
        var options = EgressProxy.Options()
        options.maxConnections = 1
        let fixture = try ProxyFixture(allow: ["registry.test"], resolve: [:], options: options)
        var stopped = false
        defer { if !stopped { _ = fixture.stop() } }

        let idle = try fixture.connect()
        defer { idle.close() }
        Thread.sleep(forTimeInterval: 0.2)
        // Closed before it says anything (a client that had sent its request would see a reset).
        let second = try fixture.connect()
        defer { second.close() }
        let answer = second.readToEnd()
        #expect(answer.eof, "closed at once, not left waiting")
        #expect(answer.bytes.isEmpty, "\(answer.bytes)")
        idle.close()

        let (records, _) = fixture.stop()
        stopped = true
        try #require(records.count == 1, "\(records)")
        #expect(records[0].decision == "refused")
        #expect(records[0].reason?.contains("more than 1 connections at once") == true, "\(records[0].reason ?? "nil")")
    }

    /// Once the upstream server has closed, the proxy closes its side too (no socket left in CLOSE_WAIT).
    @Test func upstreamSocketsAreClosedAfterTheExchange() throws {
        let echo = try TestServer(.echo)
        defer { echo.stop() }
        let http = try TestServer(.http(body: "ok\n"))
        defer { http.stop() }
        let fixture = try ProxyFixture(allow: ["registry.test:\(echo.port)", "127.0.0.1:\(echo.port)",
                                               "registry.test:\(http.port)", "127.0.0.1:\(http.port)"],
                                       resolve: ["registry.test": ["127.0.0.1"]])
        defer { _ = fixture.stop() }

        try Scenario.tunnelEchoes(fixture, target: "registry.test:\(echo.port)", hello: TLS.clientHello(serverName: "registry.test"))
        let get = try Scenario.request(fixture, "GET http://registry.test:\(http.port)/ HTTP/1.1\r\nHost: registry.test:\(http.port)\r\n\r\n")
        #expect(get.status == 200)

        guard let tunnelLeft = TCPTable.socketsLingering(towardsPort: echo.port),
              let httpLeft = TCPTable.socketsLingering(towardsPort: http.port) else { return }  // no /proc/net/tcp
        #expect(tunnelLeft.isEmpty, "tunnel sockets towards the echo server still open: \(tunnelLeft)")
        #expect(httpLeft.isEmpty, "plain-HTTP sockets towards the upstream still open: \(httpLeft)")
    }

    // MARK: the ClientHello the tests send

    @Test func clientHelloIsWellFormed() {
        let hello = TLS.clientHello(serverName: "registry.test")
        #expect(hello[0] == 0x16 && hello[1] == 0x03 && hello[2] == 0x01)
        let recordLength = Int(hello[3]) << 8 | Int(hello[4])
        #expect(recordLength == hello.count - 5)
        #expect(hello[5] == 0x01)
        let handshakeLength = Int(hello[6]) << 16 | Int(hello[7]) << 8 | Int(hello[8])
        #expect(handshakeLength == hello.count - 9)
        #expect(hello.suffix(13) == ArraySlice("registry.test".utf8))
    }
}

// MARK: - scenarios shared by the tests

enum Scenario {
    /// CONNECT, 200, a ClientHello that comes back from the echo server, half-close, end.
    static func tunnelEchoes(_ fixture: ProxyFixture, target: String, hello: [UInt8],
                             sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let client = try fixture.connect()
        defer { client.close() }
        try client.send("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\nUser-Agent: otk-test\r\n\r\n")
        let established = client.readHead()
        try #require(established.starts(with: Array("HTTP/1.1 200".utf8)), "CONNECT \(target): \(established.text)",
                     sourceLocation: sourceLocation)
        #expect(established.headEnd == established.count, "nothing after the 200's head", sourceLocation: sourceLocation)
        try client.send(hello)
        let echoed = client.read(count: hello.count)
        #expect(echoed == hello, "echoed \(echoed.count) of \(hello.count) bytes", sourceLocation: sourceLocation)
        client.shutdownWrite()
        let rest = client.readToEnd()
        #expect(rest.bytes.isEmpty && rest.eof, "after the half-close: \(rest.bytes.count) bytes, eof \(rest.eof)",
                sourceLocation: sourceLocation)
    }

    /// CONNECT, 200, a ClientHello the proxy refuses: a TLS alert or nothing, then the end.
    static func tunnelRefusesServerName(_ fixture: ProxyFixture, target: String, hello: [UInt8],
                                        sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let client = try fixture.connect()
        defer { client.close() }
        try client.send("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n\r\n")
        let established = client.readHead()
        try #require(established.starts(with: Array("HTTP/1.1 200".utf8)), "CONNECT \(target): \(established.text)",
                     sourceLocation: sourceLocation)
        try? client.send(hello)
        let answer = client.readToEnd()
        #expect(answer.eof, "the proxy closes the tunnel", sourceLocation: sourceLocation)
        #expect(answer.bytes != hello, "the ClientHello must not come back", sourceLocation: sourceLocation)
        #expect(answer.bytes.isEmpty || answer.bytes.first == 0x15, "a TLS alert or nothing, got \(answer.bytes)",
                sourceLocation: sourceLocation)
        if !answer.bytes.isEmpty {
            #expect(answer.bytes == [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31], "access_denied alert", sourceLocation: sourceLocation)
        }
    }

    /// A CONNECT the proxy answers with an error.
    static func connect(_ fixture: ProxyFixture, target: String) throws -> HTTPResponse {
        try request(fixture, "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n\r\n")
    }

    static func request(_ fixture: ProxyFixture, _ text: String) throws -> HTTPResponse {
        try request(fixture, Array(text.utf8))
    }

    /// Sends `bytes` and reads the whole answer, up to the proxy's close.
    static func request(_ fixture: ProxyFixture, _ bytes: [UInt8]) throws -> HTTPResponse {
        let client = try fixture.connect()
        defer { client.close() }
        try client.send(bytes)
        let answer = client.readToEnd()
        return HTTPResponse(raw: answer.bytes, eof: answer.eof)
    }
}

struct HTTPResponse {
    var raw: [UInt8]
    var eof: Bool

    var text: String { String(decoding: raw, as: UTF8.self) }
    var status: Int {
        let first = text.prefix { $0 != "\r" }.split(separator: " ")
        guard first.count >= 2, first[0].hasPrefix("HTTP/1.") else { return -1 }
        return Int(first[1]) ?? -1
    }
    var body: String {
        guard let range = text.range(of: "\r\n\r\n") else { return "" }
        return String(text[range.upperBound...])
    }
}

/// Resolves from a table; any other name does not resolve.
struct FakeResolver: HostResolver {
    var table: [String: [IPAddress]]

    func resolve(_ host: String) throws(ProxyRefusal) -> [IPAddress] {
        // Like SystemResolver: a literal address is itself (the proxy passes literals here too).
        if let literal = IPAddress(host) { return [literal] }
        guard let addresses = table[host] else {
            throw ProxyRefusal(status: 502, reason: "cannot resolve `\(host)`: Name or service not known")
        }
        return addresses
    }
}

/// An EgressProxy on a unix socket in a fresh temporary directory.
final class ProxyFixture {
    let directory: String
    let socketPath: String
    let proxy: EgressProxy
    private var stopped = false

    init(allow: [String], resolve: [String: [String]], options: EgressProxy.Options = EgressProxy.Options()) throws {
        var list = NetworkAllowlist()
        for text in allow {
            guard case .success(let pattern) = HostPattern.parse(text) else { throw TestFailure("bad test pattern `\(text)`") }
            list.add(pattern, source: "test")
        }
        let table = resolve.mapValues { $0.compactMap(IPAddress.init) }
        var template = Array("/tmp/otk-proxy-test.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))") }
        directory = String(cString: made)
        socketPath = directory + "/proxy.sock"
        proxy = EgressProxy(allowlist: list, resolver: FakeResolver(table: table), options: options)
        do {
            try proxy.start(socketPath: socketPath)
        } catch {
            _ = proxy.stop()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    func connect() throws -> UnixClient { try UnixClient(path: socketPath) }

    func stop() -> (records: [ProxyRecord], dropped: Int) {
        guard !stopped else { return ([], 0) }
        stopped = true
        let result = proxy.stop()
        try? FileManager.default.removeItem(atPath: directory)
        return result
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - sockets

enum Socket {
    static let timeoutSeconds = 5

    static func boundReads(_ fd: Int32) {
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Reads until `enough` says so, the end, an error or the timeout.
    static func read(_ fd: Int32, until enough: ([UInt8]) -> Bool) -> (bytes: [UInt8], eof: Bool) {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !enough(out) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                out += buffer[0..<n]
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return (out, n == 0)
            }
        }
        return (out, false)
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}

/// The sandbox's side: a stream connection to the proxy's unix socket.
final class UnixClient {
    let fd: Int32
    private var closed = false

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw TestFailure("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TestFailure("connect \(path): \(why)")
        }
        Socket.boundReads(fd)
    }

    deinit { close() }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        guard Socket.sendAll(fd, bytes) else { throw TestFailure("send: \(String(cString: strerror(errno)))") }
    }

    /// Up to the end of a response head (or what came before the end or the timeout).
    func readHead() -> ReceivedHead {
        let got = Socket.read(fd) { Socket.headEnd($0) != nil }
        return ReceivedHead(bytes: got.bytes, headEnd: Socket.headEnd(got.bytes) ?? got.bytes.count)
    }

    func read(count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        return Socket.read(fd) { $0.count >= count }.bytes
    }

    func readToEnd() -> (bytes: [UInt8], eof: Bool) { Socket.read(fd) { _ in false } }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}

struct ReceivedHead {
    var bytes: [UInt8]
    var headEnd: Int
    var count: Int { bytes.count }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    func starts(with prefix: [UInt8]) -> Bool { bytes.starts(with: prefix) }
    subscript(range: PartialRangeFrom<Int>) -> ArraySlice<UInt8> { bytes[range] }
}

/// A TCP server on 127.0.0.1 with an ephemeral port, serving one connection at a time on its own thread.
final class TestServer: @unchecked Sendable {
    enum Behaviour {
        /// Sends back everything, until the client's end.
        case echo
        /// Reads one request (head and Content-Length body), answers 200 with `body` and closes.
        case http(body: String)
    }

    struct Request {
        var head: String
        var body: [UInt8]
    }

    let port: Int
    private let listener: Int32
    private let behaviour: Behaviour
    private let lock = NSLock()
    private var stopping = false
    private var stopped = false
    private var _accepted = 0
    private var _received: [[UInt8]] = []
    private var _requests: [Request] = []
    private let finished = DispatchSemaphore(value: 0)

    var accepted: Int { lock.withLock { _accepted } }
    /// What each echo connection received.
    var received: [[UInt8]] { lock.withLock { _received } }
    var requests: [Request] { lock.withLock { _requests } }

    init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        guard ok else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TestFailure("bind/listen: \(why)")
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopping = true }
            return !stopping
        }
        guard first else { return }
        finished.wait()
        Glibc.close(listener)
    }

    private func serve() {
        while !lock.withLock({ stopping }) {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            lock.withLock { _accepted += 1 }
            Socket.boundReads(connection)
            switch behaviour {
            case .echo: echo(connection)
            case .http(let body): answer(connection, body: body)
            }
            Glibc.close(connection)
        }
        finished.signal()
    }

    private func echo(_ fd: Int32) {
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            got += buffer[0..<n]
            guard Socket.sendAll(fd, Array(buffer[0..<n])) else { break }
        }
        lock.withLock { _received.append(got) }
    }

    private func answer(_ fd: Int32, body: String) {
        var got = Socket.read(fd) { Socket.headEnd($0) != nil }.bytes
        let end = Socket.headEnd(got) ?? got.count
        let head = String(decoding: got[..<end], as: UTF8.self)
        let length = head.components(separatedBy: "\r\n")
            .first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        if got.count - end < length {
            got += Socket.read(fd) { $0.count >= length - (got.count - end) }.bytes
        }
        lock.withLock { _requests.append(Request(head: head, body: Array(got[end...]))) }
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = Socket.sendAll(fd, Array(response.utf8))
    }
}

/// Sockets of this process's network namespace, from /proc/net/tcp.
enum TCPTable {
    /// Local sockets connected to 127.0.0.1:`port` that the far side closed and this side has not
    /// (CLOSE_WAIT), after waiting up to two seconds for them to go; nil without /proc/net/tcp.
    static func socketsLingering(towardsPort port: Int) -> [String]? {
        var left: [String] = []
        for _ in 0..<20 {
            guard let table = readProcFile("/proc/net/tcp") else { return nil }
            let remote = String(format: "0100007F:%04X", port)
            left = table.split(separator: "\n").dropFirst().compactMap { line in
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[2] == remote, fields[3] == "08" else { return nil }
                return "\(fields[1]) -> \(fields[2]) CLOSE_WAIT"
            }
            if left.isEmpty { return [] }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return left
    }

    /// The whole of a /proc file (whose size reads as 0, and which comes a page at a time).
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

// MARK: - TLS

enum TLS {
    /// A TLS 1.2-style ClientHello record, with a server_name extension when `serverName` is given.
    static func clientHello(serverName: String?) -> [UInt8] {
        func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] }
        func u24(_ n: Int) -> [UInt8] { [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] }

        var body: [UInt8] = [0x03, 0x03]                          // client_version TLS 1.2
        body += (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }  // random
        body += [0x00]                                            // session_id: empty
        let suites: [UInt8] = [0x13, 0x01, 0xc0, 0x2f]
        body += u16(suites.count) + suites                        // cipher_suites
        body += [0x01, 0x00]                                      // compression_methods: null
        var extensions: [UInt8] = []
        // supported_groups (10): x25519, secp256r1 -- comes first, so the parser must skip it.
        let groups: [UInt8] = [0x00, 0x1d, 0x00, 0x17]
        extensions += u16(10) + u16(groups.count + 2) + u16(groups.count) + groups
        if let serverName {
            let name = Array(serverName.utf8)
            let entry: [UInt8] = [0x00] + u16(name.count) + name  // host_name
            let list = u16(entry.count) + entry
            extensions += u16(0) + u16(list.count) + list         // server_name (0)
        }
        body += u16(extensions.count) + extensions
        let handshake: [UInt8] = [0x01] + u24(body.count) + body  // client_hello
        return [0x16, 0x03, 0x01] + u16(handshake.count) + handshake
    }
}
