import GitMLBasics
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOPosix
import Synchronization

/// The proxy path where nginx has it: a plain prediction (KServe v1 or v2, MLflow; no batching, no cache, no
/// stream) is answered inside the client connection's channel pipeline, on its event loop, through a keep-alive
/// upstream connection owned by the same loop: no task, no async sequence and no thread hand-off per request.
/// Everything else (and every error answer) passes through to the async routes unchanged.
///
/// It also keeps the connection's own state for both paths (what Hummingbird's state handler would, which sees
/// only the requests passed on): closing after 75 s idle, and on a drain closing only once the request in flight
/// is answered.
final class FastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let gateway: Gateway
    private let idleTimeout: TimeAmount
    /// NIO's pipelining handler delivers one request at a time, so one state is enough.
    private enum Mode {
        case idle
        case passing
        case collecting(Planned, body: ByteBuffer)
        case proxying
    }
    private var mode = Mode.idle
    private var quiescing = false
    private var idleTask: Scheduled<Void>?

    struct Planned {
        let served: ServedVersion
        let head: HTTPRequest
        let start: ContinuousClock.Instant
        let host: String
        let port: Int
    }

    init(gateway: Gateway, idleTimeout: TimeAmount = .seconds(75)) {
        self.gateway = gateway
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) { armIdle(context) }

    func handlerRemoved(context: ChannelHandlerContext) { idleTask?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (mode, part) {
        case (.idle, .head(let head)):
            idleTask?.cancel()
            if let planned = plan(head) {
                mode = .collecting(planned, body: context.channel.allocator.buffer(capacity: 256))
                return
            }
            mode = .passing
            context.fireChannelRead(data)
        case (.collecting(let planned, var body), .body(var chunk)):
            mode = .passing  // so the buffer below is not shared with the enum's copy
            body.writeBuffer(&chunk)
            guard body.readableBytes <= gateway.configuration.withLock({ $0.maxBodyBytes }) else {
                // A body without a content-length that grew too large: answered here, and the connection closed,
                // since the rest of it will not be read.
                finish(context, planned, status: 413, output: nil, body: body)
                let error = Routes.errorJSON(
                    "body-too-large", "the request body is larger than the gateway accepts",
                    "send less, or raise max_body_bytes")
                respond(
                    context, planned, status: 413, headers: [:],
                    body: ByteBuffer(string: JSONWriter.compact(error) + "\n"))
                mode = .proxying
                context.close(promise: nil)
                return
            }
            mode = .collecting(planned, body: body)
        case (.collecting(let planned, let body), .end):
            mode = .proxying
            send(context, planned, body: body, attempt: 0)
        case (.proxying, _):
            break  // the rest of a request already answered (413)
        default:
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if case .end = unwrapOutboundIn(data), case .passing = mode { answered(context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        if case .idle = mode { context.close(promise: nil) }
    }

    /// A request was answered: close if draining, else wait for the next one (at most the idle timeout).
    private func answered(_ context: ChannelHandlerContext) {
        mode = .idle
        if quiescing {
            context.close(promise: nil)
        } else {
            armIdle(context)
        }
    }

    private func armIdle(_ context: ChannelHandlerContext) {
        idleTask?.cancel()
        let loop = context.eventLoop
        idleTask = loop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: idleTimeout) {
            context.close(promise: nil)
        }
    }

    /// The plan for a request the fast path can answer whole, or nil to pass it on.
    private func plan(_ head: HTTPRequest) -> Planned? {
        guard head.method == .post, let path = head.path, head.headerFields[.connection] == nil,
            head.headerFields[.expect] == nil
        else { return nil }
        if let token = gateway.token {
            // A wrong or missing token goes the async way, which answers 401.
            let given = Array((head.headerFields[.authorization] ?? "").utf8)
            let prefix = Array("Bearer ".utf8)
            guard given.starts(with: prefix), Routes.constantTimeEqual(Array(given.dropFirst(prefix.count)), token)
            else { return nil }
        }
        let host = Routes.hostName(head.authority ?? "")
        guard Routes.isAddress(host) || host == "localhost" || gateway.allowedHosts.contains(host) else { return nil }
        let name: String
        let table = gateway.slots.withLock { $0 }
        switch Routes.target(.post, String(path.prefix { $0 != "?" })) {
        case .kserveV1(let model), .kserveV2(let model): name = model
        case .mlflow:
            guard let chosen = head.headerFields[.gitMLModel] ?? (table.count == 1 ? table.keys.first : nil) else {
                return nil
            }
            name = chosen
        default: return nil
        }
        if let length = head.headerFields[.contentLength].flatMap({ Int($0) }),
            length > gateway.configuration.withLock({ $0.maxBodyBytes })
        {
            return nil
        }
        guard let slot = table[name], let current = slot.serving, current.batcher == nil, current.cache == nil,
            current.backend.isUp, current.backend.refusal == nil, let (host, port) = current.backend.address
        else { return nil }
        guard case .success(let served) = Routes.acquire(slot) else { return nil }
        gateway.metrics.inflight.increment()
        return Planned(served: served, head: head, start: .now, host: host, port: port)
    }

    /// `http://host:port` without a path prefix (a URL backend with one goes the async way).
    static func address(_ base: String) -> (String, Int)? {
        guard base.hasPrefix("http://") else { return nil }
        let rest = base.dropFirst("http://".count)
        guard !rest.utf8.contains(UInt8(ascii: "/")), let colon = rest.lastIndex(of: ":"),
            let port = Int(rest[rest.index(after: colon)...])
        else { return nil }
        return (String(rest[..<colon]), port)
    }

    private func send(_ context: ChannelHandlerContext, _ planned: Planned, body: ByteBuffer, attempt: Int) {
        let pool = Upstreams.pool(for: context.eventLoop)
        let timeout = planned.served.backend.timeoutMilliseconds
        pool.exchange(
            host: planned.host, port: planned.port, head: upstreamHead(planned.head), body: body,
            timeout: .milliseconds(Int64(timeout))
        ) { [self] result in
            switch result {
            case .success(let (head, responseBody)):
                guard head.status.code >= 200 else {
                    fail(
                        context, planned, body: body, status: 502, code: "bad-gateway",
                        message: "the backend answered \(head.status.code), which a gateway cannot relay")
                    return
                }
                var headers = HTTPFields()
                Routes.copy(head.headers, into: &headers)
                let output = Array(responseBody.readableBytesView)
                finish(context, planned, status: Int(head.status.code), output: output, body: body)
                respond(context, planned, status: Int(head.status.code), headers: headers, body: responseBody)
            case .failure(let failure):
                if failure == .connect && attempt < 2 {
                    context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(
                        in: .milliseconds(Int64(50 * (attempt + 1)))
                    ) {
                        self.send(context, planned, body: body, attempt: attempt + 1)
                    }
                    return
                }
                let label = "\(planned.served.verified.model)@\(planned.served.verified.version)"
                switch failure {
                case .timeout:
                    fail(
                        context, planned, body: body, status: 504, code: "backend-timeout",
                        message: "\(label): the backend did not answer within \(timeout) ms")
                case .connect:
                    fail(
                        context, planned, body: body, status: 503, code: "backend-down",
                        message: "\(label): the backend does not accept connections")
                case .tooLarge:
                    fail(
                        context, planned, body: body, status: 502, code: "backend-response-too-large",
                        message: "\(label): the backend's answer is larger than \(Proxy.maximumResponseBytes >> 20) MiB"
                    )
                case .broken(let detail):
                    fail(
                        context, planned, body: body, status: 502, code: "bad-gateway",
                        message: "\(label): the backend's answer could not be read (\(detail))")
                }
            }
        }
    }

    private func upstreamHead(_ head: HTTPRequest) -> HTTPRequestHead {
        var headers = NIOHTTP1.HTTPHeaders()
        let listed = Proxy.connectionListed(head.headerFields[values: .connection])
        for field in head.headerFields {
            let name = field.name.canonicalName
            if Proxy.hopByHop.contains(name) || listed.contains(name) || name.hasPrefix("x-git-ml-") { continue }
            headers.add(name: field.name.rawName, value: field.value)
        }
        return HTTPRequestHead(version: .http1_1, method: .POST, uri: head.path ?? "/", headers: headers)
    }

    private func fail(
        _ context: ChannelHandlerContext, _ planned: Planned, body: ByteBuffer, status: Int, code: String,
        message: String
    ) {
        serveLog("POST \(planned.head.path ?? ""): \(status) \(message)")
        finish(context, planned, status: status, output: nil, body: body)
        let error = Routes.errorJSON(code, message, "")
        respond(
            context, planned, status: status, headers: [:], body: ByteBuffer(string: JSONWriter.compact(error) + "\n"))
    }

    private func respond(
        _ context: ChannelHandlerContext, _ planned: Planned, status: Int, headers: HTTPFields, body: ByteBuffer
    ) {
        var fields = headers
        if fields[.contentType] == nil { fields[.contentType] = "application/json" }
        fields[.gitMLModel] = planned.served.verified.model
        fields[.gitMLVersion] = planned.served.versionLabel
        fields[.gitMLRun] = planned.served.verified.run
        fields[.contentLength] = String(body.readableBytes)
        context.write(
            wrapOutboundOut(.head(HTTPResponse(status: .init(code: status), headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        answered(context)
    }

    /// Metrics, the log and the in-flight counts, as the async routes keep them.
    private func finish(
        _ context: ChannelHandlerContext, _ planned: Planned, status: Int, output: [UInt8]?, body: ByteBuffer
    ) {
        let served = planned.served
        gateway.metrics.inflight.decrement()
        served.inflight.subtract(1, ordering: .sequentiallyConsistent)
        let elapsed = ContinuousClock.now - planned.start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        gateway.metrics.request(
            model: served.verified.model, version: served.versionLabel, code: status, seconds: seconds)
        Routes.logEntry(gateway, served, planned.head.path ?? "", status, seconds, body, output)
    }
}

/// Why an upstream exchange gave no answer.
enum UpstreamFailure: Error, Equatable {
    /// No connection could be made: nothing was sent, so it may be tried again.
    case connect
    case timeout
    case tooLarge
    case broken(String)
}

/// Keep-alive connections to backends, one pool per event loop, used only on that loop.
final class Upstreams: @unchecked Sendable {
    private static let pools = NIOLockedValueBox<[ObjectIdentifier: Upstreams]>([:])

    /// The pool of `loop` (made on first use).
    static func pool(for loop: any EventLoop) -> Upstreams {
        pools.withLockedValue { pools in
            let key = ObjectIdentifier(loop)
            if let pool = pools[key] { return pool }
            let made = Upstreams(loop: loop)
            pools[key] = made
            return made
        }
    }

    private let loop: any EventLoop
    private var idle: [String: [any Channel]] = [:]

    private init(loop: any EventLoop) { self.loop = loop }

    /// Sends one request and reads its whole answer, on a kept-alive connection when one is idle.
    func exchange(
        host: String, port: Int, head: HTTPRequestHead, body: ByteBuffer, timeout: TimeAmount,
        _ done: @escaping (Result<(HTTPResponseHead, ByteBuffer), UpstreamFailure>) -> Void
    ) {
        let key = "\(host):\(port)"
        while let channel = idle[key]?.popLast() {
            if channel.isActive {
                run(channel, key: key, head: head, body: body, timeout: timeout, done)
                return
            }
        }
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
            .connect(host: host, port: port)
            .assumeIsolatedUnsafeUnchecked()
            .whenComplete { [self] result in
                switch result {
                case .success(let channel): run(channel, key: key, head: head, body: body, timeout: timeout, done)
                case .failure: done(.failure(.connect))
                }
            }
    }

    private func run(
        _ channel: any Channel, key: String, head: HTTPRequestHead, body: ByteBuffer, timeout: TimeAmount,
        _ done: @escaping (Result<(HTTPResponseHead, ByteBuffer), UpstreamFailure>) -> Void
    ) {
        guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
            channel.close(promise: nil)
            done(.failure(.broken("no handler")))
            return
        }
        var finished = false
        let timer = loop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: timeout) {
            guard !finished else { return }
            finished = true
            handler.abandon()
            channel.close(promise: nil)
            done(.failure(.timeout))
        }
        handler.expect { [self] result in
            guard !finished else { return }
            finished = true
            timer.cancel()
            if case .success(let (responseHead, _)) = result, responseHead.isKeepAlive, channel.isActive {
                idle[key, default: []].append(channel)
            } else {
                channel.close(promise: nil)
            }
            done(result)
        }
        var head = head
        head.headers.replaceOrAdd(name: "host", value: key)
        head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }
}

/// Reads one answer at a time from a backend connection.
final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var waiting: ((Result<(HTTPResponseHead, ByteBuffer), UpstreamFailure>) -> Void)?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    func expect(_ callback: @escaping (Result<(HTTPResponseHead, ByteBuffer), UpstreamFailure>) -> Void) {
        waiting = callback
        head = nil
        body.clear()
    }

    func abandon() { waiting = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > Proxy.maximumResponseBytes {
                complete(.failure(.tooLarge))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            if let head { complete(.success((head, body))) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(.broken("the backend closed the connection")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        complete(.failure(.broken("\(error)")))
        context.close(promise: nil)
    }

    private func complete(_ result: Result<(HTTPResponseHead, ByteBuffer), UpstreamFailure>) {
        guard let callback = waiting else { return }
        waiting = nil
        callback(result)
    }
}
