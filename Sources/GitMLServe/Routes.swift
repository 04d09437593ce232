import AsyncHTTPClient
import GitMLBasics
import GitMLLineage
import GitMLRollout
import GitMLStore
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Hands every request to the gateway's router.
struct GatewayResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let gateway: Gateway

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        await Routes(gateway: gateway).answer(request)
    }
}

/// The gateway's routes: KServe v1 and v2, MLflow, OpenAI-compatible, the model list, health, readiness, metrics.
struct Routes {
    let gateway: Gateway

    /// Which API a proxied request speaks, and the model it names.
    enum Target {
        case kserveV1(String)
        case kserveV2(String)
        case mlflow
        case openAI
    }

    static func errorJSON(_ code: String, _ message: String, _ hint: String) -> JSONValue {
        .object(["error": .object(["code": .string(code), "message": .string(message), "hint": .string(hint)])])
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(
            status: status, headers: fields,
            body: .init(byteBuffer: ByteBuffer(bytes: Array((JSONWriter.compact(value) + "\n").utf8))))
    }

    static func error(_ status: Int, _ code: String, _ message: String, _ hint: String = "", headers: HTTPFields = [:])
        -> Response
    {
        json(HTTPResponse.Status(code: status), errorJSON(code, message, hint), headers: headers)
    }

    func answer(_ incoming: Request) async -> Response {
        var request = incoming
        let path = request.uri.path
        switch (request.method, path) {
        case (.get, "/healthz"), (.get, "/v2/health/live"):
            return Self.json(.ok, .object(["status": .string("ok")]))
        case (.get, "/readyz"), (.get, "/v2/health/ready"):
            let (ready, models) = gateway.readiness()
            return Self.json(
                ready ? .ok : .serviceUnavailable, .object(["ready": .bool(ready), "models": .object(models)]))
        default: break
        }
        let host = Self.hostName(request.head.authority ?? "")
        if !Self.isAddress(host) && host != "localhost" && !gateway.allowedHosts.contains(host) {
            return Self.error(
                403, "host-not-allowed", "the Host \(host.isEmpty ? "(none)" : host) is not served here",
                "add it to allowed_hosts in serve.yaml")
        }
        if let refusal = authorize(request) { return refusal }
        switch (request.method, path) {
        case (.get, "/metrics"):
            let now = Int64(Timestamp.nowSeconds())
            for version in gateway.metrics.allVersions() { version.tick(now: now) }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: gateway.metrics.render())))
        case (.get, "/v1/models"):
            return Self.json(.ok, modelList())
        default: break
        }
        guard let target = Self.target(request.method, path) else {
            if let name = Self.modelStatusName(path), request.method == .get { return modelStatus(name) }
            return Self.error(
                404, "no-route", "\(request.method.rawValue) \(path) is not a route of git ml serve",
                "see GET /v1/models and docs/commands/serve.md")
        }
        let limit = gateway.configuration.withLock { $0.maxBodyBytes }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return Self.error(
                413, "body-too-large", "the request body is larger than \(limit) bytes",
                "send less, or raise max_body_bytes")
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limit)
        } catch {
            return Self.error(
                413, "body-too-large", "the request body is larger than \(limit) bytes",
                "send less, or raise max_body_bytes")
        }
        return await proxy(request, target: target, body: body)
    }

    /// 401 unless the request carries the configured bearer token (compared in constant time).
    private func authorize(_ request: Request) -> Response? {
        guard let token = gateway.token else { return nil }
        let given = request.headers[.authorization].map { Array($0.utf8) } ?? []
        let prefix = Array("Bearer ".utf8)
        let offered = given.starts(with: prefix) ? Array(given.dropFirst(prefix.count)) : []
        if Self.constantTimeEqual(offered, token) { return nil }
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = "Bearer"
        return Self.error(
            401, "unauthorized", "this gateway needs Authorization: Bearer <token>",
            "send the token in GIT_ML_SERVE_TOKEN", headers: headers)
    }

    /// Equal bytes, in time that depends only on the lengths (both digests are compared whole).
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard let left = try? SHA256.hex(of: a), let right = try? SHA256.hex(of: b) else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(left.utf8, right.utf8) { difference |= x ^ y }
        return difference == 0
    }

    /// An IPv4 or IPv6 literal (what no DNS rebinding can produce). Byte by byte: this runs on every request.
    static func isAddress(_ host: String) -> Bool {
        let bytes = host.utf8
        if bytes.contains(UInt8(ascii: ":")) {
            return bytes.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) || $0 == 0x3A || $0 == 0x2E
            }
        }
        var dots = 0
        var digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard digits > 0 else { return false }
                dots += 1
                digits = 0
            } else if byte >= 0x30 && byte <= 0x39 {
                digits += 1
                if digits > 3 { return false }
            } else {
                return false
            }
        }
        return dots == 3 && digits > 0
    }

    /// The host of a `Host` value, lower-cased, without its port or an IPv6 literal's brackets.
    static func hostName(_ authority: String) -> String {
        var bytes = Array(authority.utf8)
        if bytes.first == UInt8(ascii: "[") {
            guard let end = bytes.firstIndex(of: UInt8(ascii: "]")) else { return "" }
            bytes = Array(bytes[1..<end])
        } else if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
            bytes.removeSubrange(colon...)
        }
        for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A { bytes[i] |= 0x20 }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func target(_ method: HTTPRequest.Method, _ path: String) -> Target? {
        guard method == .post else { return nil }
        if path.hasPrefix("/v1/models/") && path.hasSuffix(":predict") {
            let name = path.dropFirst("/v1/models/".count).dropLast(":predict".count)
            return name.isEmpty || name.contains("/") ? nil : .kserveV1(String(name))
        }
        if path.hasPrefix("/v2/models/") && path.hasSuffix("/infer") {
            let parts = path.dropFirst("/v2/models/".count).dropLast("/infer".count).split(separator: "/")
            // /v2/models/<name>/infer or /v2/models/<name>/versions/<v>/infer
            guard let name = parts.first, parts.count == 1 || (parts.count == 3 && parts[1] == "versions") else {
                return nil
            }
            return .kserveV2(String(name))
        }
        switch path {
        case "/invocations": return .mlflow
        case "/v1/chat/completions", "/v1/completions": return .openAI
        default: return nil
        }
    }

    /// `GET /v1/models/<name>` and `GET /v2/models/<name>[/ready]`: one model's state.
    static func modelStatusName(_ path: String) -> String? {
        for prefix in ["/v1/models/", "/v2/models/"] where path.hasPrefix(prefix) {
            var rest = path.dropFirst(prefix.count)
            if rest.hasSuffix("/ready") { rest = rest.dropLast("/ready".count) }
            if !rest.isEmpty && !rest.contains("/") && !rest.contains(":") { return String(rest) }
        }
        return nil
    }

    private func modelStatus(_ name: String) -> Response {
        guard let slot = gateway.slots.withLock({ $0[name] }) else {
            return Self.error(404, "model-not-found", "no model \(name) is served here", "see GET /v1/models")
        }
        let ready = slot.serving?.backend.isUp == true
        return Self.json(ready ? .ok : .serviceUnavailable, .object(["name": .string(name), "ready": .bool(ready)]))
    }

    /// Every model: its version, stage, run, commit and artifact digests, and its state.
    private func modelList() -> JSONValue {
        var models: [JSONValue] = []
        for slot in gateway.slots.withLock({ Array($0.values) }).sorted(by: { $0.name < $1.name }) {
            var entry: [String: JSONValue] = ["name": .string(slot.name)]
            switch slot.state.withLock({ $0 }) {
            case .starting: entry["state"] = .string("starting")
            case .refused(let code, let message, _):
                entry["state"] = .string("refused")
                entry["error"] = .object(["code": .string(code), "message": .string(message)])
            case .serving(let served):
                let verified = served.verified
                entry["state"] = .string(served.backend.isUp ? "ready" : "backend-down")
                entry["version"] = .int(Int64(verified.version))
                entry["stage"] = .string(verified.stage)
                entry["run"] = .string(verified.run)
                entry["commit"] = .string(verified.commit)
                entry["artifacts"] = .array(verified.artifacts.map(\.json))
            }
            models.append(.object(entry))
        }
        return .object(["models": .array(models)])
    }

    // MARK: - Proxying

    private func slot(for target: Target, request: Request, body: ByteBuffer, openAI: JSONValue?) -> Result<
        Slot, Refusal
    > {
        let table = gateway.slots.withLock { $0 }
        let name: String?
        switch target {
        case .kserveV1(let model), .kserveV2(let model): name = model
        case .mlflow:
            name = request.headers[HTTPField.Name.gitMLModel] ?? (table.count == 1 ? table.keys.first : nil)
        case .openAI:
            // A model the body names must be one served here (as vLLM answers); no name means the only model.
            name = openAI?["model"]?.string ?? (table.count == 1 ? table.keys.first : nil)
        }
        guard let name, let slot = table[name] else {
            let known = table.keys.sorted().joined(separator: ", ")
            return .failure(
                Refusal(
                    status: 404, code: "model-not-found",
                    message: name.map { "no model \($0) is served here" }
                        ?? "name the model: several are served (\(known))",
                    hint: "served: \(known); for /invocations send x-git-ml-model, for OpenAI routes the body's model"))
        }
        return .success(slot)
    }

    /// The version a slot serves, counted as in use (`inflight`); the caller must give it back.
    static func acquire(_ slot: Slot) -> Result<ServedVersion, Refusal> {
        while true {
            let served: ServedVersion
            switch slot.state.withLock({ $0 }) {
            case .starting:
                return .failure(
                    Refusal(
                        status: 503, code: "starting", message: "\(slot.name) is being verified and started",
                        hint: "wait for GET /readyz"))
            case .refused(let code, let message, let hint):
                return .failure(Refusal(status: 503, code: code, message: message, hint: hint))
            case .serving(let version): served = version
            }
            // Counted before it is used, then checked again: a switch in between would retire it under us.
            served.inflight.add(1, ordering: .sequentiallyConsistent)
            if slot.serving === served { return .success(served) }
            served.inflight.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    struct Refusal: Error {
        let status: Int
        let code: String
        let message: String
        let hint: String
    }

    private func proxy(_ request: Request, target: Target, body: ByteBuffer) async -> Response {
        let start = ContinuousClock.now
        var openAIBody: JSONValue?
        if case .openAI = target {
            openAIBody = try? JSONParser.parse(Array(body.readableBytesView), source: "the request")
        }
        let slot: Slot
        switch self.slot(for: target, request: request, body: body, openAI: openAIBody) {
        case .success(let found): slot = found
        case .failure(let refusal): return Self.error(refusal.status, refusal.code, refusal.message, refusal.hint)
        }
        // A rollout under way: the request's bucket (its key hashed with the rollout's id) picks the arm.
        let rollout = slot.rollout.withLock { $0 }
        var arm: Arm?
        var chosen: ServedVersion?
        if let rollout {
            arm = .stable
            let weight = rollout.weight.load(ordering: .relaxed)
            if weight >= 100
                || (weight > 0
                    && Router.toCandidate(
                        bucket: rollout.bucket(headers: request.headers, body: body, parsed: openAIBody),
                        percent: weight)),
                let candidate = rollout.acquireCandidate(in: slot)
            {
                if candidate.backend.isUp && candidate.backend.refusal == nil {
                    chosen = candidate
                    arm = .candidate
                } else {
                    // A candidate that is down counts against it, and the request is answered by the stable one.
                    candidate.inflight.subtract(1, ordering: .sequentiallyConsistent)
                    rollout.record(.candidate, status: 503, milliseconds: nil)
                }
            }
        }
        let served: ServedVersion
        if let chosen {
            served = chosen
        } else {
            switch Self.acquire(slot) {
            case .success(let version): served = version
            case .failure(let refusal): return Self.error(refusal.status, refusal.code, refusal.message, refusal.hint)
            }
        }
        let metrics = gateway.metrics
        metrics.inflight.increment()
        var finished = false
        let estimate = openAIBody.map { Self.estimatedTokens($0, bytes: body.readableBytes) } ?? 0
        if estimate > 0 { served.metrics.inflightTokens.increment(by: estimate) }
        let done: @Sendable (Int, [UInt8]?) -> Void = { [gateway, arm] status, output in
            metrics.inflight.decrement()
            served.inflight.subtract(1, ordering: .relaxed)
            if estimate > 0 { served.metrics.inflightTokens.decrement(by: estimate) }
            let elapsed = ContinuousClock.now - start
            let seconds = elapsed.seconds
            metrics.request(model: served.verified.model, version: served.versionLabel, code: status, seconds: seconds)
            served.metrics.duration.record(elapsed)
            if let arm { rollout?.record(arm, status: status, milliseconds: seconds * 1000) }
            Self.logEntry(gateway, served, request.uri.path, status, seconds, body, output)
        }
        defer { if !finished { done(500, nil) } }
        var headers = HTTPFields()
        headers[HTTPField.Name.gitMLModel] = served.verified.model
        headers[HTTPField.Name.gitMLVersion] = served.versionLabel
        headers[HTTPField.Name.gitMLRun] = served.verified.run

        if let refusal = served.backend.refusal {
            finished = true
            done(503, nil)
            return Self.error(503, refusal.code, refusal.message, refusal.hint, headers: headers)
        }
        if !served.backend.isUp {
            finished = true
            done(503, nil)
            return Self.error(
                503, "backend-down", "\(served.verified.model)@\(served.verified.version): the backend is restarting",
                "retry shortly; GET /readyz says when it is back", headers: headers)
        }
        let bytes = Array(body.readableBytesView)
        let cacheKey = served.cache.map { _ in ResponseCache.key(path: request.uri.description, body: bytes) }
        if let cache = served.cache, let key = cacheKey, let hit = cache.get(key) {
            metrics.cacheHits.increment()
            headers[.contentType] = hit.contentType
            headers[HTTPField.Name.gitMLCache] = "hit"
            finished = true
            done(200, hit.body)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: hit.body)))
        }
        if case .kserveV1 = target, let batcher = served.batcher,
            let parsed = try? JSONParser.parse(bytes, source: "the request"), let members = parsed.object,
            members.count == 1, let instances = members["instances"]?.array, !instances.isEmpty
        {
            let answer = await batcher.submit(instances)
            finished = true
            switch answer {
            case .predictions(let predictions):
                let output = Array((JSONWriter.compact(.object(["predictions": .array(predictions)])) + "\n").utf8)
                done(200, output)
                Self.mirror(rollout, request, body, 200, output)
                headers[.contentType] = "application/json"
                if let cache = served.cache, let key = cacheKey {
                    cache.put(key, .init(body: output, contentType: "application/json"))
                }
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: output)))
            case .failed(let status, let failure, let contentType):
                done(status, failure)
                headers[.contentType] = contentType
                return Response(
                    status: HTTPResponse.Status(code: status), headers: headers,
                    body: .init(byteBuffer: ByteBuffer(bytes: failure)))
            }
        }
        let answer: Proxy.Answer
        do {
            answer = try await Proxy.forward(
                backend: served.backend, method: request.method, path: request.uri.description,
                headers: request.headers,
                body: body, timeoutMilliseconds: served.settings.timeoutMilliseconds,
                dropAuthorization: gateway.token != nil)
        } catch {
            finished = true
            done(error.status, nil)
            serveLog("\(request.method.rawValue) \(request.uri.path): \(error.status) \(error.message)")
            return Self.error(error.status, error.code, error.message, "", headers: headers)
        }
        switch answer {
        case .whole(let status, let backendHeaders, let responseBody):
            Self.copy(backendHeaders, into: &headers)
            let output = Array(responseBody.readableBytesView)
            if case .openAI = target, status == 200 { Self.countUsage(of: output, served: served) }
            if status == 200, output.count <= ResponseCache.largestEntry, let cache = served.cache, let key = cacheKey {
                cache.put(
                    key,
                    .init(body: output, contentType: backendHeaders.first(name: "content-type") ?? "application/json"))
            }
            finished = true
            done(status, output)
            Self.mirror(rollout, request, body, status, output)
            return Response(
                status: HTTPResponse.Status(code: status), headers: headers, body: .init(byteBuffer: responseBody))
        case .stream(let status, let backendHeaders, let stream):
            Self.copy(backendHeaders, into: &headers)
            finished = true
            return Response(
                status: HTTPResponse.Status(code: status), headers: headers,
                body: ResponseBody { writer in
                    var usage = StreamUsage()
                    var first = true
                    var code = status
                    defer { done(code, nil) }
                    var events = stream.makeAsyncIterator()
                    while true {
                        let chunk: ByteBuffer?
                        do {
                            chunk = try await events.next()
                        } catch {
                            code = 502
                            serveLog("\(request.uri.path): the backend's stream broke after its head (\(error))")
                            throw error
                        }
                        guard let chunk else { break }
                        if first {
                            first = false
                            served.metrics.timeToFirstToken.record(ContinuousClock.now - start)
                        }
                        usage.scan(chunk.readableBytesView)
                        do {
                            try await writer.write(chunk)
                        } catch {
                            code = 499  // the client went away (nginx's code for it); not the backend's fault
                            throw error
                        }
                    }
                    if let (input, output) = usage.totals { Self.count(input: input, output: output, served: served) }
                    try await writer.finish(nil)
                })
        }
    }

    /// Queues a copy of an answered request for a shadow candidate (the sampled share); never waits.
    static func mirror(
        _ rollout: ActiveRollout?, _ request: Request, _ body: ByteBuffer, _ status: Int, _ output: [UInt8]
    ) {
        guard let rollout, let mirror = rollout.mirror, !rollout.paused.load(ordering: .relaxed) else { return }
        let share = rollout.plan.sample
        guard share >= 1 || Double.random(in: 0..<1) < share else { return }
        guard body.readableBytes + output.count <= ShadowMirror.largestCopy else {
            rollout.dropped.add(1, ordering: .relaxed)
            return
        }
        let job = ShadowMirror.Job(
            method: request.method, path: request.uri.description, headers: request.headers, body: body,
            primaryStatus: status, primary: output)
        if !mirror.offer(job) { rollout.dropped.add(1, ordering: .relaxed) }
    }

    /// Copies a backend's response headers, without hop-by-hop ones and without any claiming to be ours.
    static func copy(_ backendHeaders: HTTPHeaders, into headers: inout HTTPFields) {
        let listed = Proxy.connectionListed(backendHeaders[canonicalForm: "connection"].map(String.init))
        for (name, value) in backendHeaders {
            let lower = name.lowercased()
            if Proxy.hopByHop.contains(lower) || listed.contains(lower) || lower.hasPrefix("x-git-ml-") { continue }
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
    }

    /// Prompt bytes / 4 plus the tokens the request asks for at most: what a request adds to the load.
    static func estimatedTokens(_ body: JSONValue, bytes: Int) -> Double {
        let asked =
            body["max_tokens"]?.int(in: 0...10_000_000) ?? body["max_completion_tokens"]?.int(in: 0...10_000_000) ?? 0
        return Double(bytes / 4 + asked)
    }

    /// Tokens from a whole OpenAI answer's `usage` object.
    static func countUsage(of output: [UInt8], served: ServedVersion) {
        guard let parsed = try? JSONParser.parse(output, source: "the backend"), let usage = parsed["usage"] else {
            return
        }
        count(
            input: usage["prompt_tokens"]?.int(in: 0...1_000_000_000) ?? 0,
            output: usage["completion_tokens"]?.int(in: 0...1_000_000_000) ?? 0, served: served)
    }

    static func count(input: Int, output: Int, served: ServedVersion) {
        served.metrics.tokensIn.increment(by: Int64(input))
        served.metrics.tokensOut.increment(by: Int64(output))
        served.metrics.addTokens(Double(input + output), now: Int64(Timestamp.nowSeconds()))
        if let price = served.settings.price {
            served.metrics.cost.increment(
                by: Double(input) / 1000 * price.inputPer1k + Double(output) / 1000 * price.outputPer1k)
        }
    }

    /// Logs a request: always its time, status and latency; its bodies when sampled, cut to the configured size.
    static func logEntry(
        _ gateway: Gateway, _ served: ServedVersion, _ route: String, _ status: Int, _ seconds: Double,
        _ body: ByteBuffer,
        _ output: [UInt8]?
    ) {
        guard let log = gateway.log else { return }
        let settings = gateway.configuration.withLock { $0.log }
        let sampled = settings.sample >= 1 || (settings.sample > 0 && Double.random(in: 0..<1) < settings.sample)
        log.append(
            PredictionEntry(
                time: Timestamp.nowSeconds(), model: served.verified.model, version: served.verified.version,
                run: served.verified.run, route: route, status: status, latencyMilliseconds: seconds * 1000,
                input: sampled ? Array(body.readableBytesView.prefix(settings.maxBytes)) : nil,
                output: sampled ? output.map { Array($0.prefix(settings.maxBytes)) } : nil))
    }
}

/// Token counts read from an OpenAI stream's events (the chunk with a `usage` object, sent last).
struct StreamUsage {
    private var pending: [UInt8] = []
    private(set) var totals: (Int, Int)?

    mutating func scan(_ chunk: some Collection<UInt8>) {
        pending.append(contentsOf: chunk)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[..<newline]
            pending.removeSubrange(...newline)
            guard line.starts(with: Array("data:".utf8)) else { continue }
            let payload = Array(line.dropFirst(5))
            guard payload.count < 1 << 20, let event = try? JSONParser.parse(payload, source: "the stream"),
                let usage = event["usage"], usage != .null
            else { continue }
            totals = (
                usage["prompt_tokens"]?.int(in: 0...1_000_000_000) ?? 0,
                usage["completion_tokens"]?.int(in: 0...1_000_000_000) ?? 0
            )
        }
        if pending.count > 1 << 20 { pending.removeAll() }
    }
}

extension HTTPField.Name {
    // Literal names that are valid tokens, so the failable initialiser cannot fail.
    static let gitMLModel = HTTPField.Name("x-git-ml-model") ?? .contentType
    static let gitMLVersion = HTTPField.Name("x-git-ml-version") ?? .contentType
    static let gitMLRun = HTTPField.Name("x-git-ml-run") ?? .contentType
    static let gitMLCache = HTTPField.Name("x-git-ml-cache") ?? .contentType
}
