import GitMLBasics
import GitMLGates
import GitMLLineage
import GitMLRegistry
import GitMLRollout
import GitMLStore

/// Changes to a rollout's desired state: the rollout file (`.mlops/rollouts/<model>.yaml`) and the registry
/// events that record why. Used by the CLI (start, pause, resume, abort, promote, rollback) and by the gateway's
/// analysis (advance, abort, promote, finish), so both write the same files the same way, under one lock.
public struct RolloutControl {
    let workspace: Workspace
    let cardExaminer: GateRunner.CardExaminer?

    public init(
        workspace: Workspace, cardExaminer: GateRunner.CardExaminer? = nil
    ) {
        self.workspace = workspace
        self.cardExaminer = cardExaminer
    }

    /// What `rollout start` takes from the command line.
    public struct StartOptions: Sendable {
        public var strategy: Strategy
        public var steps: [Int] = [5, 25, 50, 100]
        public var intervalSeconds: Double?
        public var key: RequestKey = .random
        public var analysis = AnalysisBounds()
        public var durationSeconds = 3600.0
        public var sample = 1.0
        public var keepWarmSeconds = 1800.0
        public var force = false
        public var reason = ""

        public init(strategy: Strategy) { self.strategy = strategy }
    }

    private var registry: Registry { Registry(source: WorkTreeSource(workspace: workspace)) }
    private var writer: RegistryWriter { RegistryWriter(workspace: workspace) }

    private func locked<T>(_ body: () throws -> T) throws -> T {
        let lock = try FileLock(workspace.cacheDirectory + "/rollout.lock")
        defer { lock.release() }
        return try body()
    }

    /// The model's rollout file, or nil when there is none.
    public func plan(_ model: String) throws -> RolloutPlan? {
        try Registry.validate(name: model)
        do {
            return try Self.read(model, in: workspace.files)
        } catch let error as GitMLError {
            throw RolloutError.unreadable(model: model, detail: error.message)
        }
    }

    /// The model's rollout file beneath `files`, parsed (nil when there is none): what the CLI and the gateway read.
    static func read(_ model: String, in files: Beneath) throws -> RolloutPlan? {
        let path = RolloutPlan.path(model: model)
        guard try files.exists(path) else { return nil }
        return try RolloutPlan.parse(try files.read(path, limit: RolloutPlan.largestFile), model: model, source: path)
    }

    /// Writes the file, having read it back first: nothing is written that the gateway could not read.
    private func save(_ plan: RolloutPlan) throws {
        let bytes = Array(plan.yaml().utf8)
        let path = RolloutPlan.path(model: plan.model)
        _ = try RolloutPlan.parse(bytes, model: plan.model, source: path)
        try workspace.files.write(bytes, to: path)
    }

    /// The candidate's production gates, evaluated now as the pre-push hook evaluates them: the failures.
    private func failedGates(_ model: String, _ candidate: Int) throws -> [String] {
        let probes = Gateway.probeExaminer(workspace: workspace, cardExaminer: cardExaminer)
        let (_, _, rows, _) = try GateRunner(workspace: workspace, cardExaminer: cardExaminer, probeExaminer: probes)
            .evaluate(model, version: String(candidate), stage: .production, artifactsVerified: [])
        return rows.filter { !$0.passed }.map { "gate \($0.check): \($0.detail.isEmpty ? $0.observed : $0.detail)" }
    }

    /// Starts a rollout of `reference` (a version of `model`): refused when the registry would refuse its
    /// promotion (its production gates, re-derived now), when it is archived or was rolled back or aborted before
    /// (unless `force`, which is recorded), when no version is in production to return to, or while another
    /// rollout of the model is under way.
    public func start(_ model: String, version reference: String, options: StartOptions) throws -> (
        plan: RolloutPlan, event: RegistryEvent
    ) {
        try locked {
            let state = try registry.model(model)
            let candidate = try state.resolve(reference)
            guard let version = state.versions[candidate] else {
                throw RegistryError.versionNotFound(model: model, reference: reference, known: [])
            }
            if let current = try plan(model), current.phase.isActive {
                throw RolloutError.alreadyRunning(model: model, candidate: current.candidate, phase: current.phase)
            }
            guard let stable = state.production else { throw RolloutError.noRollbackTarget(model: model) }
            guard stable != candidate else { throw RolloutError.alreadyInProduction(model: model, version: candidate) }
            var refusals: [String] = []
            if version.stage == .archived { refusals.append("version \(candidate) is archived") }
            if version.rolledBack { refusals.append("version \(candidate) was rolled back out of production") }
            if let aborted = state.events.last(where: {
                $0.kind == .rollout && $0.version == candidate && $0.value["action"]?.string == "abort"
            }) {
                refusals.append("a rollout of version \(candidate) was aborted before (\(aborted.reason))")
            }
            if !refusals.isEmpty && !options.force {
                throw RolloutError.refused(model: model, version: candidate, reasons: refusals, forceable: true)
            }
            let failed = try failedGates(model, candidate)
            if !failed.isEmpty {
                throw RolloutError.refused(model: model, version: candidate, reasons: failed, forceable: false)
            }
            let now = Timestamp.now()
            let stamp = now.filter { $0 != "-" && $0 != ":" && $0 != "." && $0 != "Z" }
            var plan = RolloutPlan(
                id: "\(model)-v\(candidate)-\(stamp)", model: model, candidate: candidate, stable: stable,
                strategy: options.strategy, started: now,
                by: workspace.repository.identity?.email ?? "")
            plan.steps = options.strategy == .canary ? options.steps : []
            plan.intervalSeconds =
                options.intervalSeconds ?? (options.strategy == .shadow ? min(60, options.durationSeconds) : 300)
            plan.key = options.key
            plan.analysis = options.analysis
            plan.durationSeconds = options.durationSeconds
            plan.sample = options.sample
            plan.keepWarmSeconds = options.keepWarmSeconds
            if options.force && !refusals.isEmpty {
                plan.forced = RolloutPlan.clip(refusals.joined(separator: "; "))
            }
            plan.reason = RolloutPlan.clip(options.reason)
            // Read back before anything is written, so a plan the gateway could not read leaves no event either.
            _ = try RolloutPlan.parse(Array(plan.yaml().utf8), model: model, source: RolloutPlan.path(model: model))
            let event = try writer.recordRollout(
                model, version: candidate, action: "start",
                reason: options.reason.isEmpty ? "\(options.strategy.rawValue) from version \(stable)" : options.reason,
                fields: [
                    "rollout": .string(plan.id), "strategy": .string(plan.strategy.rawValue),
                    "stable": .int(Int64(stable)), "plan": .string(plan.yaml()),
                    "forced": plan.forced.map(JSONValue.string) ?? .null,
                ])
            try save(plan)
            return (plan, event)
        }
    }

    /// The running (or paused) rollout of `model`, or an error saying there is none.
    /// `id`, when given, must be the running rollout's (a gateway acts only on the rollout it judged).
    private func active(_ model: String, id: String? = nil) throws -> RolloutPlan {
        guard let plan = try plan(model) else { throw RolloutError.noRollout(model: model) }
        guard plan.phase.isActive, id == nil || id == plan.id else {
            throw RolloutError.notActive(model: model, phase: plan.phase)
        }
        return plan
    }

    /// Pauses (the weights hold, no analysis) or resumes a rollout.
    public func pause(_ model: String, _ paused: Bool, reason: String) throws -> RolloutPlan {
        try locked {
            var plan = try active(model)
            plan.phase = paused ? .paused : .running
            plan.reason = RolloutPlan.clip(reason)
            _ = try record(plan, action: paused ? "pause" : "resume", reason: reason, decision: nil)
            try save(plan)
            return plan
        }
    }

    /// What an abort did.
    public struct Abort: Sendable {
        public let plan: RolloutPlan
        /// The registry rollback, when the candidate had already taken production (blue-green after its switch).
        public let rolledBack: RegistryEvent?
    }

    /// Sends all traffic back to the stable version and records why (with the analysis' numbers when it decided).
    /// A blue-green candidate that had already taken production is rolled back in the registry as well.
    public func abort(_ model: String, reason: String, decision: Decision? = nil, id: String? = nil) throws -> Abort {
        try locked { try abortHeld(model, reason: reason, decision: decision, id: id) }
    }

    /// `abort`, with the rollout lock already held.
    private func abortHeld(_ model: String, reason: String, decision: Decision?, id: String?) throws -> Abort {
        do {
            var plan = try active(model, id: id)
            plan.phase = .aborted
            plan.reason = RolloutPlan.clip(reason)
            _ = try record(plan, action: "abort", reason: reason, decision: decision)
            var rolledBack: RegistryEvent?
            if try registry.model(model).production == plan.candidate {
                rolledBack = try writer.rollback(model, to: plan.stable, reason: "rollout aborted: \(reason)").event
            }
            try save(plan)
            return Abort(plan: plan, rolledBack: rolledBack)
        }
    }

    /// Makes the candidate the production version now: a stage event whose evidence is the rollout's promote event
    /// (the analysis record, or who promoted by hand).
    public func promote(_ model: String, reason: String, decision: Decision? = nil, id: String? = nil) throws -> (
        plan: RolloutPlan, event: RegistryEvent
    ) {
        try locked {
            var plan = try active(model, id: id)
            guard plan.strategy != .shadow || decision == nil else {
                throw RolloutError.notActive(model: model, phase: plan.phase)
            }
            plan.phase = .promoted
            plan.reason = RolloutPlan.clip(reason)
            let state = try registry.model(model)
            // By hand, the gates are evaluated as `start` did; the analysis' promotion had them evaluated at start
            // and again by the gateway when it loaded the candidate.
            if decision == nil {
                let failed = try failedGates(model, plan.candidate)
                if !failed.isEmpty {
                    throw RolloutError.refused(model: model, version: plan.candidate, reasons: failed, forceable: false)
                }
            }
            let record = try record(plan, action: "promote", reason: reason, decision: decision)
            var stage = record
            if state.production != plan.candidate {
                stage = try writer.promote(
                    model, version: plan.candidate, to: .production,
                    reason: "rollout \(plan.id): \(reason)", evidence: record.id
                ).event
            }
            try save(plan)
            return (plan, stage)
        }
    }

    /// Blue-green: the candidate has taken all traffic; production moves to it (the stable version stays warm).
    public func switchOver(_ model: String, id: String) throws {
        try locked {
            let plan = try active(model)
            guard plan.id == id, try registry.model(model).production != plan.candidate else { return }
            let record = try record(plan, action: "switch", reason: "the candidate took all traffic", decision: nil)
            _ = try writer.promote(
                model, version: plan.candidate, to: .production,
                reason: "blue-green rollout \(plan.id): switched", evidence: record.id)
        }
    }

    /// Blue-green after its warm period, or a shadow after its duration: the rollout is over.
    public func finish(_ model: String, id: String, phase: RolloutPhase, reason: String, decision: Decision?) throws {
        try locked {
            var plan = try active(model)
            guard plan.id == id else { return }
            plan.phase = phase
            plan.reason = RolloutPlan.clip(reason)
            _ = try record(plan, action: phase == .promoted ? "complete" : "finish", reason: reason, decision: decision)
            try save(plan)
        }
    }

    /// A canary step passed: recorded (the gateway moves the weight).
    public func advance(_ model: String, id: String, decision: Decision) throws {
        try locked {
            let plan = try active(model)
            guard plan.id == id else { return }
            _ = try record(plan, action: "advance", reason: decision.reason, decision: decision)
        }
    }

    /// What `model rollback` did.
    public struct Rollback: Sendable {
        /// A rollout was under way: it was aborted, so all traffic is on its stable version again.
        public let abortedRollout: Abort?
        /// Production went back in the registry (not during a canary or shadow unless `--to` named another
        /// version than the rollout's stable one).
        public let registry: (from: Int, to: Int, event: RegistryEvent)?
    }

    /// The incident path: during a rollout, abort it (all traffic to the rollback target at once, no analysis),
    /// and move production too when `target` names another version; otherwise put production back on the
    /// previous version.
    public func rollback(_ model: String, to target: Int?, reason: String) throws -> Rollback {
        let why = reason.isEmpty ? "model rollback" : reason
        // One lock for the whole: the gateway cannot abort or promote between the look and the change.
        return try locked {
            guard let plan = try plan(model), plan.phase.isActive else {
                return Rollback(abortedRollout: nil, registry: try writer.rollback(model, to: target, reason: reason))
            }
            let state = try registry.model(model)
            if let target, target != plan.stable, state.versions[target]?.wasInProduction != true {
                throw RegistryError.neverInProduction(model: model, version: target)
            }
            let aborted = try abortHeld(model, reason: why, decision: nil, id: nil)
            let production = try registry.model(model).production
            guard let target, target != production else { return Rollback(abortedRollout: aborted, registry: nil) }
            let moved = try writer.rollback(model, to: target, reason: reason)
            return Rollback(abortedRollout: aborted, registry: moved)
        }
    }

    private func record(_ plan: RolloutPlan, action: String, reason: String, decision: Decision?) throws
        -> RegistryEvent
    {
        var fields: [String: JSONValue] = [
            "rollout": .string(plan.id), "strategy": .string(plan.strategy.rawValue),
            "stable": .int(Int64(plan.stable)),
        ]
        if let decision { fields["analysis"] = decision.json }
        return try writer.recordRollout(
            plan.model, version: plan.candidate, action: action, reason: reason, fields: fields)
    }
}

/// Why a rollout command refused.
public enum RolloutError: GitMLError {
    case alreadyRunning(model: String, candidate: Int, phase: RolloutPhase)
    case noRollbackTarget(model: String)
    case alreadyInProduction(model: String, version: Int)
    case refused(model: String, version: Int, reasons: [String], forceable: Bool)
    case noRollout(model: String)
    case notActive(model: String, phase: RolloutPhase)
    case notCanary(model: String, strategy: Strategy)
    case unreadable(model: String, detail: String)

    public var code: String {
        switch self {
        case .alreadyRunning: return "rollout-running"
        case .noRollbackTarget: return "no-rollback-target"
        case .alreadyInProduction: return "already-in-production"
        case .refused: return "rollout-refused"
        case .noRollout: return "no-rollout"
        case .notActive: return "rollout-not-active"
        case .notCanary: return "not-canary"
        case .unreadable: return "rollout-file-unreadable"
        }
    }

    public var exitStatus: Int32 {
        switch self {
        case .refused: return ExitStatus.checkFailed
        default: return ExitStatus.operational
        }
    }

    public var message: String {
        switch self {
        case .alreadyRunning(let model, let candidate, let phase):
            return "a rollout of \(model) version \(candidate) is \(phase.rawValue)"
        case .noRollbackTarget(let model):
            return "no version of \(model) is in production, so a rollout would have nothing to return to"
        case .alreadyInProduction(let model, let version): return "\(model) version \(version) is already in production"
        case .refused(let model, let version, let reasons, _):
            return "\(model) version \(version) may not be rolled out: \(reasons.joined(separator: "; "))"
        case .noRollout(let model): return "\(model) has no rollout (\(RolloutPlan.path(model: model)))"
        case .notActive(let model, let phase): return "the rollout of \(model) is \(phase.rawValue), not running"
        case .notCanary(let model, let strategy):
            return "the rollout of \(model) is \(strategy.rawValue); Argo Rollouts export needs a canary"
        case .unreadable(_, let detail): return detail
        }
    }

    public var hint: String {
        switch self {
        case .alreadyRunning(let model, _, _): return "git ml rollout status \(model), then abort or promote it"
        case .noRollbackTarget(let model): return "promote a first version the usual way: git ml model promote \(model)"
        case .alreadyInProduction: return "roll out a newer version"
        case .refused(_, _, _, let forceable):
            return forceable
                ? "pass --force to roll it out anyway (recorded in the rollout file and the event)"
                : "fix what the gates report (git ml gate check), then start again"
        case .noRollout(let model): return "start one: git ml rollout start \(model) <version>"
        case .notActive(let model, _): return "git ml rollout status \(model)"
        case .notCanary: return "export --format kserve works for every strategy"
        case .unreadable(let model, _):
            return
                "a running gateway has sent all traffic to the stable version; fix \(RolloutPlan.path(model: model)) "
                + "(or git checkout it), then run the command again"
        }
    }
}
