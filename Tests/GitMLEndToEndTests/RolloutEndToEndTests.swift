import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
private let client = fixtures.appendingPathComponent("serve_client.py").path
private let body = #"{"instances": [[1, 2]]}"#

/// A project whose model `m` has version 1 in production (a model file with offset 100) and version 2 registered
/// with `candidate` as its model file, served from production by the test backend.
private func project(
    candidate: String, top: String = "", gates: String = "production:\n  - ungated: true", name: String = #function
)
    throws -> TempRepo
{
    let repo = try TempRepo(name: name)
    repo.putGitMLOnPath()
    #expect(try repo.gitML(["init"]).status == 0)
    try repo.write(".mlops/gates.yaml", "version: 1\nstaging:\n  - ungated: true\n\(gates)\n")
    try repo.write(
        "serving/test_backend.py",
        try String(contentsOf: fixtures.appendingPathComponent("test_backend.py"), encoding: .utf8))
    try register(repo, model: #"{"offset": 100}"#, version: 1, production: true, accuracy: "0.97")
    try repo.write(
        ".mlops/serve.yaml",
        """
        \(top)
        models:
          m:
            backend:
              command: [python3, serving/test_backend.py, --model, "{artifact}", --port, "{port}"]
              health: /healthz
        """)
    try register(repo, model: candidate, version: 2, production: false)
    try repo.commitAll("two versions")
    return repo
}

private func register(_ repo: TempRepo, model: String, version: Int, production: Bool, accuracy: String = "0.9")
    throws
{
    try repo.write("model.json", model + "\n")
    try repo.commitAll("model \(version)")
    let run = try repo.gitML(["snapshot", "--seed", "1", "--metric", "acc=\(accuracy)", "--artifact", "model.json"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try repo.gitML(["model", "register", "m"]).status == 0)
    guard production else { return }
    let gate = try repo.gitML(["gate", "check", "m", String(version), "--to", "production"])
    #expect(gate.status == 0, "\(gate.stdout)\(gate.stderr)")
    let promote = try repo.gitML(["model", "promote", "m", String(version), "--to", "production", "--reason", "t"])
    #expect(promote.status == 0, "\(promote.stderr)")
}

private func python() -> String { TestTools.path("python3") ?? "/usr/bin/python3" }

private func clientRun(_ arguments: [String]) throws -> JSONValue {
    let result = try TempRepo.run(python(), [client] + arguments, in: "/", environment: [:])
    #expect(result.status == 0, "\(result.stderr)")
    return try json(result.stdout)
}

private func ready(_ gateway: ServeProcess) throws -> Bool {
    try ServeProcess.eventually(30) { try HTTPExchange.send(gateway.url("/readyz")).status == 200 }
}

private func startRollout(_ repo: TempRepo, _ arguments: [String]) throws {
    let start = try repo.gitML(["rollout", "start", "m", "2"] + arguments)
    #expect(start.status == 0, "\(start.stdout)\(start.stderr)")
}

private func rolloutStarted(_ gateway: ServeProcess) throws -> Bool {
    try ServeProcess.eventually(30) { gateway.log.contains("rollout m-v2-") && gateway.log.contains("weight") }
}

private func status(_ repo: TempRepo) throws -> JSONValue {
    let result = try repo.gitML(["rollout", "status", "m", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    return try json(result.stdout)
}

private func phase(_ repo: TempRepo) throws -> String { try status(repo)["phase"]?.string ?? "" }

private func production(_ repo: TempRepo) throws -> Int? {
    let show = try repo.gitML(["model", "show", "m@production", "--json"])
    return try json(show.stdout)["version"]?.int(in: 0...1_000_000)
}

/// A request loop running in the background for `seconds`.
private func loop(_ gateway: ServeProcess, seconds: Double) throws -> TempRepo.Running {
    try TempRepo.start(
        python(), [client, "loop", gateway.url("/v1/models/m:predict"), String(seconds), body], in: "/",
        environment: [:])
}

@Suite("git ml rollout: canary, shadow and blue-green through real gateways on loopback", .serialized)
struct RolloutEndToEndTests {
    @Test("a canary failing 20 % of requests is aborted within two intervals; afterwards only the stable answers")
    func failingCanaryAborts() throws {
        let repo = try project(candidate: #"{"offset": 200, "fail_every": 5}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        try startRollout(repo, ["--steps", "50,100", "--interval", "2s", "--min-requests", "20"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        let started = Date()
        let traffic = try loop(gateway, seconds: 6)
        #expect(try ServeProcess.eventually(10) { try phase(repo) == "aborted" }, "\(gateway.log)")
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 2 * 2 + 1.5, "aborted after \(elapsed) s")
        _ = try traffic.wait()
        #expect(try ServeProcess.eventually(5) { gateway.log.contains("ended (aborted by the analysis)") })
        let after = try clientRun(["latency", gateway.url("/v1/models/m:predict"), "100", body])
        #expect(after["ok"] == .int(100), "\(after)")
        #expect(after["versions"] == .object(["1": .int(100)]), "\(after)")
        // The decision and its numbers: in the rollout file, the registry's history and rollout status.
        let report = try status(repo)
        let last = report["intervals"]?.array?.last
        #expect(last?["verdict"] == .string("abort"), "\(report)")
        #expect((last?["candidate"]?["errors"]?.int(in: 1...100_000) ?? 0) > 0, "\(report)")
        #expect(try repo.read(".mlops/rollouts/m.yaml").contains("phase: aborted"))
        let history = try repo.gitML(["model", "history", "m"]).stdout
        #expect(history.contains("canary rollout abort") && history.contains("error rate"), "\(history)")
        // A version whose rollout was aborted is refused next time, unless --force (which is recorded).
        let again = try repo.gitML(["rollout", "start", "m", "2"])
        #expect(again.status == 1 && again.stderr.contains("aborted before"), "\(again.stderr)")
        let forced = try repo.gitML(["rollout", "start", "m", "2", "--force", "--interval", "1h"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try repo.read(".mlops/rollouts/m.yaml").contains("forced: \"a rollout of version 2 was aborted before"))
    }

    @Test("a slow canary (p99 over the bound) is aborted")
    func slowCanaryAborts() throws {
        let repo = try project(candidate: #"{"offset": 200, "delay_ms": 150}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        try startRollout(
            repo, ["--steps", "50,100", "--interval", "2s", "--min-requests", "5", "--max-p99-ms", "100"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        let traffic = try loop(gateway, seconds: 5)
        #expect(try ServeProcess.eventually(10) { try phase(repo) == "aborted" }, "\(gateway.log)")
        _ = try traffic.wait()
        let reason = try status(repo)["reason"]?.string ?? ""
        #expect(reason.contains("p99") && reason.contains("over 100 ms"), "\(reason)")
    }

    @Test("a healthy canary walks every step and ends promoted in the registry, the analysis as its evidence")
    func healthyCanaryPromotes() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        try startRollout(repo, ["--steps", "20,60,100", "--interval", "1.5s", "--min-requests", "10"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        let traffic = try loop(gateway, seconds: 12)
        #expect(try ServeProcess.eventually(20) { try phase(repo) == "promoted" }, "\(gateway.log)")
        let result = try json(try traffic.wait().stdout)
        #expect(result["failed"] == .array([]), "\(result)")
        #expect(try production(repo) == 2)
        let events = try status(repo)["events"]?.array ?? []
        let actions = events.compactMap { $0["action"]?.string }
        #expect(actions == ["start", "advance", "advance", "promote"], "\(actions)")
        let history = try json(try repo.gitML(["model", "history", "m", "--json"]).stdout)["events"]?.array ?? []
        let promotion = history.last { $0["kind"] == .string("stage") && $0["to"] == .string("production") }
        let evidence = events.last?["id"]?.string
        #expect(promotion?["evidence"]?.string == evidence && evidence != nil, "\(history)")
        #expect(events.last?["analysis"]?["verdict"] == .string("promote"))
        #expect(try ServeProcess.eventually(5) { gateway.log.contains("version 2 serves all traffic") })
        let after = try clientRun(["latency", gateway.url("/v1/models/m:predict"), "50", body])
        #expect(after["versions"] == .object(["2": .int(50)]), "\(after)")
    }

    @Test("two gateway processes send the same key to the same arm without talking to each other")
    func twoGatewaysAgree() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        let first = try ServeProcess(repo)
        let second = try ServeProcess(repo)
        #expect(try ready(first) && ready(second), "\(first.log)\(second.log)")
        try startRollout(repo, ["--steps", "50,100", "--interval", "1h", "--key", "header:x-user-id"])
        #expect(try rolloutStarted(first) && rolloutStarted(second), "\(first.log)\(second.log)")
        #expect(first.log.contains("another gateway analyses it") != second.log.contains("another gateway analyses it"))
        let a = try clientRun(["keyed", first.url("/v1/models/m:predict"), "60", body])["versions"]
        let b = try clientRun(["keyed", second.url("/v1/models/m:predict"), "60", body])["versions"]
        let again = try clientRun(["keyed", first.url("/v1/models/m:predict"), "60", body])["versions"]
        #expect(a == b && a == again, "\(String(describing: a)) \(String(describing: b))")
        let versions = a?.array?.compactMap(\.string) ?? []
        #expect(versions.count == 60 && Set(versions) == ["1", "2"], "\(versions)")
    }

    @Test("a hung shadow leaves the primary's p99 within 10 % of a run without it, and copies are still sent")
    func hungShadow() throws {
        let repo = try project(candidate: #"{"offset": 200, "hang": true}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let url = gateway.url("/v1/models/m:predict")
        try startRollout(repo, ["--strategy", "shadow", "--duration", "1h", "--interval", "1h"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        _ = try clientRun(["latency", url, "200", body])  // warm up connections and caches
        // Mirroring on and off (a paused shadow copies nothing), interleaved, so this machine's drift falls on both
        // alike; the median of each side's p99s is compared. scripts/test runs this test alone.
        var on: [Double] = []
        var off: [Double] = []
        // Off, on, on, off, ...: neither side is always measured first.
        for mirroring in [false, true, true, false, false, true, true, false] {
            #expect(try repo.gitML(["rollout", mirroring ? "resume" : "pause", "m"]).status == 0)
            usleep(600_000)
            let batch = try clientRun(["latency", url, "500", body])
            #expect(batch["versions"] == .object(["1": .int(500)]), "the primary answered every request: \(batch)")
            if mirroring { on.append(batch["p99"]?.number ?? .infinity) } else { off.append(batch["p99"]?.number ?? 0) }
        }
        // The copies were sent: the hung candidate holds as many as the mirror lets be in flight.
        let port = gateway.log.components(separatedBy: "candidate at http://127.0.0.1:").dropFirst().first.flatMap {
            Int($0.prefix { $0.isNumber })
        }
        let calls = try HTTPExchange.send("http://127.0.0.1:\(port ?? 0)/calls").json["calls"]?.array?.count ?? 0
        #expect(calls >= 16, "\(calls) copies reached the shadow: \(gateway.log)")
        #expect(try repo.gitML(["rollout", "abort", "m"]).status == 0)
        #expect(try ServeProcess.eventually(5) { gateway.log.contains("ended (the rollout is aborted)") })
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        // 10 %, plus 2 ms for this VM's scheduling: the client opens a connection per request and the p99 of 500
        // requests is their fifth slowest (wrk on a release build shows no difference: docs/benchmarks.md).
        #expect(
            median(on) <= median(off) * 1.1 + 2,
            "p99 with a hung shadow \(on) ms, without \(off) ms (medians \(median(on)), \(median(off)))")
        // The aborted candidate still holds hung copies; the drain stops it all the same (no orphan left).
        gateway.signal(SIGTERM)
        #expect(gateway.wait(seconds: 30) == 0, "\(gateway.log)")
        #expect(try HTTPExchange.send("http://127.0.0.1:\(port ?? 0)/healthz").status == 0, "the candidate was stopped")
    }

    @Test("a blue-green switch under load fails no request; blue stays warm, then the candidate is production")
    func blueGreenUnderLoad() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        let traffic = try loop(gateway, seconds: 8)
        usleep(1_500_000)
        try startRollout(repo, ["--strategy", "blue-green", "--keep-warm", "3s"])
        let result = try json(try traffic.wait().stdout)
        #expect(result["failed"] == .array([]), "\(result)")
        #expect(result["versions"] == .array([.string("1"), .string("2")]), "\(result) \(gateway.log)")
        #expect(try production(repo) == 2)
        #expect(try ServeProcess.eventually(10) { try phase(repo) == "promoted" }, "\(gateway.log)")
        #expect(gateway.log.contains("version 2 serves all traffic (the warm period ended)"), "\(gateway.log)")
    }

    @Test("model rollback during a canary puts all traffic on the rollback target within a second")
    func rollbackDuringCanary() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        try startRollout(repo, ["--steps", "50,100", "--interval", "1h"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        #expect(try status(repo)["rollback_target"] == .int(1))
        let split = try clientRun(["latency", gateway.url("/v1/models/m:predict"), "100", body])
        #expect(split["versions"]?["2"] != nil, "\(split)")
        let rollback = try repo.gitML(["model", "rollback", "m", "--reason", "incident"])
        #expect(rollback.status == 0, "\(rollback.stderr)")
        let issued = Date()
        var took = 0.0
        #expect(
            try ServeProcess.eventually(5) {
                let batch = try clientRun(["latency", gateway.url("/v1/models/m:predict"), "20", body])
                took = Date().timeIntervalSince(issued)
                return batch["versions"] == .object(["1": .int(20)])
            })
        #expect(took < 1.5, "all traffic on version 1 after \(took) s")
        #expect(try production(repo) == 1, "the rollback target stays in production")
        #expect(try phase(repo) == "aborted")
    }

    @Test("an unreadable rollout file sends all traffic to the stable version; a rollback --to aborts the rollout")
    func unreadableFileFailsSafe() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        try startRollout(repo, ["--steps", "50,100", "--interval", "1h"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        let plan = try repo.read(".mlops/rollouts/m.yaml")
        try repo.write(".mlops/rollouts/m.yaml", "<<<<<<< HEAD\n" + plan)
        #expect(try ServeProcess.eventually(5) { gateway.log.contains("ended (the rollout file is unreadable)") })
        let after = try clientRun(["latency", gateway.url("/v1/models/m:predict"), "40", body])
        #expect(after["versions"] == .object(["1": .int(40)]), "\(after)")
        let abort = try repo.gitML(["rollout", "abort", "m"])
        #expect(abort.status == 2 && abort.stderr.contains("all traffic to the stable version"), "\(abort.stderr)")
        // Restored, the gateway does not start it again until SIGHUP; a rollback naming a version aborts it.
        try repo.write(".mlops/rollouts/m.yaml", plan)
        let rollback = try repo.gitML(["model", "rollback", "m", "--to", "1", "--reason", "incident"])
        #expect(rollback.status == 0 && rollback.stdout.contains("aborted the rollout"), "\(rollback.stdout)")
        #expect(try phase(repo) == "aborted")
    }

    @Test("a gateway restarted mid-rollout resumes at the same step")
    func restartResumes() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        var gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        try startRollout(repo, ["--steps", "10,50,100", "--interval", "1.5s", "--min-requests", "15"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        // Bursts shorter than an interval, until the second step: without traffic a step holds.
        #expect(
            try ServeProcess.eventually(30) {
                _ = try clientRun(["latency", gateway.url("/v1/models/m:predict"), "150", body])
                return try status(repo)["state"]?["step"] == .int(1)
            }, "\(gateway.log)")
        gateway.signal(SIGTERM)
        #expect(gateway.wait(seconds: 20) == 0)
        #expect(try phase(repo) == "running", "stopping a gateway does not end a rollout")
        gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        #expect(try ServeProcess.eventually(30) { gateway.log.contains("resumed at step 2") }, "\(gateway.log)")
        let state = try status(repo)["state"]
        #expect(state?["step"] == .int(1) && state?["weight"] == .int(50), "\(String(describing: state))")
        // Paused, so that the analysis cannot advance to 100 % in the middle of the measurement.
        let pause = try repo.gitML(["rollout", "pause", "m"])
        #expect(pause.status == 0, "\(pause.stderr)")
        #expect(try ServeProcess.eventually(5) { gateway.log.contains("rollout paused, step 2") }, "\(gateway.log)")
        let split = try clientRun(["latency", gateway.url("/v1/models/m:predict"), "200", body])
        let candidate = split["versions"]?["2"]?.int(in: 0...200) ?? 0
        #expect((60...140).contains(candidate), "about half to the candidate: \(split)")
        #expect(try status(repo)["state"]?["step"] == .int(1), "a paused rollout holds its step")
    }

    @Test("start refuses what the registry would refuse; golden probes replay against a version")
    func refusalsAndProbes() throws {
        let repo = try project(
            candidate: #"{"offset": 200}"#, gates: "production:\n  - metric: acc\n    min: 0.95")
        let refused = try repo.gitML(["rollout", "start", "m", "2"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("gate metric acc") || refused.stderr.contains("acc"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: repo.root + "/.mlops/rollouts/m.yaml"), "nothing written")
        let forced = try repo.gitML(["rollout", "start", "m", "2", "--force"])
        #expect(forced.status == 1, "--force does not pass a failing gate: \(forced.stderr)")
        #expect(try repo.gitML(["rollout", "status", "m"]).status == 2)
        // Nothing is written that could not be read back: a sub-second interval is a usage error.
        #expect(try repo.gitML(["rollout", "start", "m", "2", "--interval", "0.5s"]).status == 64)
        // Golden probes: version 1 answers sum + 100.
        try repo.write(
            "probes.jsonl",
            """
            {"name": "sum", "request": {"instances": [[1, 2]]}, "response": {"predictions": [103]}}
            {"request": {"instances": [[1, 2]]}, "response": {"predictions": [103.0000001]}, "compare": "numeric", "tolerance": 0.001}

            """)
        let pass = try repo.gitML(["probe", "m@1", "--golden", "probes.jsonl", "--json"])
        #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
        #expect(try json(pass.stdout)["probes"] == .int(2))
        let drift = try repo.gitML(["probe", "m@2", "--golden", "probes.jsonl"])
        #expect(drift.status == 1 && drift.stdout.contains("2 of 2 golden probes drifted"), "\(drift.stdout)")
        // A server already running is not version-specific: it cannot be probed as a version.
        let managed = try repo.read(".mlops/serve.yaml")
        try repo.write(".mlops/serve.yaml", "models:\n  m:\n    backend: {url: \"http://127.0.0.1:9\"}\n")
        let url = try repo.gitML(["probe", "m@1", "--golden", "probes.jsonl"])
        #expect(url.status == 2 && url.stderr.contains("probe that server with --url"), "\(url.stderr)")
        try repo.write(".mlops/serve.yaml", managed)
        try repo.write("bad.jsonl", #"{"request": {}, "response": {}, "compare": "fuzzy"}"# + "\n")
        let bad = try repo.gitML(["probe", "m@1", "--golden", "bad.jsonl"])
        #expect(bad.status == 2 && bad.stderr.contains("bad.jsonl line 1"), "\(bad.stderr)")
    }

    @Test("a probe gate: gate check, rollout start and the gateway replay the golden file against the version")
    func probeGate() throws {
        // Version 1 answers 103 and version 2 answers 203: both within half of 203, so either passes this file.
        let either =
            #"{"request": {"instances": [[1, 2]]}, "response": {"predictions": [203]}, "compare": "numeric", "#
            + #""tolerance": 0.5}"# + "\n"
        let repo = try project(candidate: #"{"offset": 200}"#)
        try repo.write("probes.jsonl", either)
        try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - probe: probes.jsonl\n")
        let check = try repo.gitML(["gate", "check", "m", "2", "--to", "production", "--json"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let row = try json(check.stdout)["checks"]?.array?.first
        #expect(row?["check"] == .string("probe probes.jsonl") && row?["passed"] == .bool(true), "\(check.stdout)")
        // Only version 1 matches now: version 2 drifts, so its gates fail and a rollout of it is refused.
        let one = #"{"name": "sum", "request": {"instances": [[1, 2]]}, "response": {"predictions": [103]}}"#
        try repo.write("probes.jsonl", one + "\n")
        let drift = try repo.gitML(["gate", "check", "m", "2", "--to", "production"])
        #expect(
            drift.status == 1 && drift.stdout.contains("sum (line 1) drifted: differs"),
            "\(drift.stdout)\(drift.stderr)")
        let refused = try repo.gitML(["rollout", "start", "m", "2"])
        #expect(refused.status == 1 && refused.stderr.contains("probe probes.jsonl"), "\(refused.stderr)")
        // A golden file that is not there fails the gate; it is not skipped.
        try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - probe: missing.jsonl\n")
        let missing = try repo.gitML(["gate", "check", "m", "1", "--to", "production"])
        #expect(
            missing.status == 1 && missing.stdout.contains("missing.jsonl is not in the work tree"), "\(missing.stdout)"
        )
        // The gateway replays them too, against the backend it started, before any request reaches it: with a file
        // only version 2 matches, production (version 1) is refused.
        try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - probe: probes.jsonl\n")
        try repo.write("probes.jsonl", one.replacingOccurrences(of: "103", with: "203") + "\n")
        let gateway = try ServeProcess(repo)
        #expect(
            try ServeProcess.eventually(30) {
                gateway.log.contains("probe probes.jsonl: sum (line 1) drifted: differs")
            },
            "\(gateway.log)")
        let answer = try HTTPExchange.send(gateway.url("/v1/models/m:predict"), method: "POST", body: body)
        #expect(answer.status == 503, "\(answer.body)")
    }

    @Test("a push promoting a version is judged by the target's golden answers: editing them in the push does not pass")
    func probeGateAtPush() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        let remote = try repo.addBareRemote()
        try repo.git("push", "-q", "origin", "main")
        #expect(try repo.gitML(["hook", "install"]).status == 0)
        // The target's policy: a probe gate whose golden answer only version 1 (sum + 100) gives.
        let one = #"{"name": "sum", "request": {"instances": [[1, 2]]}, "response": {"predictions": [103]}}"#
        try repo.write("probes.jsonl", one + "\n")
        try repo.write(
            ".mlops/gates.yaml", "version: 1\nstaging:\n  - ungated: true\nproduction:\n  - probe: probes.jsonl\n")
        try repo.commitAll("gate production on golden probes")
        try repo.git("push", "-q", "origin", "main")
        // The pusher rewrites the answer to version 2's, so the gates pass in the work tree, and promotes it.
        try repo.write("probes.jsonl", one.replacingOccurrences(of: "103", with: "203") + "\n")
        let gate = try repo.gitML(["gate", "check", "m", "2", "--to", "production"])
        #expect(gate.status == 0, "\(gate.stdout)\(gate.stderr)")
        #expect(try repo.gitML(["model", "promote", "m", "2", "--to", "production"]).status == 0)
        try repo.commitAll("promote m 2")
        let before = try repo.remoteTip()
        let pushed = try repo.gitResult("push", "origin", "main")
        #expect(pushed.status != 0, "\(pushed.stderr)")
        #expect(pushed.stderr.contains("blocked: m 2 -> production"), "\(pushed.stderr)")
        #expect(pushed.stderr.contains("sum (line 1) drifted: differs"), "\(pushed.stderr)")
        #expect(try repo.remoteTip() == before)
        // The version started must be the one judged: a work tree whose version file differs is not replayed.
        let versionFile = ".mlops/models/m/versions/2.json"
        try repo.write(versionFile, try repo.read(versionFile) + " ")
        let range = try repo.gitML(["verify", "--range", "origin/main..HEAD"])
        #expect(
            range.status == 1 && range.stderr.contains("not the version being judged"), "\(range.stdout)\(range.stderr)"
        )
        try repo.git("checkout", "--", versionFile)
        // A server cannot start a backend: there the row fails, with a fix that can work.
        let install = try TempRepo.run(
            TempRepo.binary, ["hook", "install", "--server"], in: remote, environment: repo.environment)
        #expect(install.status == 0, "\(install.stderr)")
        let server = try repo.gitResult("push", "--no-verify", "origin", "main")
        #expect(server.status != 0 && server.stderr.contains("remote: blocked: m 2 -> production"), "\(server.stderr)")
        #expect(server.stderr.contains("which this host cannot do"), "\(server.stderr)")
        #expect(server.stderr.contains("keep probe checks out of the policy this server enforces"), "\(server.stderr)")
        #expect(try repo.remoteTip() == before)
    }

    @Test("a canary keyed by a JSON field sends each value to one arm, and both arms get values")
    func jsonKeyedCanary() throws {
        let repo = try project(candidate: #"{"offset": 200}"#)
        let gateway = try ServeProcess(repo)
        #expect(try ready(gateway), "\(gateway.log)")
        try startRollout(repo, ["--steps", "50,100", "--interval", "1h", "--key", "json:user"])
        #expect(try rolloutStarted(gateway), "\(gateway.log)")
        var arms: [String: Set<String>] = [:]
        for round in 0..<2 {
            for user in 0..<20 {
                let answer = try HTTPExchange.send(
                    gateway.url("/v1/models/m:predict"), method: "POST",
                    body: #"{"instances": [[1, 2]], "user": "u\#(user)"}"#)
                #expect(answer.status == 200, "round \(round): \(answer.body)")
                arms["u\(user)", default: []].insert(answer.headers["x-git-ml-version"] ?? "")
            }
        }
        #expect(arms.values.allSatisfy { $0.count == 1 }, "each user stays on one arm: \(arms)")
        #expect(Set(arms.values.flatMap { $0 }) == ["1", "2"], "both arms: \(arms)")
    }
}
