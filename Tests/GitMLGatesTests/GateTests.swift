import GitMLBasics
import Testing

@testable import GitMLGates
@testable import GitMLRegistry

private func spec(_ text: String) throws -> GateSpec { try GateSpec.parse(Array(text.utf8), digest: "d") }

private func record(
    _ metrics: [String: Double], dirty: Bool = false, seed: Bool = true, owner: String = "owner@example.com"
) -> JSONValue {
    .object([
        "metrics": .object(metrics.mapValues(JSONValue.double)), "git": .object(["dirty": .bool(dirty)]),
        "seed": seed ? .object(["value": .int(1)]) : .null, "owner": .object(["email": .string(owner)]),
    ])
}

@Suite("Gate spec")
struct GateSpecTests {
    @Test("every kind of check is read as declared")
    func parsesChecks() throws {
        let parsed = try spec(
            """
            version: 1
            staging: []
            production:
              - metric: f1@country=DE
                min: 0.8
                min_samples: 100
              - latency: latency_p99_ms
                max: 50
              - cost: cost_per_1k_requests
                max: 0.2
              - regression: loss
                max_drop_pct: 5
                direction: lower
              - schema: match
              - lineage: true
              - approvals: 2
                distinct_from_owner: true
            """)
        #expect(parsed.checks[.staging] == [])
        #expect(
            parsed.checks[.production] == [
                .threshold(kind: "metric", metric: "f1@country=DE", min: 0.8, max: nil, minSamples: 100),
                .threshold(kind: "latency", metric: "latency_p99_ms", min: nil, max: 50, minSamples: nil),
                .threshold(kind: "cost", metric: "cost_per_1k_requests", min: nil, max: 0.2, minSamples: nil),
                .regression(metric: "loss", maxDrop: nil, maxDropPercent: 5, lowerIsBetter: true),
                .schema, .lineage, .approvals(count: 2, distinctFromOwner: true),
            ])
        #expect(parsed.approvalPolicy(for: .production)! == (2, true))
    }

    @Test(
        "anything not understood is an error naming the entry, never a pass",
        arguments: [
            ("production:\n  - metrik: acc\n", "production[0] is not a check"),
            ("production:\n  - metric: acc\n", "production[0] needs min: or max:"),
            ("production:\n  - metric: acc\n    min: high\n", "production[0].min must be a number"),
            ("production:\n  - metric: acc\n    min: 1\n    mni: 2\n", "production[0] has unknown field mni"),
            ("prod:\n  - lineage: true\n", "unknown key prod"),
            ("production: yes\n", "production must be a list of checks"),
            (
                "production:\n  - regression: acc\n    max_drop: 1\n    direction: up\n",
                "direction must be higher or lower"
            ),
        ])
    func rejects(_ text: String, _ message: String) {
        #expect {
            try spec(text)
        } throws: { error in
            (error as? GateError)?.message.contains(message) == true && (error as? GateError)?.exitStatus == 1
        }
    }
}

@Suite("Gate evaluation")
struct GateEvaluationTests {
    @Test("thresholds pass within bounds, fail outside, and a missing metric fails naming what the run has")
    func thresholds() {
        let inputs = GateInputs(candidate: record(["acc": 0.93, "latency_p99_ms": 70]))
        let rows = GateEvaluation.evaluate(
            [
                .threshold(kind: "metric", metric: "acc", min: 0.9, max: nil, minSamples: nil),
                .threshold(kind: "latency", metric: "latency_p99_ms", min: nil, max: 50, minSamples: nil),
                .threshold(kind: "metric", metric: "f1", min: 0.5, max: nil, minSamples: nil),
            ], inputs)
        #expect(rows.map(\.passed) == [true, false, false])
        #expect(rows[1].detail == "latency_p99_ms is 70, outside <= 50")
        #expect(rows[2].observed == "missing" && rows[2].detail.contains("(it has: acc, latency_p99_ms)"))
    }

    @Test("a slice's minimum size is checked when the record carries the slice's count")
    func sliceSize() {
        let check = GateCheck.threshold(kind: "metric", metric: "f1@country=DE", min: 0.8, max: nil, minSamples: 100)
        let small = GateEvaluation.evaluate(
            [check], GateInputs(candidate: record(["f1@country=DE": 0.9, "n@country=DE": 40])))
        #expect(small.map(\.check) == ["metric f1@country=DE", "slice size country=DE"])
        #expect(small.map(\.passed) == [true, false])
        let uncounted = GateEvaluation.evaluate([check], GateInputs(candidate: record(["f1@country=DE": 0.9])))
        #expect(uncounted.count == 1 && uncounted[0].passed)
    }

    @Test(
        "regression compares with the champion in the direction that is better",
        arguments: [
            (
                0.90, 0.91, GateCheck.regression(metric: "m", maxDrop: 0.02, maxDropPercent: nil, lowerIsBetter: false),
                true
            ),
            (
                0.85, 0.91, GateCheck.regression(metric: "m", maxDrop: 0.02, maxDropPercent: nil, lowerIsBetter: false),
                false
            ),
            (0.50, 0.48, GateCheck.regression(metric: "m", maxDrop: nil, maxDropPercent: 5, lowerIsBetter: true), true),
            (
                0.60, 0.48, GateCheck.regression(metric: "m", maxDrop: nil, maxDropPercent: 5, lowerIsBetter: true),
                false
            ),
        ])
    func regression(_ candidate: Double, _ champion: Double, _ check: GateCheck, _ passes: Bool) {
        var inputs = GateInputs(candidate: record(["m": candidate]))
        inputs.champion = record(["m": champion])
        inputs.championLabel = "churn@2"
        #expect(GateEvaluation.evaluate([check], inputs).map(\.passed) == [passes])
    }

    @Test("without a champion a regression check passes and says so")
    func noChampion() {
        let rows = GateEvaluation.evaluate(
            [.regression(metric: "m", maxDrop: 0, maxDropPercent: nil, lowerIsBetter: false)],
            GateInputs(candidate: record(["m": 1])))
        #expect(rows[0].passed && rows[0].detail == "no champion in production to compare with")
    }

    @Test("lineage hygiene: clean commit, recorded seed, everything verifies")
    func lineage() {
        var inputs = GateInputs(candidate: record([:], dirty: true, seed: false))
        inputs.lineageProblems = ["modified data/a.csv"]
        let rows = GateEvaluation.evaluate([.lineage], inputs)
        #expect(rows.map(\.passed) == [false, false, false])
        #expect(rows[2].detail == "modified data/a.csv")
        let clean = GateEvaluation.evaluate([.lineage], GateInputs(candidate: record([:])))
        #expect(clean.allSatisfy { $0.passed })
    }

    @Test("schemas must match the champion's, and differences are listed")
    func schema() {
        var inputs = GateInputs(
            candidate: .object(["schema": .object(["age": .string("int"), "city": .string("str")])]))
        inputs.champion = .object(["schema": .object(["age": .string("float")])])
        let row = GateEvaluation.evaluate([.schema], inputs)[0]
        #expect(!row.passed)
        #expect(row.detail == "columns differ: age: float -> int; city: absent -> str")
    }

    @Test("approvals count distinct allowed approvers, not the owner when required")
    func approvals() {
        #expect(
            Approvals.valid(["a@x", "A@x", "owner@x", "b@x"], allowed: [], owner: "owner@x", distinctFromOwner: true)
                == ["a@x", "b@x"])
        #expect(Approvals.valid(["a@x", "b@x"], allowed: ["b@x"], owner: "", distinctFromOwner: false) == ["b@x"])
        var inputs = GateInputs(candidate: record([:], owner: "owner@example.com"))
        inputs.approvals = ["owner@example.com"]
        let row = GateEvaluation.evaluate([.approvals(count: 1, distinctFromOwner: true)], inputs)[0]
        #expect(!row.passed && row.detail.contains("from someone other than owner@example.com"))
    }
}

@Suite("Registry fold")
struct ModelStateTests {
    private func version(_ n: Int) throws -> ModelVersion {
        let bytes = ModelVersion.bytes(
            model: "m", version: n, run: String(repeating: "a", count: 64),
            artifacts: [ModelArtifact(path: "model.pkl", sha256: String(repeating: "b", count: 64), size: 1)],
            owner: .null)
        return try ModelVersion(bytes: bytes, file: "v\(n)")
    }

    private func event(_ time: String, _ kind: String, _ version: Int, to: String? = nil, rolledBack: Int? = nil) throws
        -> RegistryEvent
    {
        var fields: [String: JSONValue] = [
            "model": .string("m"), "version": .int(Int64(version)), "kind": .string(kind), "time": .string(time),
        ]
        if let to { fields["to"] = .string(to) }
        if let rolledBack { fields["rolled_back"] = .int(Int64(rolledBack)) }
        return try RegistryEvent(id: time, bytes: Array(JSONWriter.compact(.object(fields)).utf8), file: time)
    }

    @Test("one champion at a time; events apply in time order whatever order the files are read in")
    func champion() throws {
        let events = [
            try event("2026-01-03", "stage", 2, to: "production"),
            try event("2026-01-01", "stage", 1, to: "staging"),
            try event("2026-01-02", "stage", 1, to: "production"),
        ]
        let state = ModelState(name: "m", versions: [try version(1), try version(2)], events: events)
        #expect(state.production == 2)
        #expect(state.versions[1]?.stage == .archived)
        #expect(state.productionHistory == [1, 2])
        #expect(try state.resolve("production") == 2 && state.rollbackTarget() == 1)
    }

    @Test("a rolled-back version is skipped as a rollback target")
    func rollbackTarget() throws {
        let events = [
            try event("1", "stage", 1, to: "production"), try event("2", "stage", 2, to: "production"),
            try event("3", "stage", 3, to: "production"), try event("4", "rollback", 2, rolledBack: 3),
        ]
        let state = ModelState(name: "m", versions: try (1...3).map(version), events: events)
        #expect(state.production == 2 && state.versions[3]?.rolledBack == true && state.versions[3]?.stage == .archived)
        #expect(state.rollbackTarget() == 1)
    }

    @Test(
        "allowed transitions",
        arguments: [
            (Stage.draft, Stage.production, true), (.staging, .production, true), (.production, .staging, false),
            (.archived, .production, true), (.production, .production, false), (.staging, .draft, false),
        ])
    func transitions(_ from: Stage, _ to: Stage, _ allowed: Bool) {
        #expect(from.allows(to) == allowed)
    }

    @Test("model names cannot leave .mlops/models", arguments: ["../x", "a/b", ".hidden", "", "-x", "a b", "ü"])
    func names(_ name: String) {
        #expect(throws: RegistryError.self) { try Registry.validate(name: name) }
    }
}
