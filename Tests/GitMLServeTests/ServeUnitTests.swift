import GitMLBasics
import GitMLRegistry
import Testing

@testable import GitMLServe

@Suite("serve.yaml: every key known, every number in range")
struct ServeConfigTests {
    private func parse(_ text: String) throws -> ServeConfig { try ServeConfig.parse(Array(text.utf8)) }

    private let minimal = "models:\n  churn:\n    backend: {command: [python3, b.py, --port, \"{port}\"]}\n"

    @Test("the issue's example parses to what it says")
    func example() throws {
        let config = try parse(
            """
            listen: 127.0.0.1:9090
            models:
              churn:
                stage: staging
                backend:
                  command: [python3, serving/backend.py, --model, "{artifact}", --port, "{port}"]
                  health: /healthz
                timeout_ms: 5000
                cache: false
                batch: {max_size: 32, max_latency_ms: 5}
                price: {input_per_1k_tokens: 0.0005, output_per_1k_tokens: 0.0015}
              llm:
                version: 3
                backend: {url: "http://127.0.0.1:9000/", health: /health}
            """)
        #expect(config.host == "127.0.0.1" && config.port == 9090)
        let churn = try #require(config.models["churn"])
        #expect(churn.stage == .staging && churn.reference == "staging")
        #expect(
            churn.backend
                == .managed(
                    command: ["python3", "serving/backend.py", "--model", "{artifact}", "--port", "{port}"],
                    health: "/healthz"))
        #expect(churn.batch == .init(maxSize: 32, maxLatencyMilliseconds: 5))
        #expect(churn.price == .init(inputPer1k: 0.0005, outputPer1k: 0.0015))
        let llm = try #require(config.models["llm"])
        #expect(llm.reference == "3" && llm.backend == .url("http://127.0.0.1:9000", health: "/health"))
        #expect(try parse(minimal).models["churn"]?.stage == .production)
    }

    @Test(
        "bad settings are refused with the key named",
        arguments: [
            (
                "models:\n  churn:\n    backend: {url: \"http://x:1\"}\n    timeout: 5\n",
                "models.churn.timeout is not a setting"
            ),
            (
                "models:\n  churn:\n    backend: {url: \"http://x:1\"}\n    timeout_ms: 99999999999999999999\n",
                "timeout_ms must be a whole number"
            ),
            (
                "models:\n  churn:\n    backend: {url: \"http://x:1\"}\n    timeout_ms: 0\n",
                "timeout_ms must be a whole number from 1"
            ),
            (
                "models:\n  churn:\n    backend: {url: \"http://x:1\"}\n    version: 2\n    stage: staging\n",
                "give stage or version, not both"
            ),
            ("models:\n  churn:\n    backend: {url: \"http://x:1\"}\n    stage: live\n", "stage must be one of"),
            ("models:\n  churn:\n    backend: {command: [python3, x.py]}\n", "add \"{port}\""),
            ("models:\n  churn:\n    backend: {url: \"http://user:pw@x:1\"}\n", "url must be http://host:port"),
            ("models:\n  churn:\n    backend: {url: \"https://x\"}\n", "url must be http://host:port"),
            (
                "models:\n  churn:\n    backend: {url: \"http://x:1\", command: [a, \"{port}\"]}\n",
                "needs either command"
            ),
            ("models:\n  churn:\n    backend: {url: \"http://x:1\", health: healthz}\n", "health must be a path"),
            ("models:\n  ../x:\n    backend: {url: \"http://x:1\"}\n", "not a model name"),
            ("models: {}\n", "name at least one model"),
            ("listen: nowhere\nmodels:\n  churn:\n    backend: {url: \"http://x:1\"}\n", "listen must be host:port"),
            (
                "listen: 127.0.0.1:70000\nmodels:\n  churn:\n    backend: {url: \"http://x:1\"}\n",
                "listen must be host:port"
            ),
            (
                "reload_seconds: 0.000001\nmodels:\n  churn:\n    backend: {url: \"http://x:1\"}\n",
                "reload_seconds must be 0 (only on SIGHUP) or from 0.5"
            ),
            (
                "log: {sample: 2}\nmodels:\n  churn:\n    backend: {url: \"http://x:1\"}\n",
                "log.sample must be a number from 0 to 1"
            ),
            (
                "models:\n  churn:\n    backend: {url: \"http://x:1\"}\n  churn:\n    backend: {url: \"http://x:2\"}\n",
                "churn"
            ),
            (
                "models:\n  churn:\n    backend: {url: \"http://x:1\"}\n    batch: {max_size: 0}\n",
                "batch.max_size must be a whole number from 1"
            ),
        ])
    func refused(_ text: String, _ expected: String) throws {
        do {
            _ = try parse(text)
            Issue.record("accepted: \(text)")
        } catch let error as GitMLError {
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test("listen addresses")
    func listen() {
        #expect(ServeConfig.parseListen("0.0.0.0:80")! == ("0.0.0.0", 80))
        #expect(ServeConfig.parseListen("[::1]:8080")! == ("::1", 8080))
        #expect(ServeConfig.parseListen(":9000")! == ("127.0.0.1", 9000))
        #expect(ServeConfig.parseListen("host") == nil)
        #expect(ServeConfig.parseListen("a/b:80") == nil)
    }
}

@Suite("The gateway's pure parts: placeholders, routes, tokens, streams, the cache, batching")
struct GatewayPartsTests {
    private let verified = VerifiedVersion(
        model: "churn", version: 3, stage: "production", run: String(repeating: "a", count: 64), commit: "",
        artifacts: [
            ModelArtifact(path: "model/weights.bin", sha256: String(repeating: "b", count: 64), size: 1),
            ModelArtifact(path: "tokenizer.json", sha256: String(repeating: "c", count: 64), size: 1),
        ], directory: "/srv/.mlops/cache/serve/churn/v3.1.42", digest: "")

    @Test("placeholders name the verified copies; unknown ones and an ambiguous {artifact} are errors")
    func placeholders() throws {
        let words = try Placeholders.substitute(
            [
                "serve", "--port={port}", "{artifact:tokenizer.json}", "{artifacts}", "{model}@{version}",
                "{\"json\": 1}",
            ],
            verified: verified, port: 4242)
        #expect(
            words == [
                "serve", "--port=4242", "/srv/.mlops/cache/serve/churn/v3.1.42/tokenizer.json",
                "/srv/.mlops/cache/serve/churn/v3.1.42", "churn@3", "{\"json\": 1}",
            ])
        #expect(throws: ServeError.self) { try Placeholders.substitute(["{artifact}"], verified: verified, port: 1) }
        #expect(throws: ServeError.self) {
            try Placeholders.substitute(["{artifact:nope}"], verified: verified, port: 1)
        }
        #expect(throws: ServeError.self) { try Placeholders.substitute(["{prot}"], verified: verified, port: 1) }
    }

    @Test("routes: KServe's colon form, v2 with and without versions, nothing else")
    func routes() {
        guard case .kserveV1("churn") = Routes.target(.post, "/v1/models/churn:predict") else {
            Issue.record("v1")
            return
        }
        guard case .kserveV2("churn") = Routes.target(.post, "/v2/models/churn/versions/2/infer") else {
            Issue.record("v2")
            return
        }
        #expect(Routes.target(.post, "/v1/models/a/b:predict") == nil)
        #expect(Routes.target(.post, "/v1/models/:predict") == nil)
        #expect(Routes.target(.get, "/v1/models/churn:predict") == nil)
        #expect(Routes.target(.post, "/v2/models/churn/x/y/infer") == nil)
        #expect(Routes.modelStatusName("/v2/models/churn/ready") == "churn")
        #expect(Routes.hostName("Example.COM:8080") == "example.com")
        #expect(Routes.hostName("[::1]:80") == "::1")
    }

    @Test("tokens compare whole")
    func tokens() {
        #expect(Routes.constantTimeEqual(Array("secret".utf8), Array("secret".utf8)))
        #expect(!Routes.constantTimeEqual(Array("secre".utf8), Array("secret".utf8)))
        #expect(!Routes.constantTimeEqual([], Array("secret".utf8)))
    }

    @Test("a stream's usage is read from its last usage event, across chunk boundaries")
    func streamUsage() {
        var usage = StreamUsage()
        let text = "data: {\"choices\":[]}\n\ndata: {\"usage\": {\"prompt_tokens\": 11, \"comp"
        usage.scan(Array(text.utf8))
        #expect(usage.totals == nil)
        usage.scan(Array("letion_tokens\": 4}}\n\ndata: [DONE]\n\n".utf8))
        #expect(usage.totals?.0 == 11 && usage.totals?.1 == 4)
    }

    @Test("the cache keeps the newest entries")
    func cache() {
        let cache = ResponseCache(capacity: 2)
        for i in 0..<5 { cache.put("k\(i)", .init(body: [UInt8(i)], contentType: "x")) }
        #expect(cache.get("k0") == nil && cache.get("k2") == nil)
        #expect(cache.get("k3")?.body == [3] && cache.get("k4")?.body == [4])
        #expect(ResponseCache.key(path: "/a", body: [1]) != ResponseCache.key(path: "/a", body: [2]))
    }

    @Test("batching gives each caller exactly its own predictions, and fails only the batch that failed")
    func batching() async {
        actor Calls {
            var sizes: [Int] = []
            func add(_ n: Int) { sizes.append(n) }
        }
        let calls = Calls()
        let batcher = Batcher(
            maxSize: 4, maxLatencyMilliseconds: 50, depth: { _ in },
            send: { instances in
                await calls.add(instances.count)
                if instances.contains(.int(-1)) { return .failure(.init(status: 500, body: [], contentType: "x")) }
                return .success(instances.map { JSONValue.int(Int64(($0.int(in: -100...100) ?? 0) * 10)) })
            })
        let answers = await withTaskGroup(of: (Int, BatchAnswer).self) { group in
            for i in 0..<10 {
                let pair: [JSONValue] = [.int(Int64(i)), .int(Int64(i))]
                group.addTask { (i, await batcher.submit(pair)) }
            }
            var all: [Int: BatchAnswer] = [:]
            for await (i, answer) in group { all[i] = answer }
            return all
        }
        for i in 0..<10 {
            guard case .predictions(let own) = answers[i] else {
                Issue.record("request \(i) failed")
                continue
            }
            let expected: [JSONValue] = [.int(Int64(i * 10)), .int(Int64(i * 10))]
            #expect(own == expected)
        }
        let sizes = await calls.sizes
        #expect(sizes.reduce(0, +) == 20 && sizes.allSatisfy { $0 <= 4 } && sizes.count < 10, "\(sizes)")
        let failed = await batcher.submit([JSONValue.int(-1)])
        guard case .failed(let status, _, _) = failed else {
            Issue.record("a failed call answered")
            return
        }
        #expect(status == 500)
    }
}
