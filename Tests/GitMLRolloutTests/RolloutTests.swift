import Foundation
import GitMLBasics
import GitMLRollout
import GitMLTestSupport
import Testing

private let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

private func plan(_ strategy: Strategy = .canary) -> RolloutPlan {
    var plan = RolloutPlan(
        id: "churn-v4-20261202T060000", model: "churn", candidate: 4, stable: 3, strategy: strategy,
        started: "2026-12-02T06:00:00.000000Z", by: "ana@example.com")
    plan.steps = strategy == .canary ? [5, 25, 50, 100] : []
    plan.intervalSeconds = 300
    plan.key = .header("x-user-id")
    plan.analysis.maxErrorRate = 0.01
    plan.analysis.maxP99Milliseconds = 300
    plan.analysis.maxLatencyRatio = 1.3
    plan.analysis.minRequests = 200
    return plan
}

private func parse(_ text: String, model: String = "churn") throws -> RolloutPlan {
    try RolloutPlan.parse(Array(text.utf8), model: model, source: ".mlops/rollouts/\(model).yaml")
}

private func stats(requests: Int, errors: Int = 0, p50: Double = 10, p99: Double = 20) -> ArmStats {
    var stats = ArmStats()
    stats.requests = requests
    stats.errors = errors
    stats.p50 = p50
    stats.p99 = p99
    return stats
}

@Suite("GitMLRollout: the plan file, analysis, routing, agreement, probes and export")
struct RolloutTests {
    @Test("the rollout file round-trips for every strategy")
    func planRoundTrip() throws {
        for strategy in Strategy.allCases {
            var original = plan(strategy)
            if strategy == .shadow {
                original.key = .random
                original.analysis.minAgreement = 0.98
                original.sample = 0.25
                original.durationSeconds = 3600
            }
            if strategy == .blueGreen {
                original.key = .random
                original.analysis = AnalysisBounds()
                original.keepWarmSeconds = 60
            }
            original.forced = "a rollout of version 4 was aborted before"
            original.phase = .paused
            original.reason = "holiday \"traffic\""
            let again = try parse(original.yaml())
            #expect(again == original, "\(original.yaml())")
        }
    }

    @Test(
        "a malformed rollout file gets one line naming what is wrong",
        arguments: [
            (
                "format: 1\nid: x\nmodel: other\ncandidate: 4\nstable: 3\nstrategy: canary\nphase: running\nsteps: [100]\n",
                "model must be churn"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: canary\nphase: running\nsteps: [50, 25, 100]\n",
                "steps must increase"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: canary\nphase: running\nsteps: [5, 50]\n",
                "the last step must be 100"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: canary\nphase: running\nsteps: [100]\nsteps: [100]\n",
                "steps"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: canary\nphase: running\nsteps: [100]\nweight: 5\n",
                "weight is not a setting"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 4\nstrategy: canary\nphase: running\nsteps: [100]\n",
                "different versions"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 99999999999\nstable: 3\nstrategy: canary\nphase: running\n",
                "candidate must be a whole number"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: linear\nphase: running\n",
                "strategy must be one of"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: shadow\nphase: running\nsample: 7\n",
                "sample must be a number"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: canary\nphase: running\nsteps: [100]\nkey: cookie:a\n",
                "key must be"
            ),
            (
                "format: 1\nid: x\nmodel: churn\ncandidate: 4\nstable: 3\nstrategy: canary\nphase: running\nsteps: [100]\nanalysis: {min_requests: 1e300}\n",
                "analysis.min_requests"
            ),
            ("format: 2\n", "format"),
        ])
    func malformedPlans(text: String, expected: String) throws {
        #expect {
            _ = try parse(text)
        } throws: { error in
            let message = (error as? GitMLError)?.message ?? "\(error)"
            return message.contains(expected) && !message.contains("\n")
        }
    }

    @Test("a key always falls in the same bucket; buckets spread evenly; a key on the candidate stays as it grows")
    func routing() {
        let salt = "churn-v4-20261202T060000"
        let keys = (0..<20_000).map { "user-\($0)" }
        let buckets = keys.map { Router.bucket($0.utf8, salt: salt) }
        #expect(buckets == keys.map { Router.bucket($0.utf8, salt: salt) }, "deterministic")
        #expect(buckets.allSatisfy { (0..<10_000).contains($0) })
        for weight in [5, 25, 50] {
            let share = Double(buckets.filter { Router.toCandidate(bucket: $0, percent: weight) }.count) / 20_000
            #expect(abs(share - Double(weight) / 100) < 0.015, "weight \(weight): \(share)")
        }
        let at25 = Set(keys.indices.filter { Router.toCandidate(bucket: buckets[$0], percent: 25) })
        let at50 = Set(keys.indices.filter { Router.toCandidate(bucket: buckets[$0], percent: 50) })
        #expect(at25.isSubset(of: at50))
        // Another rollout (another salt) splits the users differently.
        let other = keys.map { Router.bucket($0.utf8, salt: "churn-v5-20261203T060000") }
        #expect(zip(buckets, other).filter { $0 == $1 }.count < 50)
        #expect(Router.toCandidate(bucket: 9999, percent: 100) && !Router.toCandidate(bucket: 0, percent: 0))
    }

    @Test("each interval: hold below min_requests, abort on a broken bound, advance, promote after the last step")
    func canaryVerdicts() {
        let rollout = plan()
        let stable = stats(requests: 1000, p50: 10, p99: 40)
        #expect(
            RolloutAnalysis.canary(rollout, step: 0, stable: stable, candidate: stats(requests: 199)).verdict == .hold)
        let errors = RolloutAnalysis.canary(
            rollout, step: 1, stable: stable, candidate: stats(requests: 200, errors: 40))
        #expect(errors.verdict == .abort && errors.reason.contains("error rate 20 %"), "\(errors.reason)")
        let slow = RolloutAnalysis.canary(rollout, step: 1, stable: stable, candidate: stats(requests: 300, p99: 301))
        #expect(slow.verdict == .abort && slow.reason.contains("p99 301 ms is over 300 ms"), "\(slow.reason)")
        let ratio = RolloutAnalysis.canary(rollout, step: 1, stable: stable, candidate: stats(requests: 300, p50: 14))
        #expect(ratio.verdict == .abort && ratio.reason.contains("1.4×"), "\(ratio.reason)")
        #expect(
            RolloutAnalysis.canary(rollout, step: 2, stable: stable, candidate: stats(requests: 300)).verdict
                == .advance)
        var refusing = ArmSamples()
        for _ in 0..<300 { refusing.record(status: 422, milliseconds: 10) }
        let client = RolloutAnalysis.canary(rollout, step: 1, stable: stable, candidate: refusing.stats())
        #expect(client.verdict == .abort && client.reason.contains("4xx rate 100 %"), "\(client.reason)")
        let last = RolloutAnalysis.canary(rollout, step: 3, stable: ArmStats(), candidate: stats(requests: 300))
        #expect(last.verdict == .promote && last.weight == 100)
        var shadow = plan(.shadow)
        shadow.analysis.minAgreement = 0.98
        shadow.durationSeconds = 600
        var candidate = stats(requests: 300)
        candidate.compared = 300
        candidate.agreed = 290
        #expect(RolloutAnalysis.shadow(shadow, elapsed: 60, stable: stable, candidate: candidate).verdict == .abort)
        candidate.agreed = 300
        #expect(RolloutAnalysis.shadow(shadow, elapsed: 60, stable: stable, candidate: candidate).verdict == .advance)
        #expect(RolloutAnalysis.shadow(shadow, elapsed: 600, stable: stable, candidate: candidate).verdict == .finish)
    }

    @Test("the weight status and export show: saved while running, all once promoted, none once aborted")
    func currentWeight() {
        var canary = plan()
        #expect(canary.currentWeight(saved: nil) == 5 && canary.currentWeight(saved: 50) == 50)
        canary.phase = .aborted
        #expect(canary.currentWeight(saved: 50) == 0)
        canary.phase = .promoted
        #expect(canary.currentWeight(saved: 50) == 100)
        #expect(plan(.blueGreen).currentWeight(saved: nil) == 0, "blue-green before its switch")
        #expect(plan(.shadow).currentWeight(saved: nil) == 0)
    }

    @Test("samples: a 499 is not counted, 5xx are errors, quantiles are nearest-rank, memory is bounded")
    func samples() {
        var arm = ArmSamples()
        for i in 1...100 { arm.record(status: i % 10 == 0 ? 503 : 200, milliseconds: Double(i)) }
        arm.record(status: 499, milliseconds: 1e6)
        let stats = arm.stats()
        #expect(stats.requests == 100 && stats.errors == 10)
        #expect(stats.p50 == 50 && stats.p99 == 99)
        var big = ArmSamples()
        for i in 0..<(ArmSamples.capacity * 2) { big.record(status: 200, milliseconds: Double(i % 100)) }
        #expect(big.requests == ArmSamples.capacity * 2)
        #expect(big.stats().p50.map { (40...60).contains($0) } == true)
    }

    @Test("agreement: exact, numeric tolerance on predictions, text similarity")
    func agreement() {
        let a = Array(#"{"predictions": [0.1, 2, "yes"], "model_name": "a"}"#.utf8)
        let b = Array(#"{"predictions": [0.1000001, 2.0, "yes"], "model_name": "b"}"#.utf8)
        #expect(Agreement.agree(a, b, tolerance: 1e-3))
        #expect(!Agreement.agree(a, b, tolerance: 0))
        #expect(!Agreement.agree(a, Array(#"{"predictions": [0.1, 2]}"#.utf8), tolerance: 1))
        #expect(Agreement.agree(Array("plain".utf8), Array("plain".utf8), tolerance: 0))
        #expect(Agreement.similarity("kitten", "sitting") > 0.57 && Agreement.similarity("kitten", "sitting") < 0.58)
        #expect(Agreement.similarity("", "") == 1 && Agreement.similarity("abc", "") == 0)
    }

    @Test("golden probes: parse, compare exactly, numerically and by text similarity")
    func goldenProbes() throws {
        let file = """
            # recorded 2026-11-30
            {"name": "exact", "request": {"instances": [[1]]}, "response": {"predictions": [101]}}
            {"request": {"instances": [[1]]}, "response": {"predictions": [1.0]}, "compare": "numeric", "tolerance": 0.01}
            {"request": {"messages": []}, "response": {"choices": [{"message": {"content": "Paris is the capital of France."}}]}, "compare": "text", "similarity": 0.8, "path": "/v1/chat/completions"}

            """
        let probes = try GoldenProbe.parse(Array(file.utf8), source: "probes.jsonl")
        #expect(probes.count == 3 && probes[0].name == "exact" && probes[2].path == "/v1/chat/completions")
        #expect(probes[0].check(Array(#"{"predictions": [101]}"#.utf8)).passed)
        #expect(!probes[0].check(Array(#"{"predictions": [102]}"#.utf8)).passed)
        #expect(probes[1].check(Array(#"{"predictions": [1.005]}"#.utf8)).passed)
        #expect(!probes[1].check(Array(#"{"predictions": [1.5]}"#.utf8)).passed)
        let close = #"{"choices": [{"message": {"content": "Paris is the capital of France!"}}]}"#
        let far = #"{"choices": [{"message": {"content": "I cannot help with that."}}]}"#
        #expect(probes[2].check(Array(close.utf8)).passed)
        #expect(!probes[2].check(Array(far.utf8)).passed)
        for bad in [
            #"{"request": 1}"#, #"{"request": 1, "response": 2, "compare": "text"}"#,
            #"{"request": 1, "response": 2, "extra": 3}"#, #"{"request": 1, "response": 2, "path": "no-slash"}"#,
            #"{"request": 1, "response": 2, "request": 3}"#, "",
        ] {
            #expect(throws: (any Error).self) { _ = try GoldenProbe.parse(Array(bad.utf8), source: "g.jsonl") }
        }
    }

    @Test("export: golden Argo Rollouts and KServe documents")
    func exportGolden() throws {
        let inputs = RolloutExport.Inputs(
            image: "ghcr.io/acme/churn-serve:4", prometheus: "http://prometheus.monitoring.svc:9090",
            storageURI: "oci://registry.example.com/ml/models:churn-v4", modelFormat: "sklearn", weight: 5,
            run: String(repeating: "a", count: 64), namespace: "ml")
        for (name, text) in [
            ("argo.yaml", RolloutExport.argo(plan(), inputs)), ("kserve.yaml", RolloutExport.kserve(plan(), inputs)),
        ] {
            let path = here.appendingPathComponent("Golden/\(name)").path
            if ProcessInfo.processInfo.environment["GIT_ML_UPDATE_GOLDEN"] != nil {
                try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            }
            let golden = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text == golden, "\(name) differs from its golden file (GIT_ML_UPDATE_GOLDEN=1 rewrites it)")
        }
        #expect(RolloutExport.kubernetesName("Churn_Model.v2") == "churn-model-v2")
        #expect(RolloutExport.kubernetesName("9lives") == "lives")
    }

    @Test(
        "export validates against the published CRD schemas (unknown fields rejected), and the check can fail",
        .enabled(if: schemaToolsInstalled(), "PyYAML and jsonschema come from scripts/test-tools (needs PyPI)"))
    func exportValidates() throws {
        let python = TestTools.path("python3") ?? ""
        let validator = here.appendingPathComponent("Schemas/validate_crd.py").path
        let schema = { (name: String) in here.appendingPathComponent("Schemas/\(name).schema.json").path }
        let cases: [(String, String, String, Int32)] = [
            (schema("argo-rollouts-rollout"), "Golden/argo.yaml", "Rollout", 0),
            (schema("argo-rollouts-analysistemplate"), "Golden/argo.yaml", "AnalysisTemplate", 0),
            (schema("kserve-inferenceservice"), "Golden/kserve.yaml", "InferenceService", 0),
            (schema("argo-rollouts-rollout"), "Schemas/samples/invalid-rollout-typo.yaml", "Rollout", 1),
            (
                schema("kserve-inferenceservice"), "Schemas/samples/invalid-inferenceservice-typo.yaml",
                "InferenceService", 1
            ),
        ]
        for (schemaPath, document, kind, expected) in cases {
            let result = try TempRepo.run(
                python, [validator, "--kind", kind, schemaPath, here.appendingPathComponent(document).path], in: "/",
                environment: [:])
            #expect(result.status == expected, "\(document) as \(kind): \(result.stdout)\(result.stderr)")
        }
        // Every strategy exports a valid InferenceService; a canary at each weight too.
        for strategy in Strategy.allCases {
            let inputs = RolloutExport.Inputs(
                image: "x", prometheus: "http://p:9090", storageURI: "s3://bucket/churn/4", modelFormat: "xgboost",
                weight: strategy == .blueGreen ? 100 : 0, run: "r", namespace: nil)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("isvc-\(UUID().uuidString).yaml")
            defer { try? FileManager.default.removeItem(at: file) }
            try Data(RolloutExport.kserve(plan(strategy), inputs).utf8).write(to: file)
            let result = try TempRepo.run(
                python, [validator, "--kind", "InferenceService", schema("kserve-inferenceservice"), file.path],
                in: "/", environment: [:])
            #expect(result.status == 0, "\(strategy): \(result.stdout)\(result.stderr)")
        }
    }
}

private func schemaToolsInstalled() -> Bool {
    guard let python = TestTools.path("python3") else { return false }
    return (try? TempRepo.run(python, ["-c", "import yaml, jsonschema"], in: "/", environment: [:]).status) == 0
}
