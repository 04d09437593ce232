import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLRegistry
import GitMLStore

/// A promotion a push or a range adds that may not go through, and why.
public struct BlockedPromotion: Sendable {
    public let model: String
    public let version: Int
    public let stage: String
    /// The event file that records the promotion.
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

/// The check the pre-push hook and `git ml verify --range` share: every promotion to staging or production that
/// `new` adds (over `bases`) must carry passing gate evidence for that exact version, the approvals its gates
/// require, and artifacts whose digests are the registered ones. Everything is read from the commits, never
/// from the work tree, so what is judged is what is pushed.
public struct PromotionCheck {
    let repository: Repository

    public init(repository: Repository) { self.repository = repository }

    /// How many promotion events were looked at, and the ones blocked.
    public func check(new: String, bases: [String]) throws -> (promotions: Int, blocked: [BlockedPromotion]) {
        let tree = try CommitTree(repository, revision: new)
        let baseTrees = try bases.filter(repository.hasObject).map { try CommitTree(repository, revision: $0) }
        // An event is new when no base has it: the intersection of what changed since each base.
        var added: Set<String>?
        for base in baseTrees.isEmpty ? [nil] : baseTrees.map(Optional.some) {
            let changed = Set(try tree.filesChanged(since: base, under: Registry.root))
            added = added.map { $0.intersection(changed) } ?? changed
        }
        let events = (added ?? []).filter { $0.contains("/events/") && $0.hasSuffix(".json") }.sorted()
        guard !events.isEmpty else { return (0, []) }

        let registry = Registry(source: tree)
        var specResult: Result<GateSpec, Error>?
        func spec() throws -> GateSpec {
            if let specResult { return try specResult.get() }
            let result = Result<GateSpec, Error> {
                guard let bytes = try tree.contents(of: GateSpec.file) else {
                    throw GateError.malformedSpec("the pushed commit has no gates file")
                }
                return try GateSpec.parse(bytes, digest: try SHA256.hex(of: bytes))
            }
            specResult = result
            return try result.get()
        }
        let approvers = try tree.contents(of: ".mlops/config.yaml").map { try Config.parse($0).approvers } ?? []
        var states: [String: ModelState] = [:]
        var promotions = 0
        var blocked: [BlockedPromotion] = []
        for path in events {
            guard let event = try registry.event(at: path), event.kind == .stage,
                let stage = event.to, stage == .staging || stage == .production
            else { continue }
            promotions += 1
            let state = try states[event.model] ?? registry.model(event.model)
            states[event.model] = state
            let reasons = try problems(with: event, stage: stage, state: state, spec: spec, approvers: approvers)
            guard !reasons.isEmpty else { continue }
            let target = "\(event.model) \(event.version) --to \(stage.rawValue)"
            blocked.append(
                BlockedPromotion(
                    model: event.model, version: event.version, stage: stage.rawValue, event: path, reasons: reasons,
                    fix: reasons.contains { $0.contains("approval") } && !reasons.contains { $0.contains("gate") }
                        ? "git ml model approve \(event.model) \(event.version), then git ml gate check \(target)"
                        : "git ml gate check \(target)"))
        }
        return (promotions, blocked)
    }

    private func problems(
        with event: RegistryEvent, stage: Stage, state: ModelState, spec: () throws -> GateSpec, approvers: [String]
    ) throws -> [String] {
        guard let version = state.versions[event.version]?.file else {
            return ["version \(event.version) has no version file in the pushed commit"]
        }
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
        let gates: GateSpec
        do { gates = try spec() } catch let error as GitMLError {
            return reasons + [error.message]
        }
        let evidence =
            state.versions[event.version]?.gates.filter {
                $0.value["stage"]?.string == stage.rawValue && $0.versionDigest == version.digest
            } ?? []
        if evidence.isEmpty {
            reasons.append("no gate evidence for \(stage.rawValue)")
        } else if let latest = evidence.last, !latest.passed {
            let failing = (latest.value["checks"]?.array ?? []).filter { $0["passed"]?.bool == false }
                .compactMap { $0["check"]?.string }
            reasons.append("the last gate check failed: \(failing.joined(separator: ", "))")
        } else if evidence.last?.value["gates_digest"]?.string != gates.digest {
            reasons.append("gates.yaml changed since the gate check passed")
        }
        if let policy = gates.approvalPolicy(for: stage) {
            let owner = version.owner["email"]?.string ?? ""
            let emails = (state.versions[event.version]?.approvals ?? []).filter { $0.versionDigest == version.digest }
                .map(\.actorEmail)
            let valid = Approvals.valid(
                emails, allowed: approvers, owner: owner, distinctFromOwner: policy.distinctFromOwner)
            if valid.count < policy.count {
                reasons.append("\(valid.count) of \(policy.count) required approval(s)")
            }
        }
        return reasons
    }
}
