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
              - probe: probes/churn.jsonl
            """)
        #expect(parsed.checks[.staging] == [])
        #expect(
            parsed.checks[.production] == [
                .threshold(kind: "metric", metric: "f1@country=DE", min: 0.8, max: nil, minSamples: 100),
                .threshold(kind: "latency", metric: "latency_p99_ms", min: nil, max: 50, minSamples: nil),
                .threshold(kind: "cost", metric: "cost_per_1k_requests", min: nil, max: 0.2, minSamples: nil),
                .regression(metric: "loss", maxDrop: nil, maxDropPercent: 5, lowerIsBetter: true),
                .schema, .lineage, .approvals(count: 2, distinctFromOwner: true), .probe(golden: "probes/churn.jsonl"),
            ])
        #expect(parsed.goldenFiles == ["probes/churn.jsonl"])
        #expect(parsed.approvalPolicy(for: .production)! == (2, true))
    }

    @Test(
        "a stage with no checks blocks promotion to it; `ungated: true` lets any version in, with a warning",
        arguments: ["production: []\n", "production:\n", "staging:\n  - ungated: true\n", "version: 1\n"])
    func emptyStageBlocks(_ text: String) throws {
        #expect(throws: GateError.self) { try spec(text).checks(for: .production) }
    }

    @Test("ungated is an explicit entry and shows as a warning row")
    func ungated() throws {
        let checks = try spec("staging:\n  - ungated: true\n").checks(for: .staging)
        #expect(checks == [.ungated])
        let rows = GateEvaluation.evaluate(checks, GateInputs(candidate: record([:])))
        #expect(rows.count == 1 && rows[0].passed && rows[0].warning)
        #expect(throws: GateError.self) { try spec("staging:\n  - ungated: false\n") }
    }

    @Test("a duplicate stage key is an error, not the last one winning")
    func duplicateStage() {
        #expect(throws: InputError.self) {
            try spec("production:\n  - metric: acc\n    min: 0.9\nproduction: []\n")
        }
    }

    @Test("an approvals count that is not a small whole number is an error, never a trap")
    func hugeApprovals() {
        for value in ["0x7fffffffffffffff", "1e300", "-1", "2.5", ".inf"] {
            #expect(throws: GateError.self) { try spec("production:\n  - approvals: \(value)\n") }
        }
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
        #expect(rows[0].passed && rows[0].detail == "no version was ever in production to compare with")
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

    @Test(
        "a probe check names a file in the repository; anything else is an error",
        arguments: ["/etc/passwd", "../x.jsonl", "a//b", "a/./b", "", "1", "[a]", "x.jsonl\n    extra: 1"])
    func probePaths(_ golden: String) {
        #expect(throws: GateError.self) { try spec("production:\n  - probe: \(golden)\n") }
    }

    @Test("a probe row passes without drift, fails with it, and fails when the probes were not replayed")
    func probeRows() {
        var inputs = GateInputs(candidate: record([:]))
        let check = GateCheck.probe(golden: "p.jsonl")
        let unreplayed = GateEvaluation.evaluate([check], inputs)
        #expect(!unreplayed[0].passed && unreplayed[0].detail == "the golden probes were not replayed")
        inputs.probeProblems = ["p.jsonl": ("ab12", ["sum (line 1) drifted: differs"])]
        let drifted = GateEvaluation.evaluate([check], inputs)
        #expect(!drifted[0].passed && drifted[0].check == "probe p.jsonl" && drifted[0].detail.contains("sum (line 1)"))
        inputs.probeProblems = ["p.jsonl": ("ab12", [])]
        let passed = GateEvaluation.evaluate([check], inputs)[0]
        #expect(passed.passed && passed.detail.hasSuffix("(p.jsonl sha256 ab12)"), "the answers that judged are named")
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
            Approvals.valid(
                ["a@x", "A@x", "owner@x", "b@x"], allowed: [], owners: ["owner@x"], distinctFromOwner: true)
                == ["a@x", "b@x"])
        #expect(Approvals.valid(["a@x", "b@x"], allowed: ["b@x"], owners: [], distinctFromOwner: false) == ["b@x"])
        var inputs = GateInputs(candidate: record([:], owner: "owner@example.com"))
        inputs.approvals = [ApprovalInput(email: "owner@example.com", signature: .notRequired)]
        let row = GateEvaluation.evaluate([.approvals(count: 1, distinctFromOwner: true)], inputs)[0]
        #expect(!row.passed && row.detail.contains("from someone other than owner@example.com"))
    }

    @Test("an approver's email is compared trimmed and case-folded: a trailing space does not make another person")
    func approverEmailNormalised() {
        #expect(
            Approvals.valid(
                ["owner@example.com ", " Owner@Example.COM"], allowed: [], owners: ["owner@example.com"],
                distinctFromOwner: true) == [])
        #expect(
            Approvals.valid(
                ["Alice@Example.com "], allowed: ["alice@example.com"], owners: [], distinctFromOwner: false)
                == ["Alice@Example.com "])
    }

    @Test("under allowed_signers only approvals whose signature verifies count, and the others are named")
    func signedApprovals() {
        var inputs = GateInputs(candidate: record([:], owner: "owner@example.com"))
        inputs.signaturesRequired = true
        inputs.approvals = [
            ApprovalInput(email: "mallory@example.com", signature: .unsigned),
            ApprovalInput(email: "eve@example.com", signature: .bad("Could not verify signature.")),
        ]
        let rows = GateEvaluation.evaluate([.approvals(count: 1, distinctFromOwner: true)], inputs)
        #expect(rows.count == 1 && !rows[0].passed)
        #expect(rows[0].detail.contains("mallory@example.com (unsigned)"))
        #expect(rows[0].detail.contains("eve@example.com (signature does not verify"))
        inputs.approvals.append(ApprovalInput(email: "alice@example.com", signature: .good))
        #expect(GateEvaluation.evaluate([.approvals(count: 1, distinctFromOwner: true)], inputs)[0].passed)
    }

    @Test("without allowed_signers, approvals still count but a warning row says they are unsigned")
    func unsignedWarning() {
        var inputs = GateInputs(candidate: record([:], owner: "owner@example.com"))
        inputs.approvals = [ApprovalInput(email: "alice@example.com", signature: .notRequired)]
        let rows = GateEvaluation.evaluate([.approvals(count: 1, distinctFromOwner: true)], inputs)
        #expect(rows.count == 2 && rows.allSatisfy(\.passed))
        #expect(rows[1].warning && rows[1].check == "approval signatures")
    }
}

@Suite("Registry fold")
struct ModelStateTests {
    /// Version `n` of model m, registered on 2025-12-31.
    private func version(_ n: Int) throws -> ModelVersion {
        let value: JSONValue = .object([
            "model": .string("m"), "version": .int(Int64(n)), "run": .string(String(repeating: "a", count: 64)),
            "artifacts": .array([
                ModelArtifact(path: "model.pkl", sha256: String(repeating: "b", count: 64), size: 1).json
            ]),
            "created": .string("2025-12-31T00:00:00Z"), "owner": .null,
        ])
        return try ModelVersion(bytes: Array(JSONWriter.pretty(value).utf8), file: "v\(n)")
    }

    private func event(_ time: String, _ kind: String, _ version: Int, to: String? = nil, rolledBack: Int? = nil) throws
        -> RegistryEvent
    {
        var fields: [String: JSONValue] = [
            "model": .string("m"), "version": .int(Int64(version)), "kind": .string(kind),
            "time": .string(time.count == 1 ? "2026-01-0\(time)T00:00:00Z" : time + "T00:00:00Z"),
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
        let state = ModelState(name: "m", versions: [try version(1), try version(2)], events: events, now: now)
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
        let state = ModelState(name: "m", versions: try (1...3).map(version), events: events, now: now)
        #expect(state.production == 2 && state.versions[3]?.rolledBack == true && state.versions[3]?.stage == .archived)
        #expect(state.rollbackTarget() == 1)
    }

    /// The judging clock of these tests: 2026-06-01.
    private let now = 1_780_272_000.0

    @Test("an event dated in the future is left out of the fold, so it cannot freeze a model's stage")
    func futureEventIgnored() throws {
        let events = [
            try event("1", "stage", 1, to: "production"), try event("9999-12-31", "stage", 1, to: "staging"),
            try event("2", "stage", 1, to: "archived"),
        ]
        let state = ModelState(name: "m", versions: [try version(1)], events: events, now: now)
        #expect(state.versions[1]?.stage == .archived && state.production == nil)
        #expect(state.ignored.count == 1 && state.ignored[0].reason.contains("in the future"))
    }

    @Test("an event dated before its version was registered is left out")
    func backdatedEventIgnored() throws {
        let events = [try event("2020-01-01", "stage", 1, to: "production")]
        let state = ModelState(name: "m", versions: [try version(1)], events: events, now: now)
        #expect(state.production == nil && state.ignored.first?.reason.contains("before version 1") == true)
    }

    @Test("a rollback to a version that was never in production is left out and named")
    func rollbackToDraftIgnored() throws {
        let events = [try event("1", "stage", 1, to: "production"), try event("2", "rollback", 2, rolledBack: 1)]
        let state = ModelState(name: "m", versions: [try version(1), try version(2)], events: events, now: now)
        #expect(state.production == 1 && state.versions[2]?.stage == .draft)
        #expect(state.ignored.first?.reason.contains("never in production") == true)
    }

    @Test("hand-written numbers that cannot be versions are errors naming the field, never a trap")
    func hostileNumbers() throws {
        for value in ["1e300", "-1", "1.5", "9223372036854775807", "\"1\""] {
            let text = "{\"model\":\"m\",\"version\":\(value),\"kind\":\"stage\",\"time\":\"2026-01-01T00:00:00Z\"}"
            #expect(throws: RegistryError.self) {
                try RegistryEvent(id: "x", bytes: Array(text.utf8), file: "e.json")
            }
        }
        let size =
            "{\"model\":\"m\",\"version\":1,\"run\":\"r\",\"artifacts\":[{\"path\":\"a\",\"sha256\":\"\(String(repeating: "b", count: 64))\",\"size\":1e300}]}"
        #expect(throws: RegistryError.self) { try ModelVersion(bytes: Array(size.utf8), file: "v.json") }
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
