import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
private let client = fixtures.appendingPathComponent("serve_client.py").path

/// A project whose model `m` has version 1 (a model file with offset 100) in staging, gates passed, the test
/// backend committed at serving/test_backend.py, and a serve.yaml with `extra` settings for the model.
private func project(_ extra: String = "", top: String = "", name: String = #function) throws -> TempRepo {
    let repo = try TempRepo(name: name)
    repo.putGitMLOnPath()
    #expect(try repo.gitML(["init"]).status == 0)
    try repo.write(
        ".mlops/gates.yaml", "version: 1\nstaging:\n  - metric: acc\n    min: 0.5\n  - lineage: true\nproduction: []\n")
    try repo.write(
        "serving/test_backend.py",
        try String(contentsOf: fixtures.appendingPathComponent("test_backend.py"), encoding: .utf8))
    try register(repo, offset: 100, version: 1)
    try repo.write(
        ".mlops/serve.yaml",
        """
        \(top)
        models:
          m:
            stage: staging
            backend:
              command: [python3, serving/test_backend.py, --model, "{artifact}", --port, "{port}"]
              health: /healthz
        \(extra)
        """)
    try repo.commitAll("served model")
    return repo
}

/// Records a run whose artifact is a model file with `offset`, registers it and promotes it to staging.
private func register(_ repo: TempRepo, offset: Int, version: Int) throws {
    try repo.write("model.json", "{\"offset\": \(offset)}\n")
    try repo.write("train.csv", "a,b\n" + (0..<200).map { "\($0 % 7),\($0 % 5)" }.joined(separator: "\n") + "\n")
    try repo.commitAll("model \(version)")
    let run = try repo.gitML([
        "snapshot", "--seed", "1", "--metric", "acc=0.9", "--artifact", "model.json", "--profile", "train.csv",
    ])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try repo.gitML(["model", "register", "m"]).status == 0)
    let gate = try repo.gitML(["gate", "check", "m", String(version), "--to", "staging"])
    #expect(gate.status == 0, "\(gate.stdout)\(gate.stderr)")
    let promote = try repo.gitML(["model", "promote", "m", String(version), "--to", "staging", "--reason", "test"])
    #expect(promote.status == 0, "\(promote.stderr)")
}

private func ready(_ gateway: ServeProcess, seconds: Double = 30) throws -> Bool {
    try ServeProcess.eventually(seconds) { try HTTPExchange.send(gateway.url("/readyz")).status == 200 }
}

private func predict(_ gateway: ServeProcess, _ body: String = #"{"instances": [[1, 2], [3, 4]]}"#, test: String? = nil)
    throws -> HTTPExchange
{
    try HTTPExchange.send(
        gateway.url("/v1/models/m:predict"), method: "POST", body: body, headers: test.map { ["x-test": $0] } ?? [:])
}

/// Runs the test client (the test-tools virtualenv's python when present, for prometheus_client).
private func clientRun(_ arguments: [String]) throws -> JSONValue {
    let python = TestTools.path("python3") ?? "/usr/bin/python3"
    let result = try TempRepo.run(python, [client] + arguments, in: "/", environment: [:])
    #expect(result.status == 0, "\(result.stderr)")
    return try json(result.stdout)
}

private func backendPort(_ gateway: ServeProcess, version: Int = 1) -> Int? {
    guard let range = gateway.log.range(of: "m@\(version) ") else { return nil }
    let rest = gateway.log[range.upperBound...]
    guard let at = rest.range(of: "serving it at http://127.0.0.1:") else { return nil }
    return Int(rest[at.upperBound...].prefix { $0.isNumber })
}

@Suite("git ml serve: a lineage-verified gateway, with real backends on loopback", .serialized)
struct ServeEndToEndTests {
    @Test("predict through the gateway: headers name the version, /v1/models its lineage, SIGTERM exits 0")
    func predictThroughGateway() throws {
        let repo = try project()
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let answer = try predict(gateway)
        #expect(answer.status == 200, "\(answer.body)")
        #expect(answer.json["predictions"] == .array([.int(103), .int(107)]))
        #expect(answer.headers["x-git-ml-model"] == "m")
        #expect(answer.headers["x-git-ml-version"] == "1")
        let list = try HTTPExchange.send(gateway.url("/v1/models")).json["models"]?.array?.first
        let run = list?["run"]?.string ?? ""
        #expect(answer.headers["x-git-ml-run"] == run && run.count == 64)
        #expect(list?["stage"] == .string("staging"))
        #expect(list?["commit"]?.string?.count == 40)
        let digest = try TempRepo.sha256(Array("{\"offset\": 100}\n".utf8))
        #expect(list?["artifacts"]?.array?.first?["sha256"] == .string(digest))
        // The backend reads the verified copy in git-ml's cache, never the work tree's file.
        #expect(gateway.log.contains("verified and healthy"))
        let v2 = try HTTPExchange.send(
            gateway.url("/v2/models/m/infer"), method: "POST", body: #"{"instances": [[5]]}"#)
        #expect(v2.status == 200 && v2.headers["x-git-ml-version"] == "1")
        let unknown = try HTTPExchange.send(gateway.url("/v1/models/nope:predict"), method: "POST", body: "{}")
        #expect(unknown.status == 404 && unknown.json["error"]?["code"] == .string("model-not-found"))

        gateway.signal(SIGTERM)
        #expect(gateway.wait(seconds: 20) == 0, "\(gateway.log)")
        let port = backendPort(gateway) ?? 0
        #expect(try HTTPExchange.send("http://127.0.0.1:\(port)/healthz").status == 0, "the backend was stopped")
        // Train-serve skew: the logged instances (arrays, in the profile's column order) against the training profile.
        let drift = try repo.gitML(["drift", "m@staging", "--from-log", "--since", "1h", "--format", "json"])
        #expect(drift.status == 0 || drift.status == 1, "\(drift.stderr)")
        let columns = try json(drift.stdout)["columns"]?.array?.compactMap { $0["column"]?.string } ?? []
        #expect(Set(columns) == ["a", "b"], "\(drift.stdout)")
        #expect(drift.stdout.contains("3 rows from 2 requests"), "\(drift.stdout)")
    }

    @Test("a tampered object refuses its version: 503 lineage-mismatch naming both digests, nothing served")
    func tamperedObject() throws {
        let repo = try project()
        let digest = try TempRepo.sha256(Array("{\"offset\": 100}\n".utf8))
        let object = repo.root + "/.mlops/cache/objects/" + digest
        chmod(object, 0o644)
        try Data("{\"offset\": 666}\n".utf8).write(to: URL(fileURLWithPath: object))
        let gateway = try ServeProcess(repo)
        #expect(try ServeProcess.eventually { gateway.log.contains("refused") }, "\(gateway.log)")
        #expect(try HTTPExchange.send(gateway.url("/readyz")).status == 503)
        let answer = try predict(gateway)
        #expect(answer.status == 503)
        #expect(answer.json["error"]?["code"] == .string("lineage-mismatch"))
        let message = answer.json["error"]?["message"]?.string ?? ""
        #expect(message.contains("model.json") && message.contains(digest), "\(message)")
        #expect(gateway.log.contains("model.json") && gateway.log.contains("expected \(digest) got "))
        #expect(!gateway.log.contains("serving it at"), "no backend was started")
        let metrics = try HTTPExchange.send(gateway.url("/metrics")).body
        #expect(metrics.contains("git_ml_lineage_refusals_total 1"))

        // Put the right bytes back; SIGHUP verifies again and serves.
        try Data("{\"offset\": 100}\n".utf8).write(to: URL(fileURLWithPath: object))
        gateway.signal(SIGHUP)
        #expect(try ready(gateway), "\(gateway.log)")
        #expect(try predict(gateway).status == 200)
    }

    @Test("a forged stage event serves nothing: the gateway evaluates the gates again")
    func forgedPromotion() throws {
        let repo = try project()
        // Lower the bar after the fact is not enough: raise it, so version 1 no longer passes staging's gates.
        try repo.write(".mlops/gates.yaml", "version: 1\nstaging:\n  - metric: acc\n    min: 0.99\nproduction: []\n")
        let gateway = try ServeProcess(repo)
        #expect(try ServeProcess.eventually { gateway.log.contains("refused") }, "\(gateway.log)")
        let answer = try predict(gateway)
        #expect(
            answer.status == 503 && answer.json["error"]?["code"] == .string("promotion-unverified"), "\(answer.body)")
    }

    @Test("backend failures: slow is 504, garbage 502, a crash is restarted, an oversized body 413")
    func backendFailures() throws {
        let repo = try project("    timeout_ms: 700\n", top: "max_body_bytes: 4000\n")
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        #expect(try predict(gateway, test: "slow").status == 504)
        let garbage = try predict(gateway, test: "garbage")
        #expect(garbage.status == 502, "\(garbage.body)")
        #expect(try HTTPExchange.send(gateway.url("/healthz")).status == 200, "the gateway is still up")
        #expect(try predict(gateway).status == 200)
        let big = "{\"instances\": [[" + String(repeating: "1,", count: 3000) + "1]]}"
        let oversized = try predict(gateway, big)
        #expect(oversized.status == 413 && oversized.json["error"]?["code"] == .string("body-too-large"))

        let killed = try predict(gateway, test: "die-before-headers")
        #expect([502, 503].contains(killed.status), "\(killed.status) \(killed.body)")
        #expect(try ready(gateway), "restarted: \(gateway.log)")
        #expect(try predict(gateway).status == 200)
        let cut = try predict(gateway, test: "die-mid-body")
        #expect(cut.status == 502, "a cut body is a clean 502, not a truncated 200: \(cut.body)")
        #expect(try ready(gateway), "restarted again: \(gateway.log)")
        #expect(try predict(gateway).json["predictions"] == .array([.int(103), .int(107)]))
        let metrics = try HTTPExchange.send(gateway.url("/metrics")).body
        #expect(metrics.contains("git_ml_backend_restarts_total 2"), "\(metrics)")
    }

    @Test("archiving the served version stops serving it: the stage names nothing, so nothing is served")
    func archivedStopsServing() throws {
        let repo = try project(top: "reload_seconds: 0.5\n")
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        #expect(try repo.gitML(["model", "archive", "m", "1", "--reason", "bad"]).status == 0)
        #expect(try ServeProcess.eventually { try predict(gateway).status == 503 }, "\(gateway.log)")
        #expect(try predict(gateway).json["error"]?["code"] == .string("nothing-to-serve"))
        #expect(try HTTPExchange.send(gateway.url("/readyz")).status == 503)
        #expect(gateway.log.contains("no longer in staging"))
    }

    @Test("a restarted backend gets its files re-hashed first: changed bytes are refused, not served")
    func restartReverifies() throws {
        let repo = try project()
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let digest = try TempRepo.sha256(Array("{\"offset\": 100}\n".utf8))
        let object = repo.root + "/.mlops/cache/objects/" + digest
        chmod(object, 0o644)
        try Data("{\"offset\": 666}\n".utf8).write(to: URL(fileURLWithPath: object))  // same size, in place
        _ = try predict(gateway, test: "die-before-headers")
        #expect(
            try ServeProcess.eventually { try predict(gateway).json["error"]?["code"] == .string("lineage-mismatch") },
            "\(gateway.log)")
        #expect(gateway.log.contains("not restarted"))
    }

    @Test("a backend holds none of the gateway's sockets, and a killed gateway's backends are stopped by the next")
    func backendsOutliveNothing() throws {
        let repo = try project()
        var gateway: ServeProcess? = try ServeProcess(repo)
        let first = try #require(gateway)
        #expect(try ready(first), "\(first.log)")
        let port = first.port
        let backend = try #require(backendPort(first))
        first.signal(SIGKILL)
        #expect(first.wait(seconds: 10) != nil)
        // Nothing listens on the gateway's port any more: the backend did not inherit its socket.
        let probe = try TempRepo.run(
            "/usr/bin/python3",
            [
                "-c",
                "import socket,sys\ntry:\n socket.create_connection(('127.0.0.1', \(port)), 2)\n print('open')\nexcept OSError:\n print('closed')",
            ],
            in: "/", environment: [:])
        #expect(probe.stdout.contains("closed"), "\(probe.stdout)\(probe.stderr)")
        #expect(try HTTPExchange.send("http://127.0.0.1:\(backend)/healthz").status == 200, "the orphan still runs")
        gateway = nil
        let second = try ServeProcess(repo)
        #expect(try ready(second), "\(second.log)")
        #expect(try HTTPExchange.send("http://127.0.0.1:\(backend)/healthz").status == 0, "the orphan was stopped")
    }

    @Test("all backends down: readiness fails and routes answer 503, the gateway stays up")
    func allBackendsDown() throws {
        let repo = try project()
        try repo.write(
            ".mlops/serve.yaml",
            "models:\n  m:\n    stage: staging\n    startup_seconds: 1\n    backend: {url: \"http://127.0.0.1:9\", health: /healthz}\n"
        )
        let gateway = try ServeProcess(repo)
        #expect(try ServeProcess.eventually { gateway.log.contains("refused") }, "\(gateway.log)")
        #expect(try HTTPExchange.send(gateway.url("/readyz")).status == 503)
        let answer = try predict(gateway)
        #expect(answer.status == 503 && answer.json["error"]?["code"] == .string("backend-unhealthy"), "\(answer.body)")
        #expect(try HTTPExchange.send(gateway.url("/healthz")).status == 200)
    }

    @Test("a stage change reloads with zero failed requests in a request loop")
    func stageChangeReload() throws {
        let repo = try project(top: "reload_seconds: 0.5\n")
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let python = TestTools.path("python3") ?? "/usr/bin/python3"
        let loop = try TempRepo.start(
            python, [client, "loop", gateway.url("/v1/models/m:predict"), "8", #"{"instances": [[1]]}"#], in: "/",
            environment: [:])
        usleep(1_000_000)
        try register(repo, offset: 200, version: 2)
        let result = try json(try loop.wait().stdout)
        #expect(result["failed"] == .array([]), "\(result)")
        #expect(result["versions"] == .array([.string("1"), .string("2")]), "\(result) \(gateway.log)")
        #expect((result["ok"]?.int(in: 0...1_000_000) ?? 0) > 20)
        #expect(try predict(gateway, #"{"instances": [[1]]}"#).json["predictions"] == .array([.int(201)]))
    }

    @Test("SIGTERM under load: every in-flight request finishes, then exit 0")
    func drainOnSigterm() throws {
        let repo = try project("    timeout_ms: 10000\n")
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let python = TestTools.path("python3") ?? "/usr/bin/python3"
        let load = try TempRepo.start(
            python,
            [
                client, "concurrent", gateway.url("/v1/models/m:predict"), "6", #"{"instances": [[INDEX]]}"#,
                #"{"x-test": "slow"}"#,
            ],
            in: "/", environment: [:])
        usleep(700_000)
        gateway.signal(SIGTERM)
        let answers = try json(try load.wait().stdout)["answers"]?.array ?? []
        #expect(answers.count == 6)
        for (index, answer) in answers.enumerated() {
            #expect(answer.array?.first == .int(200), "\(answer)")
            #expect((answer.array?[1].string ?? "").contains("\(index + 100)"), "\(answer)")
        }
        #expect(gateway.wait(seconds: 20) == 0, "\(gateway.log)")
    }

    @Test("server-sent events arrive chunk by chunk, and their usage counts tokens and cost")
    func streaming() throws {
        let repo = try project("    price: {input_per_1k_tokens: 1, output_per_1k_tokens: 2}\n")
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let stream = try clientRun(["stream", gateway.url("/v1/chat/completions"), #"{"model": "m", "stream": true}"#])
        #expect(stream["status"] == .int(200))
        let chunks = stream["chunks"]?.array ?? []
        #expect(chunks.count == 5, "\(stream)")
        let arrivals = chunks.compactMap { $0.array?.first?.number }
        // The first event reached the client while the backend was still sleeping before the third.
        if arrivals.count == 5 { #expect(arrivals[2] - arrivals[0] > 0.6, "\(arrivals)") }
        let whole = try HTTPExchange.send(gateway.url("/v1/chat/completions"), method: "POST", body: #"{"model": "m"}"#)
        #expect(whole.status == 200 && whole.headers["x-git-ml-version"] == "1")
        guard TestTools.path("python3") != nil else { return }
        let metrics = try clientRun(["metrics", gateway.url("/metrics")])
        let labels = #"{"direction": "input", "model": "m", "version": "1"}"#
        #expect(metrics["git_ml_tokens_total"]?[labels]?.number == 12, "\(metrics)")
        #expect(metrics["git_ml_tokens_total"]?[labels.replacingOccurrences(of: "input", with: "output")]?.number == 6)
        #expect(metrics["git_ml_cost_total"]?[#"{"model": "m", "version": "1"}"#]?.number == 0.012 + 0.012)
        #expect(metrics["git_ml_time_to_first_token_seconds_count"]?[#"{"model": "m", "version": "1"}"#]?.number == 1)
        #expect(metrics["git_ml_requests_total"]?[#"{"code": "200", "model": "m", "version": "1"}"#]?.number == 2)
    }

    @Test("micro-batching: concurrent requests share backend calls and each gets its own predictions")
    func batching() throws {
        let repo = try project("    batch: {max_size: 8, max_latency_ms: 300}\n")
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let result = try clientRun([
            "concurrent", gateway.url("/v1/models/m:predict"), "8", #"{"instances": [[INDEX]]}"#,
        ])
        let answers = result["answers"]?.array ?? []
        for (index, answer) in answers.enumerated() {
            #expect(answer.array?.first == .int(200))
            #expect(answer.array?[1].string == #"{"predictions":[\#(index + 100)]}"# + "\n", "\(answer)")
        }
        let port = backendPort(gateway) ?? 0
        let calls = try HTTPExchange.send("http://127.0.0.1:\(port)/calls").json["calls"]?.array ?? []
        #expect(calls.count < 8 && calls.count >= 1, "\(calls)")
        #expect(calls.compactMap { $0.int(in: 0...100) }.reduce(0, +) == 8)
        // A backend that answers the wrong number of predictions fails that batch's requests, not the gateway.
        let wrong = try predict(gateway, #"{"instances": [[1], [-1]]}"#)
        #expect(wrong.status == 502, "\(wrong.body)")
        #expect(try predict(gateway).status == 200)
    }

    @Test("a bearer token guards every route but health, compared whole")
    func bearerToken() throws {
        let repo = try project()
        let gateway = try ServeProcess(repo, environment: ["GIT_ML_SERVE_TOKEN": "s3cret-token"])
        #expect(try HTTPExchange.send(gateway.url("/healthz")).status == 200)
        #expect(try ServeProcess.eventually { try HTTPExchange.send(gateway.url("/readyz")).status == 200 })
        #expect(try predict(gateway).status == 401)
        let wrong = try HTTPExchange.send(
            gateway.url("/v1/models/m:predict"), method: "POST", body: "{}", headers: ["authorization": "Bearer s3cret"]
        )
        #expect(wrong.status == 401)
        let right = try HTTPExchange.send(
            gateway.url("/v1/models/m:predict"), method: "POST", body: #"{"instances": [[1]]}"#,
            headers: ["authorization": "Bearer s3cret-token"])
        #expect(right.status == 200)
        #expect(!gateway.log.contains("s3cret"))
    }

    @Test("DNS rebinding: a Host name that is not this gateway's is refused; addresses and localhost pass")
    func hostCheck() throws {
        let repo = try project()
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let body = #"{"instances": [[1]]}"#
        let rebound = try HTTPExchange.send(
            gateway.url("/v1/models/m:predict"), method: "POST", body: body, headers: ["Host": "attacker.example"])
        #expect(rebound.status == 403 && rebound.json["error"]?["code"] == .string("host-not-allowed"))
        for host in ["localhost:\(gateway.port)", "127.0.0.1", "[::1]:80"] {
            let allowed = try HTTPExchange.send(
                gateway.url("/v1/models/m:predict"), method: "POST", body: body, headers: ["Host": host])
            #expect(allowed.status == 200, "\(host): \(allowed.body)")
        }
        // An OpenAI request naming a model that is not served is 404, as vLLM answers, not the only model's answer.
        let other = try HTTPExchange.send(
            gateway.url("/v1/chat/completions"), method: "POST", body: #"{"model": "gpt-4"}"#)
        #expect(other.status == 404, "\(other.body)")
    }

    @Test("a malformed serve.yaml is one line naming the key, exit 2, and nothing listens")
    func malformedConfig() throws {
        let repo = try project()
        try repo.write(
            ".mlops/serve.yaml",
            "models:\n  m:\n    stage: staging\n    backend: {url: \"http://127.0.0.1:1\"}\n    timeout: 5\n")
        let result = try repo.gitML(["serve", "--port", "0"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("models.m.timeout is not a setting"), "\(result.stderr)")
        try repo.write(".mlops/serve.yaml", "models:\n  m: {backend: {command: [python3, x.py]}}\n")
        let noPort = try repo.gitML(["serve", "--port", "0"])
        #expect(noPort.status == 2 && noPort.stderr.contains("{port}"), "\(noPort.stderr)")
        // The repository cannot expose the gateway beyond this machine: the command line must say so.
        try repo.write(
            ".mlops/serve.yaml", "listen: 0.0.0.0:0\nmodels:\n  m: {backend: {url: \"http://127.0.0.1:1\"}}\n")
        let exposed = try repo.gitML(["serve"])
        #expect(exposed.status == 2 && exposed.stderr.contains("--host 0.0.0.0"), "\(exposed.stderr)")
    }
}
