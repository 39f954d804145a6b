import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOTLS
import OTKModel

/// The egress proxy of network mode `proxy`. It listens on a unix socket (bound into the sandbox,
/// where a relay forwards 127.0.0.1:3128 to it) and serves, one request per connection:
///  - CONNECT host:port: the host must be allowed; it is resolved here and its addresses checked;
///    the tunnel's first bytes must be a TLS ClientHello whose server name is that host; then bytes
///    pass both ways to the address that was checked.
///  - plain HTTP in absolute form (GET http://host/path): the URL's host must be allowed and the
///    Host header must name the same host; the request goes upstream with `Connection: close`.
/// Everything else is refused with a status and a reason, and every connection is recorded.
public final class EgressProxy: Sendable {
    public struct Options: Sendable {
        /// How long a client may take to send its request head, and an upstream connect may take.
        public var headTimeout: TimeAmount = .seconds(30)
        public var connectTimeout: TimeAmount = .seconds(15)
        /// Connections served at once; more are refused (and recorded).
        public var maxConnections = 256
        /// Records kept; past it only a count of the dropped ones.
        public var maxRecords = 10_000

        public init() {}
    }

    let policy: ProxyPolicy
    let resolver: any HostResolver
    let options: Options
    let group: MultiThreadedEventLoopGroup
    let pool: NIOThreadPool
    let state = NIOLockedValueBox(State())
    private let server = NIOLockedValueBox<Channel?>(nil)

    struct State {
        var records: [Int: ProxyRecord] = [:]
        var started: [Int: NIODeadline] = [:]
        var nextID = 0
        var open = 0
        var dropped = 0
    }

    public init(allowlist: NetworkAllowlist, resolver: any HostResolver = SystemResolver(), options: Options = Options()) {
        policy = ProxyPolicy(allowlist: allowlist)
        self.resolver = resolver
        self.options = options
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = NIOThreadPool(numberOfThreads: 2)
    }

    /// Starts listening on a new unix socket at `socketPath` (which must not exist).
    public func start(socketPath: String) throws {
        pool.start()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let front = FrontHandler(proxy: self)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)), name: "decoder")
                    try channel.pipeline.syncOperations.addHandler(front, name: "front")
                }
            }
        let channel = try bootstrap.bind(unixDomainSocketPath: socketPath).wait()
        server.withLockedValue { $0 = channel }
    }

    /// Closes the socket and every connection, and returns the records, oldest first, with a note
    /// of how many were dropped past the limit.
    public func stop() -> (records: [ProxyRecord], dropped: Int) {
        if let channel = server.withLockedValue({ $0 }) { try? channel.close().wait() }
        try? group.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
        return state.withLockedValue { s in (s.records.keys.sorted().compactMap { s.records[$0] }, s.dropped) }
    }

    // MARK: records (any thread)

    func open() -> Int? {
        state.withLockedValue { s in
            guard s.open < options.maxConnections else { return nil }
            s.open += 1
            s.nextID += 1
            return s.nextID
        }
    }

    func record(_ id: Int, _ change: (inout ProxyRecord) -> Void, create: ProxyRecord? = nil) {
        state.withLockedValue { s in
            if s.records[id] == nil, let create {
                guard s.records.count < options.maxRecords else {
                    s.dropped += 1
                    return
                }
                s.records[id] = create
                s.started[id] = .now()
            }
            guard var r = s.records[id] else { return }
            change(&r)
            if let started = s.started[id] { r.durationMs = Double((NIODeadline.now() - started).nanoseconds) / 1e6 }
            s.records[id] = r
        }
    }

    func close(_ id: Int) {
        record(id) { _ in }
        state.withLockedValue { s in
            s.open -= 1
            s.started[id] = nil
        }
    }

    func refusedBusy() {
        let id = state.withLockedValue { s in
            s.nextID += 1
            return s.nextID
        }
        record(id, { _ in }, create: ProxyRecord(method: "?", host: "", port: 0, decision: "refused",
                                               reason: "more than \(options.maxConnections) connections at once"))
        state.withLockedValue { $0.started[id] = nil }
    }
}

/// getaddrinfo on the host, the way the host's own programs resolve.
public struct SystemResolver: HostResolver {
    public init() {}

    public func resolve(_ host: String) throws(ProxyRefusal) -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0 else {
            throw ProxyRefusal(status: 502, reason: "cannot resolve `\(host)`: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var out: [IPAddress] = []
        var cursor = list
        while let entry = cursor {
            if let sa = entry.pointee.ai_addr {
                if entry.pointee.ai_family == AF_INET {
                    var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }), !out.contains(ip) { out.append(ip) }
                } else if entry.pointee.ai_family == AF_INET6 {
                    var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }), !out.contains(ip) { out.append(ip) }
                }
            }
            cursor = entry.pointee.ai_next
        }
        return out
    }
}

// MARK: - the client side

/// Reads one request head, decides, and then turns the connection into a tunnel (CONNECT) or
/// forwards one plain-HTTP request. Runs on the connection's event loop; resolution runs on the pool.
final class FrontHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private let proxy: EgressProxy
    private var id: Int?
    private var headTimeout: Scheduled<Void>?

    private enum Phase {
        case awaitingHead
        /// The head was read; the decision or the upstream connection is under way.
        case deciding(head: HTTPRequestHead, host: String, port: Int, ended: Bool, body: [ByteBuffer])
        /// The request's body goes on to `upstream`.
        case forwarding
        case done
    }

    private var phase = Phase.awaitingHead
    /// The plain-HTTP upstream, closed with the client whatever the phase.
    private var upstream: Channel?
    private var connectReady: (addresses: [IPAddress], entry: NetworkAllowlist.Entry)?

    init(proxy: EgressProxy) {
        self.proxy = proxy
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let id = proxy.open() else {
            proxy.refusedBusy()
            context.close(promise: nil)
            return
        }
        self.id = id
        let timeout = proxy.options.headTimeout
        headTimeout = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, case .awaitingHead = self.phase else { return }
            self.refuse(context, ProxyRefusal(status: 408, reason: "no request head within \(timeout.nanoseconds / 1_000_000_000) s"), method: "?", host: "", port: 0)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        headTimeout?.cancel()
        upstream?.close(promise: nil)
        phase = .done
        if let id {
            proxy.close(id)
            self.id = nil
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if case .awaitingHead = phase, error is HTTPParserError {
            refuse(context, ProxyRefusal(status: 400, reason: "not an HTTP request the proxy understands (\(error))"), method: "?", host: "", port: 0)
            return
        }
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (phase, part) {
        case (.awaitingHead, .head(let head)):
            headTimeout?.cancel()
            // Nothing more is read until the decision and the upstream connection: what waits is
            // bounded by what one read brought, never by what the client sends meanwhile.
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
            received(head, context: context)
        case (.deciding(let head, let host, let port, _, var body), .body(let chunk)):
            body.append(chunk)
            phase = .deciding(head: head, host: host, port: port, ended: false, body: body)
        case (.deciding(let head, let host, let port, _, let body), .end):
            phase = .deciding(head: head, host: host, port: port, ended: true, body: body)
            if connectReady != nil { proceed(context) }
        case (.forwarding, .body(let chunk)):
            if let id { proxy.record(id) { $0.bytesSent += UInt64(chunk.readableBytes) } }
            upstream?.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk)), promise: nil)
        case (.forwarding, .end):
            upstream?.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            // One request per connection: anything the client sends after it is not read.
            phase = .done
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        default:
            break
        }
    }

    private func received(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let method = head.method.rawValue
        let target: (host: String, port: Int)
        if head.method == .CONNECT {
            guard let t = ProxyPolicy.splitAuthority(head.uri, defaultPort: nil) else {
                return refuse(context, ProxyRefusal(status: 400, reason: "CONNECT target `\(head.uri.prefix(200))` is not HOST:PORT"), method: method, host: "", port: 0)
            }
            target = t
        } else {
            let uri = head.uri
            guard uri.lowercased().hasPrefix("http://") else {
                let why = uri.lowercased().hasPrefix("https://")
                    ? "an https:// URL must be reached through CONNECT (set HTTPS_PROXY)"
                    : "requests to the proxy name the whole URL (absolute form, `GET http://host/path`)"
                return refuse(context, ProxyRefusal(status: 400, reason: why), method: method, host: "", port: 0)
            }
            let rest = uri.dropFirst("http://".count)
            let authority = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
            guard !authority.contains("@"), let t = ProxyPolicy.splitAuthority(authority, defaultPort: 80) else {
                return refuse(context, ProxyRefusal(status: 400, reason: "URL authority `\(authority.prefix(200))` is not HOST[:PORT]"), method: method, host: "", port: 0)
            }
            target = t
            let hosts = head.headers["Host"]
            guard hosts.count <= 1 else {
                return refuse(context, ProxyRefusal(status: 400, reason: "the request has \(hosts.count) Host headers"), method: method, host: t.host, port: t.port)
            }
            if let given = hosts.first {
                let named = ProxyPolicy.splitAuthority(given, defaultPort: 80)
                guard let named, named.host == t.host, named.port == t.port else {
                    return refuse(context, ProxyRefusal(status: 403, reason: "Host header `\(given.prefix(200))` differs from the URL's host `\(authority)`"),
                                  method: method, host: t.host, port: t.port)
                }
            }
        }
        guard let id else { return }
        proxy.record(id, { _ in }, create: ProxyRecord(method: method, host: target.host, port: target.port, decision: "refused"))
        let entry: NetworkAllowlist.Entry
        switch proxy.policy.vetTarget(host: target.host, port: target.port) {
        case .failure(let refusal): return refuse(context, refusal, method: method, host: target.host, port: target.port)
        case .success(let e): entry = e
        }
        phase = .deciding(head: head, host: target.host, port: target.port, ended: false, body: [])
        // Names resolve here, never in the sandbox; blocking getaddrinfo runs on the pool.
        let resolver = proxy.resolver
        let host = target.host
        let resolved: EventLoopFuture<Result<[IPAddress], ProxyRefusal>>
        if let literal = IPAddress(host) {
            resolved = context.eventLoop.makeSucceededFuture(.success([literal]))
        } else {
            resolved = proxy.pool.runIfActive(eventLoop: context.eventLoop) {
                do throws(ProxyRefusal) { return .success(try resolver.resolve(host)) } catch { return .failure(error) }
            }
        }
        resolved.whenComplete { [self] result in
            guard case .deciding(_, let host, let port, let ended, _) = phase else { return }
            let addresses: [IPAddress]
            switch result {
            case .failure(let error): return refuse(context, ProxyRefusal(status: 502, reason: "cannot resolve `\(host)`: \(error)"), method: method, host: host, port: port)
            case .success(.failure(let refusal)): return refuse(context, refusal, method: method, host: host, port: port)
            case .success(.success(let list)):
                switch proxy.policy.vetAddresses(host: host, port: port, list) {
                case .failure(let refusal): return refuse(context, refusal, method: method, host: host, port: port)
                case .success(let ok): addresses = ok
                }
            }
            connectReady = (addresses, entry)
            if ended || head.method != .CONNECT { proceed(context) }
        }
    }

    /// Allowed so far: CONNECT answers 200 and waits for the ClientHello; plain HTTP connects.
    private func proceed(_ context: ChannelHandlerContext) {
        guard case .deciding(let head, let host, let port, _, _) = phase, let ready = connectReady, let id else { return }
        connectReady = nil
        proxy.record(id) { $0.allowedBy = "\(ready.entry.pattern) (\(ready.entry.source))" }
        if head.method == .CONNECT {
            startTunnel(context, host: host, port: port, addresses: ready.addresses)
            return
        }
        let proxy = self.proxy
        Self.connect(proxy: proxy, on: context.eventLoop, to: ready.addresses, port: port) { channel in
            try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
            try channel.pipeline.syncOperations.addHandler(GlueHandler(proxy: proxy, id: id, counts: .received, closesWhenDone: true))
        }.whenComplete { [self] result in
            switch result {
            case .failure(let error):
                refuse(context, ProxyRefusal(status: 502, reason: "cannot connect to \(host):\(port): \(error)"), method: head.method.rawValue, host: host, port: port, allowed: true)
            case .success(let (upstream, address)):
                guard case .deciding(_, _, _, let ended, let body) = phase, context.channel.isActive else {
                    upstream.close(promise: nil)
                    return
                }
                proxy.record(id) {
                    $0.decision = "allowed"
                    $0.address = address.authority
                }
                if let glue = try? upstream.pipeline.syncOperations.handler(type: GlueHandler.self) { glue.partner = context.channel }
                phase = .forwarding
                self.upstream = upstream
                var outgoing = head
                outgoing.uri = Self.originForm(head.uri)
                outgoing.version = .http1_1
                for name in ["Proxy-Connection", "Proxy-Authorization", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade"] {
                    outgoing.headers.remove(name: name)
                }
                for token in head.headers[canonicalForm: "Connection"] { outgoing.headers.remove(name: String(token)) }
                if !outgoing.headers.contains(name: "Host") { outgoing.headers.add(name: "Host", value: NetworkAllowlist.authority(host, port)) }
                outgoing.headers.add(name: "Connection", value: "close")
                upstream.write(HTTPClientRequestPart.head(outgoing), promise: nil)
                let sent = body.reduce(0) { $0 + $1.readableBytes }
                for chunk in body { upstream.write(HTTPClientRequestPart.body(.byteBuffer(chunk)), promise: nil) }
                proxy.record(id) { $0.bytesSent += UInt64(sent) }
                if ended {
                    upstream.write(HTTPClientRequestPart.end(nil), promise: nil)
                    phase = .done
                } else {
                    context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
                }
                upstream.flush()
            }
        }
    }

    /// "http://host:port/a?b" -> "/a?b".
    static func originForm(_ uri: String) -> String {
        let rest = uri.dropFirst("http://".count)
        guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        let path = String(rest[slash...])
        return path.hasPrefix("?") ? "/" + path : path
    }

    private func startTunnel(_ context: ChannelHandlerContext, host: String, port: Int, addresses: [IPAddress]) {
        guard let id = self.id else { return }
        let proxy = self.proxy
        let channel = context.channel
        let glue = GlueHandler(proxy: proxy, id: id, counts: .sent, ownsRecord: true)
        self.id = nil
        let sni = ByteToMessageHandler(SNIHandler { [weak glue] result in
            let name: String?
            if case .hostname(let n) = result { name = n } else { name = nil }
            proxy.record(id) { $0.sni = name.map(NetworkAllowlist.canonical) }
            // Nothing more is read while the upstream connects (the ClientHello waits in the SNI handler).
            channel.setOption(.autoRead, value: false).whenComplete { _ in }
            if let refusal = proxy.policy.vetServerName(name, connectHost: host) {
                proxy.record(id) { $0.reason = refusal.reason }
                // A fatal TLS alert (access_denied), so the client's error says the far side refused.
                var alert = channel.allocator.buffer(capacity: 7)
                alert.writeBytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31])
                channel.writeAndFlush(alert).whenComplete { _ in channel.close(promise: nil) }
                return channel.eventLoop.makeFailedFuture(refusal)
            }
            return Self.connect(proxy: proxy, on: channel.eventLoop, to: addresses, port: port) { upstream in
                try upstream.pipeline.syncOperations.addHandler(GlueHandler(proxy: proxy, id: id, counts: .received))
            }.flatMapThrowing { upstream, address in
                guard let glue, channel.isActive else {
                    upstream.close(promise: nil)
                    throw ChannelError.ioOnClosedChannel
                }
                proxy.record(id) {
                    $0.decision = "allowed"
                    $0.address = address.authority
                }
                glue.partner = upstream
                try upstream.pipeline.syncOperations.handler(type: GlueHandler.self).partner = channel
                channel.setOption(.autoRead, value: true).whenComplete { _ in }
            }.flatMapErrorThrowing { error in
                proxy.record(id) {
                    // Allowed, then the upstream failed: the decision stands, the reason says what happened.
                    $0.decision = "allowed"
                    if $0.reason == nil { $0.reason = "cannot connect to \(host):\(port): \(error)" }
                }
                channel.close(promise: nil)
                throw error
            }
        })
        var ok = context.channel.allocator.buffer(capacity: 64)
        ok.writeString("HTTP/1.1 200 Connection established\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(ok), promise: nil)
        // [decoder, front] -> [decoder, sni, glue] -> [sni, glue]: removing the decoder last passes
        // what it held after the CONNECT head (a ClientHello sent early) to the SNI handler.
        do {
            let ops = context.pipeline.syncOperations
            try ops.addHandler(sni, position: .after(self))
            try ops.addHandler(glue, position: .after(sni))
            phase = .done
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            let decoder = try ops.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            ops.removeHandler(decoder, promise: nil)
            context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
        } catch {
            context.close(promise: nil)
        }
    }

    /// Connects to the first of `addresses` that answers; `setup` builds the upstream pipeline.
    static func connect(proxy: EgressProxy, on loop: EventLoop, to addresses: [IPAddress], port: Int,
                        setup: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<(Channel, IPAddress)> {
        guard let first = addresses.first else {
            return loop.makeFailedFuture(ProxyRefusal(status: 502, reason: "no address left to try"))
        }
        let address: SocketAddress
        do { address = try SocketAddress(ipAddress: first.description, port: port) } catch { return loop.makeFailedFuture(error) }
        return ClientBootstrap(group: loop)
            .connectTimeout(proxy.options.connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try setup(channel) } }
            .connect(to: address)
            .map { ($0, first) }
            .flatMapError { error in
                addresses.count > 1 ? connect(proxy: proxy, on: loop, to: Array(addresses.dropFirst()), port: port, setup: setup)
                    : loop.makeFailedFuture(error)
            }
    }

    private func refuse(_ context: ChannelHandlerContext, _ refusal: ProxyRefusal, method: String, host: String, port: Int, allowed: Bool = false) {
        phase = .done
        if let id {
            proxy.record(id, {
                $0.reason = refusal.reason
                if allowed { $0.decision = "allowed" }
            }, create: ProxyRecord(method: method, host: host, port: port, decision: allowed ? "allowed" : "refused"))
        }
        let reasons = [400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 502: "Bad Gateway"]
        let target = host.isEmpty ? "" : " " + NetworkAllowlist.authority(host, port)
        let body = "otk egress proxy: \(allowed ? "failed" : "refused") \(method == "?" ? "the request" : method)\(target): \(refusal.reason)\n"
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count + 160)
        buffer.writeString("HTTP/1.1 \(refusal.status) \(reasons[refusal.status] ?? "Error")\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in context.close(promise: nil) }
    }
}

// MARK: - bytes both ways

/// Passes bytes to its partner channel, counts them, and carries half-closes across.
final class GlueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    enum Direction { case sent, received }

    private let proxy: EgressProxy
    private let id: Int
    private let counts: Direction
    /// Set once the other side exists; bytes that come before it wait here.
    var partner: Channel? {
        didSet { flushPending() }
    }
    private var pending: [ByteBuffer] = []
    private var pendingEnd = false
    private var ownsRecord: Bool
    /// The upstream side of one plain-HTTP request: its end is the end of both connections.
    private let closesWhenDone: Bool

    init(proxy: EgressProxy, id: Int, counts: Direction, ownsRecord: Bool = false, closesWhenDone: Bool = false) {
        self.closesWhenDone = closesWhenDone
        self.proxy = proxy
        self.id = id
        self.counts = counts
        self.ownsRecord = ownsRecord
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        // Flushed at once: bytes a handler passes on as it leaves the pipeline (the SNI handler's
        // buffered ClientHello) come with no channelReadComplete to flush them later.
        if let partner { pass(buffer, to: partner) } else { pending.append(buffer) }
    }

    /// Counted as it goes to the other side: bytes that never reach it (a refused tunnel's
    /// ClientHello) were not sent.
    private func pass(_ buffer: ByteBuffer, to partner: Channel) {
        let n = UInt64(buffer.readableBytes)
        let direction = counts
        proxy.record(id) { if direction == .sent { $0.bytesSent += n } else { $0.bytesReceived += n } }
        partner.writeAndFlush(buffer, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if closesWhenDone, let partner {
                // A plain-HTTP response ends when the upstream closes (Connection: close): once
                // everything before it is written, both connections are done.
                let own = context.channel
                partner.writeAndFlush(ByteBuffer()).whenComplete { _ in
                    partner.close(promise: nil)
                    own.close(promise: nil)
                }
            } else if let partner {
                partner.close(mode: .output, promise: nil)
            } else {
                pendingEnd = true
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close(promise: nil)
        // The tunnel's client side took over the connection (and its record) from FrontHandler.
        if ownsRecord {
            ownsRecord = false
            proxy.close(id)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Reads only while the partner can take more: a slow side slows the other instead of filling memory.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        partner?.setOption(.autoRead, value: context.channel.isWritable).whenComplete { _ in }
        context.fireChannelWritabilityChanged()
    }

    private func flushPending() {
        guard let partner else { return }
        for buffer in pending { pass(buffer, to: partner) }
        pending.removeAll()
        if pendingEnd { partner.close(mode: .output, promise: nil) }
    }
}
