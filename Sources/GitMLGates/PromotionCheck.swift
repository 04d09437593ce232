import Foundation
import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLProvenance
import GitMLRegistry
import GitMLStore

/// A registry change a push or a range adds that may not go through, and why.
public struct BlockedPromotion: Sendable {
    public let model: String
    public let version: Int
    /// The stage it would enter, or `registry` for a change that is not a promotion (an edited or deleted file).
    public let stage: String
    /// The file that records the change.
    public let event: String
    public let reasons: [String]
    /// The command that fixes it.
    public let fix: String

    public var json: JSONValue {
        .object([
            "model": .string(model), "version": .int(Int64(version)), "stage": .string(stage), "event": .string(event),
            "reasons": .array(reasons.map(JSONValue.string)), "fix": .string(fix),
        ])
    }
}

/// What a check of a range found.
public struct PromotionVerdict: Sendable {
    /// Promotions to staging or production (and rollbacks) the range adds.
    public var promotions = 0
    public var blocked: [BlockedPromotion] = []
    /// Where the policy came from, for the report.
    public var policy = ""
}

/// The check the pre-push hook, `git ml verify --range` and the server's pre-receive hook share. For every registry
/// change that `new` adds over what the target has:
/// - the registry only grows: a version, event or signature file the target has may not change or disappear;
/// - every promotion to staging or production is judged again, exactly as `gate check` judges it, from the pushed
///   run records, the champion at the target and the approvals whose signatures verify, under the policy
///   (gates.yaml, approvers, allowed_signers) of the target, never the pushed one; the recorded gate event must
///   exist and agree with that judgement;
/// - a rollback returns to a version that was in production before; no event is dated in the future or before its
///   version; every event file is named for its content; a version's artifacts are its run's.
/// Everything is read from commits (and, for re-hashing, the local object store and work tree), so what is judged
/// is what is pushed.
public struct PromotionCheck {
    /// What to judge: the pushed commit, what the target already has, and where its policy is.
    public struct Range: Sendable {
        /// The commit being pushed (or the end of `A..B`).
        public var new: String
        /// Commits the target already has: a registry file they all have is not new.
        public var bases: [String]
        /// The target branch's tip, whose policy judges the range; nil when the target has nothing yet (the first
        /// push to an empty repository), and then the pushed commit's own policy is all there is.
        public var policyBase: String?
        /// How to name the policy's place in messages (`origin/main`).
        public var policyName: String
        /// The push moves the very ref whose tip is `policyBase` (not a new branch judged by the default branch):
        /// everything that tip has must still be there, so a forced rewind cannot drop registry history.
        public var updatesPolicyRef: Bool
        /// Without a `policyBase`, judge the range by its own policy (`verify --range ..B`, asked for by name);
        /// otherwise a missing target policy refuses every promotion (the hooks).
        public var selfJudged = false

        public init(new: String, bases: [String], policyBase: String?, policyName: String, updatesPolicyRef: Bool) {
            self.new = new
            self.bases = bases
            self.policyBase = policyBase
            self.policyName = policyName
            self.updatesPolicyRef = updatesPolicyRef
        }

        /// `A..B` as CI writes it: B judged against A, under A's policy (`..B`: everything B has, under B's own).
        public init(parsing text: String, in repository: Repository) throws {
            let parts = text.components(separatedBy: "..")
            guard parts.count == 2, !parts[1].isEmpty, !parts[1].hasPrefix(".") else {
                throw InputError.malformed(
                    source: "--range", detail: "\(text) is not a range: write it as A..B, for example origin/main..HEAD"
                )
            }
            let new = try CommitTree(repository, revision: parts[1]).commit
            let base = parts[0].isEmpty ? nil : try CommitTree(repository, revision: parts[0]).commit
            self.init(
                new: new, bases: base.map { [$0] } ?? [], policyBase: base, policyName: parts[0],
                updatesPolicyRef: false)
            selfJudged = base == nil
        }
    }

    let repository: Repository
    /// The clone's work tree and object store, used to re-hash files the commit does not carry; nil on a server.
    let workspace: Workspace?
    /// Examines the committed card in a scratch copy of the pushed `.mlops`.
    let cardExaminer: GateRunner.CardExaminer?
    /// Starts a version from the clone's object store and replays golden probes; nil on a server.
    let probeExaminer: GateRunner.ProbeExaminer?

    public init(
        repository: Repository, workspace: Workspace? = nil, cardExaminer: GateRunner.CardExaminer? = nil,
        probeExaminer: GateRunner.ProbeExaminer? = nil
    ) {
        self.repository = repository
        self.workspace = workspace
        self.cardExaminer = cardExaminer
        self.probeExaminer = probeExaminer
    }

    /// Judges one range.
    public func check(_ range: Range) throws -> PromotionVerdict {
        let tree = try CommitTree(repository, revision: range.new)
        let baseTrees = try range.bases.filter(repository.hasObject).map { try CommitTree(repository, revision: $0) }
        let policyTree = try range.policyBase.flatMap { repository.hasObject($0) ? $0 : nil }.map {
            try CommitTree(repository, revision: $0)
        }
        var verdict = PromotionVerdict()
        verdict.policy =
            policyTree.map { "\(range.policyName) at \($0.commit.prefix(10))" }
            ?? (range.selfJudged ? "the range's own last commit (no lower bound was given)" : range.policyName)

        // Append-only: nothing the target already has may change or go, run records included. An update of the
        // target's own ref is compared with its tip (a forced rewind drops files too); a new branch with its merge
        // base with the default branch, so a branch that is merely behind is not taken for one that deletes.
        if let policyTree {
            let base =
                range.updatesPolicyRef
                ? policyTree
                : try repository.mergeBase(tree.commit, policyTree.commit).map {
                    try CommitTree(repository, revision: $0)
                }
            if let base {
                for prefix in [Registry.root, ".mlops/runs"] {
                    for change in try tree.changes(since: base, under: prefix) where change.kind != .added {
                        verdict.blocked.append(rewritten(change, base: policyTree.commit))
                    }
                }
            }
        }

        // What is new: in the pushed commit and in no base.
        var added: Set<String>?
        for base in baseTrees.isEmpty ? [nil] : baseTrees.map(Optional.some) {
            let changed = Set(try tree.filesChanged(since: base, under: Registry.root))
            added = added.map { $0.intersection(changed) } ?? changed
        }
        let newFiles = (added ?? []).sorted()
        guard !newFiles.isEmpty else { return verdict }
        if policyTree == nil && !range.selfJudged {
            // No policy to judge by (an empty or unknown target): the pushed commit may not judge itself.
            verdict.blocked += try unjudged(newFiles, tree: tree, reason: range.policyName)
            return verdict
        }

        let policy = try GatePolicy(source: policyTree ?? tree, origin: verdict.policy)
        let judge = Judge(
            check: self, tree: tree, policy: policy, policyTree: policyTree,
            clock: min(Timestamp.nowSeconds(), Double(tree.committerTime)))
        var byModel: [String: [String]] = [:]
        for path in newFiles {
            let parts = path.split(separator: "/")
            guard parts.count >= 5 else { continue }
            byModel[String(parts[2]), default: []].append(path)
        }
        for (model, paths) in byModel.sorted(by: { $0.key < $1.key }) {
            let result = try judge.model(model, newFiles: Set(paths))
            verdict.promotions += result.promotions
            verdict.blocked += result.blocked
        }
        return verdict
    }

    /// Every promotion among `files`, refused for want of a target policy.
    private func unjudged(_ files: [String], tree: CommitTree, reason: String) throws -> [BlockedPromotion] {
        let registry = Registry(source: tree)
        return files.filter { $0.contains("/events/") && $0.hasSuffix(".json") }.compactMap { path in
            guard let event = try? registry.event(at: path),
                event.kind == .rollback || (event.kind == .stage && (event.to == .staging || event.to == .production))
            else { return nil }
            return BlockedPromotion(
                model: event.model, version: event.version,
                stage: (event.kind == .rollback ? Stage.production : event.to)?.rawValue ?? "?", event: path,
                reasons: ["there is no policy to judge it by: \(reason)"],
                fix: "push the gates to the target's default branch first (without promotions), then push this again")
        }
    }

    private func rewritten(_ change: CommitTree.Change, base: String) -> BlockedPromotion {
        let parts = change.path.split(separator: "/").map(String.init)
        let model = parts.count > 2 ? parts[2] : "?"
        let version =
            parts.count > 4 && parts[3] == "versions"
            ? parts[4].split(separator: ".").first.flatMap { Int($0) } ?? 0 : 0
        let what = change.kind == .deleted ? "deletes" : "changes"
        return BlockedPromotion(
            model: change.path.hasPrefix(Registry.root) ? model : "runs", version: version, stage: "registry",
            event: change.path,
            reasons: [
                "the push \(what) \(change.path), which the target already has: records and the registry only grow (a new event records any change)"
            ],
            fix: "restore it: git checkout \(base.prefix(10)) -- \(change.path), then commit")
    }
}

/// One range's judgement, model by model.
private struct Judge {
    let check: PromotionCheck
    let tree: CommitTree
    let policy: GatePolicy
    let policyTree: CommitTree?
    /// The latest an event may be dated (plus the allowed skew): the earlier of now and the pushed commit's time.
    let clock: Double

    func model(_ name: String, newFiles: Set<String>) throws -> (promotions: Int, blocked: [BlockedPromotion]) {
        let registry = Registry(source: tree)
        let state: ModelState
        do {
            state = try registry.model(name, now: clock)
        } catch let error as GitMLError {
            return (
                0,
                [
                    BlockedPromotion(
                        model: name, version: 0, stage: "registry", event: "\(Registry.root)/\(name)",
                        reasons: [error.message], fix: "fix or remove the file, then commit")
                ]
            )
        }
        var blocked: [BlockedPromotion] = []
        var promotions = 0
        // Every new version file: its artifacts must be its run's.
        for (number, version) in state.versions.sorted(by: { $0.key < $1.key })
        where newFiles.contains(ModelVersion.path(model: name, version: number)) {
            let reasons = try artifactProblems(version.file)
            if !reasons.isEmpty {
                blocked.append(
                    BlockedPromotion(
                        model: name, version: number, stage: "registry",
                        event: ModelVersion.path(model: name, version: number), reasons: reasons,
                        fix: "register the version with git ml model register \(name) --run <run>"))
            }
        }
        // Every new event file.
        let ignored = Dictionary(state.ignored.map { ($0.event.id, $0.reason) }, uniquingKeysWith: { a, _ in a })
        for event in state.events {
            let path = "\(Registry.root)/\(name)/events/\(event.id).json"
            guard newFiles.contains(path) || newFiles.contains(SSHSignatures.signaturePath(of: path)) else { continue }
            let stage = (event.kind == .rollback ? Stage.production : event.to).map(\.rawValue) ?? "registry"
            let isPromotion =
                (event.kind == .stage && (event.to == .staging || event.to == .production)) || event.kind == .rollback
            if isPromotion { promotions += 1 }
            var reasons: [String] = []
            if !event.isNamedForContent {
                reasons.append("\(path) does not match its name: it was edited after it was written")
            }
            if let reason = ignored[event.id] { reasons.append("the event \(reason)") }
            if reasons.isEmpty && isPromotion {
                reasons += try promotionProblems(event, state: state)
            }
            guard !reasons.isEmpty else { continue }
            blocked.append(
                BlockedPromotion(
                    model: name, version: event.version, stage: stage, event: path, reasons: reasons,
                    fix: fix(for: event, stage: stage, reasons: reasons, path: path)))
        }
        return (promotions, blocked)
    }

    private func fix(for event: RegistryEvent, stage: String, reasons: [String], path: String) -> String {
        let target = "\(event.model) \(event.version) --to \(stage)"
        if reasons.contains(where: { $0.hasPrefix("the event") || $0.contains("does not match its name") }) {
            return "remove it (git rm \(path)) and record the change again with git ml model"
        }
        if reasons.contains(where: { $0.hasPrefix("gate approvals") }) {
            return
                "git ml model approve \(event.model) \(event.version) (by an approver, signed), then git ml gate check \(target); "
                + "or take the promotion back: git ml model undo \(event.model)"
        }
        if reasons.contains(where: { $0.contains(Self.noBackend) }) {
            return
                "judge it where the model can start (git ml verify --range in CI), and keep probe checks out of the policy this server enforces"
        }
        return "git ml gate check \(target); or take the promotion back: git ml model undo \(event.model)"
    }

    /// The probe row's reason on a host that cannot start a backend.
    static let noBackend = "golden probes need the version started, which this host cannot do"

    /// A version's artifacts against its run record's.
    private func artifactProblems(_ version: ModelVersion) throws -> [String] {
        guard let run = try runRecord(version.run, in: tree) else {
            return ["run \(version.run.prefix(12)) of version \(version.version) is not in the pushed commit"]
        }
        var reasons: [String] = []
        for artifact in version.artifacts {
            let recorded = run.artifacts.first { $0["path"]?.string == artifact.path }
            if recorded?["sha256"]?.string != artifact.sha256 || recorded?["size"]?.integer() != artifact.size {
                reasons.append(
                    "artifact \(artifact.path) (sha256 \(artifact.sha256.prefix(12))) is not what run \(version.run.prefix(12)) recorded"
                        + (recorded?["sha256"]?.string.map { " (it recorded \($0.prefix(12)))" } ?? ""))
            }
        }
        return reasons
    }

    /// Re-derives a promotion: the version as registered, its artifacts, and its gates under the target's policy.
    private func promotionProblems(_ event: RegistryEvent, state: ModelState) throws -> [String] {
        guard let current = state.versions[event.version] else {
            return ["version \(event.version) has no version file in the pushed commit"]
        }
        let version = current.file
        var reasons: [String] = []
        if event.versionDigest != version.digest {
            reasons.append("the version file changed after the promotion was recorded")
        }
        for artifact in version.artifacts {
            if let now = event.artifacts.first(where: { $0.path == artifact.path }), now.sha256 != artifact.sha256 {
                reasons.append(
                    "artifact \(artifact.path) was modified after registration (sha256 \(now.sha256.prefix(12)) now, \(artifact.sha256.prefix(12)) registered)"
                )
            }
        }
        reasons += try artifactProblems(version)
        // A rollback returns to a version production already had (the fold checked that); it skips gates.
        guard event.kind == .stage, let stage = event.to else { return reasons }
        let outcome = try evaluate(current, stage: stage, state: state)
        switch outcome {
        case .failure(let message):
            reasons.append(message.text)
        case .success(let rows):
            let passed = rows.allSatisfy(\.passed)
            for row in rows where !row.passed { reasons.append("gate \(row.check) fails: \(row.detail)") }
            let evidence = current.gates.last {
                $0.value["stage"]?.string == stage.rawValue && $0.versionDigest == version.digest
            }
            if let evidence {
                if evidence.passed != passed {
                    reasons.append(
                        "gate event \(evidence.id) says the gates \(evidence.passed ? "passed" : "failed"), but evaluated again under \(policy.origin) they \(passed ? "pass" : "fail"): it does not match"
                    )
                }
            } else {
                reasons.append("no gate evidence for \(stage.rawValue): run git ml gate check and commit the event")
            }
        }
        return reasons
    }

    /// The rows `gate check` would give, from the pushed records under the target's policy, or why it cannot run.
    private func evaluate(_ candidate: ModelState.VersionState, stage: Stage, state: ModelState) throws -> Result<
        [GateRow], Message
    > {
        let spec: GateSpec
        let checks: [GateCheck]
        do {
            spec = try policy.spec.get()
            checks = try spec.checks(for: stage)
        } catch let error as GitMLError {
            return .failure(Message("\(error.message) (policy from \(policy.origin))"))
        }
        let name = candidate.file.model
        guard let run = try runRecord(candidate.file.run, in: tree) else {
            return .failure(
                Message(
                    "run \(candidate.file.run.prefix(12)) of version \(candidate.file.version) is not in the pushed commit"
                ))
        }
        var inputs = try policy.inputs(
            candidate: run.record, champion: try champion(of: name, excluding: candidate.file.version),
            version: candidate, registrations: state.registration(of: candidate.file.version),
            environment: check.repository.environment)
        if checks.contains(.lineage) {
            inputs.lineageProblems = try CommitLineage(tree: tree, workspace: check.workspace).problems(
                run: run, artifacts: candidate.file.artifacts)
        }
        if let sections = spec.cardSections(for: stage) {
            inputs.cardProblems = try cardProblems(name, candidate.file.version, sections)
        }
        inputs.probeProblems = try policy.probeProblems(
            checks, model: name, version: candidate.file.version, digest: candidate.file.digest,
            examiner: check.probeExaminer,
            unavailable: "unverifiable: \(Self.noBackend) (a server's hook has no backend)")
        return .success(GateEvaluation.evaluate(checks, inputs))
    }

    /// The champion at the target (its production version, else the last one it had), with its run record as the
    /// target has it; a champion whose record is missing there fails the comparison rather than skipping it.
    private func champion(of name: String, excluding version: Int) throws -> GatePolicy.Champion {
        guard let policyTree, try !policyTree.names(in: "\(Registry.root)/\(name)/versions").isEmpty else {
            return .none
        }
        let state = try Registry(source: policyTree).model(name, now: clock)
        guard let number = state.champion(excluding: version), let file = state.versions[number]?.file else {
            return .none
        }
        let label = "\(name)@\(number)"
        guard let run = try? runRecord(file.run, in: policyTree) else { return .recordMissing(label: label) }
        return .found(record: run.record, label: label)
    }

    /// The committed card examined in a scratch copy of the pushed `.mlops`; nil (not examined) without an examiner.
    private func cardProblems(_ name: String, _ version: Int, _ sections: [String]) throws -> [String]? {
        guard let examiner = check.cardExaminer else { return nil }
        let scratch = try ScratchDirectory()
        _ = try Repository.create(at: scratch.path)
        try tree.extract(under: ".mlops", into: scratch.path)
        let workspace = try Workspace(currentDirectory: scratch.path, environment: check.repository.environment)
        return try examiner(workspace, name, version, sections)
    }

    private func runRecord(_ id: String, in source: CommitTree) throws -> StoredRun? {
        guard SHA256.isDigest(id), let bytes = try source.contents(of: ".mlops/runs/\(id).json") else { return nil }
        return try StoredRun(id: id, bytes: bytes)
    }
}

/// A reason as an error value, for `Result`.
private struct Message: Error {
    let text: String
    init(_ text: String) { self.text = text }
}
