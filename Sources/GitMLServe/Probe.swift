import Dispatch
import GitMLBasics
import GitMLGates
import GitMLLineage
import GitMLRollout
import GitMLStore
import HTTPTypes
import NIOCore
import Synchronization

/// One golden probe's outcome.
public struct ProbeResult: Sendable {
    public let name: String
    public let line: Int
    public let status: Int
    public let passed: Bool
    public let detail: String

    public var json: JSONValue {
        .object([
            "name": .string(name), "line": .int(Int64(line)), "status": .int(Int64(status)), "passed": .bool(passed),
            "detail": .string(detail),
        ])
    }
}

/// What `git ml probe` found: every probe's outcome against one target.
public struct ProbeReport: Sendable {
    public let target: String
    public let results: [ProbeResult]

    public var passed: Bool { results.allSatisfy(\.passed) }
    public var failures: Int { results.filter { !$0.passed }.count }
    /// One line per probe that drifted (answered 200, differently) or failed (any other answer, or none), for a
    /// gate row or a refusal.
    public var problems: [String] {
        results.filter { !$0.passed }.map {
            "\($0.name) (line \($0.line)) \($0.status == 200 ? "drifted" : "failed"): \($0.detail)"
        }
    }

    public var json: JSONValue {
        .object([
            "format": .int(1), "target": .string(target), "passed": .bool(passed),
            "probes": .int(Int64(results.count)), "failed": .int(Int64(failures)),
            "results": .array(results.map(\.json)),
        ])
    }
}

extension Gateway {
    /// Replays golden probes against a model version, started as `git ml serve` would start it (its artifacts
    /// verified, its backend health-checked, then stopped), or against `url` (a vendor's endpoint) with `headers`.
    /// Blocks the calling thread.
    public static func probe(
        _ options: Options, model: String, version: Int?, url: String?, headers: [(String, String)],
        probes: [GoldenProbe], digest: String? = nil
    ) throws -> ProbeReport {
        let result = Synchronization.Mutex<Result<ProbeReport, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let outcome: Result<ProbeReport, Error>
            do {
                outcome = .success(
                    try await runProbe(
                        options, model: model, version: version, url: url, headers: headers, probes: probes,
                        digest: digest))
            } catch {
                outcome = .failure(error)
            }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        guard let outcome = result.withLock({ $0 }) else {
            throw ServeError.nothingToServe(model: model, reference: "")
        }
        return try outcome.get()
    }

    private static func runProbe(
        _ options: Options, model: String, version: Int?, url: String?, headers: [(String, String)],
        probes: [GoldenProbe], digest: String?
    ) async throws -> ProbeReport {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        for (name, value) in headers {
            guard let field = HTTPField.Name(name) else {
                throw LineageError.badArgument(
                    "--header \(name): not a header name", hint: "use --header 'Name: value'")
            }
            fields[field] = value
        }
        if let url {
            guard let parsed = ProbeURL(url) else {
                throw LineageError.badArgument(
                    "--url must be http:// or https:// with a host and a path, without user info",
                    hint: "for example --url https://api.example.com/v1/chat/completions")
            }
            let backend = Backend(
                model: model, version: version ?? 0, base: parsed.origin, health: nil, launch: nil,
                timeoutMilliseconds: 60_000, onRestart: {}, onHealth: { _ in })
            var results: [ProbeResult] = []
            for probe in probes {
                results.append(await send(probe, to: backend, path: parsed.path, headers: fields, timeout: 60_000))
            }
            await backend.stop(grace: 0)
            return ProbeReport(target: parsed.origin + parsed.path, results: results)
        }
        let files = Beneath(root: options.root)
        var config = try ServeConfig.parse(
            try files.read(options.configPath, limit: 1 << 20), source: options.configPath)
        guard let settings = config.models[model] else {
            throw LineageError.badArgument(
                "\(options.configPath) does not say how to serve \(model)",
                hint: "add models.\(model) with its backend, or probe a running endpoint with --url")
        }
        guard case .managed = settings.backend else {
            throw LineageError.badArgument(
                "\(options.configPath) serves \(model) from a running server, which is not version-specific",
                hint: "probe that server with --url, or give the model a backend command: in serve.yaml")
        }
        config.log.enabled = false
        let gateway = try Gateway(options: options, config: config)
        let served = try await gateway.prepare(settings, pin: version)
        if let digest, served.verified.digest != digest {
            await served.backend.stop()
            ScratchDirectory.remove(served.verified.directory)
            throw ServeError.notTheJudgedVersion(model: model, version: served.verified.version)
        }
        let report = await replay(probes, on: served.backend, settings: settings, headers: fields)
        await served.backend.stop()
        ScratchDirectory.remove(served.verified.directory)
        return report
    }

    /// Replays `probes` against a version's started backend, each on its own path or the model's predict route.
    static func replay(
        _ probes: [GoldenProbe], on backend: Backend, settings: ServeConfig.ModelSettings, headers: HTTPFields? = nil
    ) async -> ProbeReport {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        var results: [ProbeResult] = []
        for probe in probes {
            results.append(
                await send(
                    probe, to: backend, path: probe.path ?? "/v1/models/\(settings.name):predict",
                    headers: headers ?? fields, timeout: settings.timeoutMilliseconds))
        }
        return ProbeReport(target: "\(settings.name)@\(backend.version)", results: results)
    }

    /// The `probe` gate where a version can be started (`gate check`, `rollout start`, a clone's push check): the
    /// version started as `git ml serve` starts it, from `workspace`'s serve.yaml and object store (and only if its
    /// version file is the one judged, so a push is not vouched for by another checkout's version), the golden file
    /// replayed, and the failures (or why it could not be started) as the check's problems. Blocks the calling
    /// thread.
    public static func probeExaminer(
        workspace: Workspace, cardExaminer: GateRunner.CardExaminer?
    ) -> GateRunner.ProbeExaminer {
        { model, version, digest, golden, bytes in
            let probes: [GoldenProbe]
            do {
                probes = try GoldenProbe.parse(bytes, source: golden)
            } catch let error as GitMLError {
                return [error.message]
            }
            let options = Options(
                root: workspace.root, configPath: ServeConfig.path, host: nil, port: nil, token: nil,
                environment: workspace.environment, cardExaminer: cardExaminer)
            do {
                return try probe(
                    options, model: model, version: version, url: nil, headers: [], probes: probes, digest: digest
                ).problems
            } catch let error as GitMLError {
                return ["\(model)@\(version) could not be started for its golden probes: \(error.description)"]
            }
        }
    }

    private static func send(_ probe: GoldenProbe, to backend: Backend, path: String, headers: HTTPFields, timeout: Int)
        async -> ProbeResult
    {
        let body = ByteBuffer(bytes: Array(JSONWriter.compact(probe.request).utf8))
        do {
            let answer = try await Proxy.forward(
                backend: backend, method: .post, path: path, headers: headers, body: body,
                timeoutMilliseconds: timeout, dropAuthorization: false)
            var status = 0
            var output: [UInt8] = []
            switch answer {
            case .whole(let code, _, let bytes):
                status = code
                output = Array(bytes.readableBytesView)
            case .stream(let code, _, _): status = code
            }
            guard status == 200 else {
                return ProbeResult(
                    name: probe.name, line: probe.line, status: status, passed: false, detail: "answered \(status)")
            }
            let (passed, detail) = probe.check(output)
            return ProbeResult(name: probe.name, line: probe.line, status: status, passed: passed, detail: detail)
        } catch let failure as Proxy.Failure {
            return ProbeResult(
                name: probe.name, line: probe.line, status: failure.status, passed: false, detail: failure.message)
        } catch {
            return ProbeResult(name: probe.name, line: probe.line, status: 0, passed: false, detail: "\(error)")
        }
    }
}

/// `http[s]://host[:port]/path`, split into its origin and path; user info, a query's secrets or a fragment are
/// refused (a key goes in --header, never in a URL that a report would print).
struct ProbeURL {
    let origin: String
    let path: String

    init?(_ text: String) {
        guard text.count < 2048, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), !text.contains("@"),
            !text.contains("#"), !text.contains("?")
        else { return nil }
        let scheme: String
        if text.hasPrefix("https://") {
            scheme = "https://"
        } else if text.hasPrefix("http://") {
            scheme = "http://"
        } else {
            return nil
        }
        let rest = text.dropFirst(scheme.count)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { return nil }
        origin = scheme + rest[..<slash]
        path = String(rest[slash...])
    }
}
