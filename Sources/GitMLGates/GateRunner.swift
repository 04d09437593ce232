import GitMLBasics
import GitMLLineage
import GitMLRegistry
import GitMLStore

/// The outcome of `git ml gate check`: the rows and the evidence event written.
public struct GateOutcome: Sendable {
    public let model: String
    public let version: Int
    public let stage: Stage
    public let rows: [GateRow]
    public let evidence: RegistryEvent
    public var passed: Bool { rows.allSatisfy(\.passed) }
}

/// Evaluates a version's gates in the work tree and records the evidence.
public struct GateRunner {
    /// Examines a version's committed card in a workspace against required sections (the cards area, handed in by
    /// the caller so gates need not depend on it): problems, or none.
    public typealias CardExaminer =
        @Sendable (
            _ workspace: Workspace, _ model: String, _ version: Int, _ sections: [String]
        ) throws -> [String]

    /// Replays a golden file (its path and bytes, read where the policy is read) against the version whose version
    /// file has `digest`, started for it: each probe that failed, or why that version could not be probed; none
    /// when every answer matched.
    public typealias ProbeExaminer = (
        _ model: String, _ version: Int, _ digest: String, _ golden: String, _ bytes: [UInt8]
    ) throws -> [String]

    let workspace: Workspace
    let cardExaminer: CardExaminer?
    let probeExaminer: ProbeExaminer?

    public init(workspace: Workspace, cardExaminer: CardExaminer? = nil, probeExaminer: ProbeExaminer? = nil) {
        self.workspace = workspace
        self.cardExaminer = cardExaminer
        self.probeExaminer = probeExaminer
    }

    /// The stage a version is checked for when none is named: the next one up.
    public static func defaultTarget(from stage: Stage) -> Stage { stage == .draft ? .staging : .production }

    /// Reads the gates; an absent or malformed file fails the gate.
    public func spec() throws -> GateSpec {
        try GatePolicy(source: WorkTreeSource(workspace: workspace), origin: "the work tree").spec.get()
    }

    /// Evaluates every check declared for `stage` and writes the evidence event, passed or not. A stage with no
    /// declared checks fails (docs/registry.md#gates).
    public func check(_ name: String, version reference: String, stage: Stage?) throws -> GateOutcome {
        let (version, stage, rows, digest) = try evaluate(name, version: reference, stage: stage)
        let evidence = try RegistryWriter(workspace: workspace).recordGate(
            name, version: version, stage: stage, passed: rows.allSatisfy(\.passed), checks: rows.map(\.json),
            gatesDigest: digest)
        return GateOutcome(model: name, version: version, stage: stage, rows: rows, evidence: evidence)
    }

    /// Evaluates the checks declared for `stage` again from the run records and the work tree's policy, and writes
    /// nothing: the version, the stage, one row per check and the policy's digest. `artifactsVerified` stands in
    /// for the `lineage` check's work-tree walk when the caller has just re-hashed the version's artifacts itself
    /// (the gateway, on a host that holds them only in the object store): nil walks the work tree.
    public func evaluate(_ name: String, version reference: String, stage: Stage?, artifactsVerified: [String]? = nil)
        throws -> (version: Int, stage: Stage, rows: [GateRow], gatesDigest: String)
    {
        let registry = Registry(source: WorkTreeSource(workspace: workspace))
        let state = try registry.model(name)
        let version = try state.resolve(reference)
        guard let candidate = state.versions[version] else {
            throw RegistryError.versionNotFound(model: name, reference: reference, known: [])
        }
        let stage = stage ?? Self.defaultTarget(from: candidate.stage)
        let policy = try GatePolicy(source: WorkTreeSource(workspace: workspace), origin: "the work tree")
        let spec = try policy.spec.get()
        let checks = try spec.checks(for: stage)
        let runs = RunStore(workspace: workspace)
        let recorded = Set(runs.ids())
        guard recorded.contains(candidate.file.run) else {
            throw GateError.missingRun(model: name, version: version, run: candidate.file.run)
        }
        var champion = GatePolicy.Champion.none
        if let number = state.champion(excluding: version), let file = state.versions[number]?.file {
            champion =
                recorded.contains(file.run)
                ? .found(record: try runs.read(file.run).record, label: "\(name)@\(number)")
                : .recordMissing(label: "\(name)@\(number)")
        }
        var inputs = try policy.inputs(
            candidate: try runs.read(candidate.file.run).record, champion: champion, version: candidate,
            registrations: state.registration(of: version), environment: workspace.environment)
        if let artifactsVerified {
            inputs.lineageProblems = artifactsVerified
        } else if checks.contains(.lineage) {
            inputs.lineageProblems = try Verifier(workspace: workspace).verify(candidate.file.run)
                .filter(\.isProblem).map { "\($0.state) \($0.subject)" }
        }
        if let sections = spec.cardSections(for: stage), let cardExaminer {
            inputs.cardProblems = try cardExaminer(workspace, name, version, sections)
        }
        inputs.probeProblems = try policy.probeProblems(
            checks, model: name, version: version, digest: candidate.file.digest, examiner: probeExaminer,
            unavailable: "golden probes need the version started: run git ml gate check")
        return (version, stage, GateEvaluation.evaluate(checks, inputs), spec.digest)
    }
}
