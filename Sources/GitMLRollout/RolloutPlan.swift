import GitMLBasics

/// How a candidate reaches traffic.
public enum Strategy: String, Sendable, CaseIterable {
    /// A growing share of requests, chosen by a hash of a request key, with analysis at every step.
    case canary
    /// Every request (or a share) is copied to the candidate; only the stable version answers.
    case shadow
    /// The candidate is started beside the stable version and takes all traffic at once; the stable one stays warm.
    case blueGreen = "blue-green"
}

/// What the rollout file asks for. The gateway acts on it; `rollout pause|resume|abort|promote` change it.
public enum RolloutPhase: String, Sendable, CaseIterable {
    case running, paused, aborted, promoted
    /// A shadow rollout whose duration ended: its verdict is recorded, nothing was promoted.
    case finished

    /// True while the gateway should keep a candidate next to the stable version.
    public var isActive: Bool { self == .running || self == .paused }
}

/// Which part of a request decides the arm that serves it.
public enum RequestKey: Sendable, Equatable, CustomStringConvertible {
    /// A header's value (`header:x-user-id`).
    case header(String)
    /// A top-level field of a JSON body (`json:user_id`).
    case json(String)
    /// A random draw per request (no key: the split holds on average, not per user).
    case random

    public init?(_ text: String) {
        if text == "random" {
            self = .random
            return
        }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty, parts[1].count <= 128,
            parts[1].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") })
        else { return nil }
        switch parts[0] {
        case "header": self = .header(parts[1].lowercased())
        case "json": self = .json(parts[1])
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .header(let name): return "header:\(name)"
        case .json(let field): return "json:\(field)"
        case .random: return "random"
        }
    }
}

/// The bounds a candidate must stay within (`analysis:`).
public struct AnalysisBounds: Sendable, Equatable {
    /// The candidate's share of 5xx answers (and timeouts) at most.
    public var maxErrorRate = 0.01
    /// The candidate's 99th percentile latency at most, in milliseconds.
    public var maxP99Milliseconds: Double?
    /// The candidate's median latency over the stable version's, at most.
    public var maxLatencyRatio: Double?
    /// Requests the candidate must have answered in an interval before it is judged (fewer: hold).
    public var minRequests = 100
    /// Shadow: the share of compared answers that must agree with the stable version's.
    public var minAgreement: Double?
    /// Shadow: how far two numbers may differ and still agree (absolute, or relative to the larger).
    public var tolerance = 1e-6

    public init() {}
}

/// `.mlops/rollouts/<model>.yaml`: the desired state of one model's rollout, committed and reviewed like code.
/// Repository content, so every key is known, every number range-checked and a duplicate key an error.
public struct RolloutPlan: Sendable, Equatable {
    public static let directory = ".mlops/rollouts"
    public static let format = 1

    public static func path(model: String) -> String { "\(directory)/\(model).yaml" }

    /// The largest rollout file read (a reviewer's file is a few hundred bytes).
    public static let largestFile = 64 << 10

    /// A reason as the file keeps it: at most 1,000 characters, on one line.
    public static func clip(_ text: String) -> String {
        String(text.prefix(1000).map { $0.isNewline ? " " : $0 })
    }

    /// Names this rollout: the hash salt for routing and the key of its operational state.
    public var id: String
    public var model: String
    public var candidate: Int
    /// The version serving before the rollout: all traffic returns to it on abort or rollback.
    public var stable: Int
    public var strategy: Strategy
    public var phase: RolloutPhase = .running
    /// Canary weights in percent, ascending, the last 100.
    public var steps: [Int] = []
    /// How long each canary step (or each shadow analysis) runs before it is judged.
    public var intervalSeconds = 300.0
    public var key: RequestKey = .random
    public var analysis = AnalysisBounds()
    /// Shadow: how long requests are mirrored.
    public var durationSeconds = 3600.0
    /// Shadow: the share of requests mirrored.
    public var sample = 1.0
    /// Blue-green: how long the old version stays running after the switch.
    public var keepWarmSeconds = 1800.0
    /// Started with --force over a refusal (recorded, with the refusal).
    public var forced: String?
    public var started: String
    public var startedBy: String
    /// Why the phase last changed (`rollout abort --reason`, the analysis' verdict).
    public var reason = ""

    public init(id: String, model: String, candidate: Int, stable: Int, strategy: Strategy, started: String, by: String)
    {
        self.id = id
        self.model = model
        self.candidate = candidate
        self.stable = stable
        self.strategy = strategy
        self.started = started
        startedBy = by
    }

    /// The weight in percent the candidate has at canary step `index` (blue-green: 100 once switched).
    public func weight(atStep index: Int) -> Int {
        switch strategy {
        case .canary: return steps.isEmpty ? 0 : steps[max(0, min(index, steps.count - 1))]
        case .shadow: return 0
        case .blueGreen: return 100
        }
    }

    /// The candidate's share now: the saved weight while the rollout runs (before any gateway saved one, a
    /// canary's first step and nothing for the others), all of it once promoted, none once aborted or finished.
    public func currentWeight(saved: Int?) -> Int {
        switch phase {
        case .running, .paused: return saved ?? (strategy == .canary ? weight(atStep: 0) : 0)
        case .promoted: return strategy == .shadow ? 0 : 100
        case .aborted, .finished: return 0
        }
    }

    /// Checks canary steps: ascending percentages from 1 to 100, the last 100.
    public static func validate(steps: [Int]) -> String? {
        guard !steps.isEmpty, steps.count <= 100 else { return "steps must list 1 to 100 weights, such as 5,25,50,100" }
        guard steps.allSatisfy({ (1...100).contains($0) }) else { return "each step is a percentage from 1 to 100" }
        guard zip(steps, steps.dropFirst()).allSatisfy({ $0 < $1 }) else { return "steps must increase" }
        guard steps.last == 100 else { return "the last step must be 100 (the candidate takes all traffic)" }
        return nil
    }

    // MARK: - The file

    /// The file's text: YAML a reviewer reads (strings are JSON-quoted, which YAML reads as the same strings).
    public func yaml() -> String {
        func quoted(_ text: String) -> String { JSONWriter.compact(.string(text)) }
        func number(_ value: Double) -> String { JSONWriter.format(value) }
        var lines = [
            "# The rollout of \(model) version \(candidate): written by git ml rollout start, changed by",
            "# git ml rollout pause|resume|abort|promote and by the gateway's analysis. docs/commands/rollout.md",
            "format: \(Self.format)",
            "id: \(quoted(id))",
            "model: \(quoted(model))",
            "candidate: \(candidate)",
            "stable: \(stable)",
            "strategy: \(strategy.rawValue)",
            "phase: \(phase.rawValue)",
        ]
        switch strategy {
        case .canary:
            lines.append("steps: [\(steps.map(String.init).joined(separator: ", "))]")
            lines.append("interval_seconds: \(number(intervalSeconds))")
            lines.append("key: \(quoted(key.description))")
        case .shadow:
            lines.append("duration_seconds: \(number(durationSeconds))")
            lines.append("interval_seconds: \(number(intervalSeconds))")
            lines.append("sample: \(number(sample))")
        case .blueGreen:
            lines.append("keep_warm_seconds: \(number(keepWarmSeconds))")
        }
        if strategy != .blueGreen {
            lines.append("analysis:")
            lines.append("  max_error_rate: \(number(analysis.maxErrorRate))")
            if let value = analysis.maxP99Milliseconds { lines.append("  max_p99_ms: \(number(value))") }
            if let value = analysis.maxLatencyRatio { lines.append("  max_latency_ratio: \(number(value))") }
            lines.append("  min_requests: \(analysis.minRequests)")
            if strategy == .shadow {
                if let value = analysis.minAgreement { lines.append("  min_agreement: \(number(value))") }
                lines.append("  tolerance: \(number(analysis.tolerance))")
            }
        }
        if let forced { lines.append("forced: \(quoted(forced))") }
        lines.append("started: \(quoted(started))")
        lines.append("started_by: \(quoted(startedBy))")
        if !reason.isEmpty { lines.append("reason: \(quoted(reason))") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads a rollout file. `model` is the name its path gives: a file naming another model is refused.
    public static func parse(_ bytes: [UInt8], model expected: String, source: String) throws -> RolloutPlan {
        let reader = KeyReader(source: source)
        let top = try reader.mapping(try YAMLReader.parse(bytes, source: source), "the top level")
        try reader.only(
            top,
            [
                "format", "id", "model", "candidate", "stable", "strategy", "phase", "steps", "interval_seconds", "key",
                "duration_seconds", "sample", "keep_warm_seconds", "analysis", "forced", "started", "started_by",
                "reason",
            ], at: "")
        guard try reader.int(top["format"], "format", 1...1) == 1 else { throw reader.bad("format: 1 is missing") }
        func text(_ key: String, required: Bool = true) throws -> String? {
            guard let value = top[key], value != .null else {
                if required { throw reader.bad("\(key) is missing") }
                return nil
            }
            guard let string = value.string, string.utf8.count <= 4096 else { throw reader.bad("\(key) must be text") }
            return string
        }
        let id = try text("id") ?? ""
        guard !id.isEmpty, id.utf8.count <= 200,
            id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
        else { throw reader.bad("id must be printable text without spaces or quotes, at most 200 bytes") }
        guard try text("model") == expected else {
            throw reader.bad("model must be \(expected), as the file's name says")
        }
        guard let candidate = try reader.int(top["candidate"], "candidate", 1...1_000_000),
            let stable = try reader.int(top["stable"], "stable", 1...1_000_000)
        else { throw reader.bad("candidate and stable must be version numbers") }
        guard candidate != stable else { throw reader.bad("candidate and stable must be different versions") }
        guard let strategyText = try text("strategy"), let strategy = Strategy(rawValue: strategyText) else {
            throw reader.bad("strategy must be one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var plan = RolloutPlan(
            id: id, model: expected, candidate: candidate, stable: stable, strategy: strategy,
            started: try text("started", required: false) ?? "", by: try text("started_by", required: false) ?? "")
        guard let phaseText = try text("phase"), let phase = RolloutPhase(rawValue: phaseText) else {
            throw reader.bad("phase must be one of \(RolloutPhase.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        plan.phase = phase
        plan.forced = try text("forced", required: false)
        plan.reason = try text("reason", required: false) ?? ""
        plan.intervalSeconds =
            try reader.number(top["interval_seconds"], "interval_seconds", 1...86_400) ?? plan.intervalSeconds
        plan.durationSeconds =
            try reader.number(top["duration_seconds"], "duration_seconds", 1...2_592_000) ?? plan.durationSeconds
        plan.sample = try reader.number(top["sample"], "sample", 0.0001...1) ?? plan.sample
        plan.keepWarmSeconds =
            try reader.number(top["keep_warm_seconds"], "keep_warm_seconds", 0...2_592_000) ?? plan.keepWarmSeconds
        if let key = try text("key", required: false) {
            guard let parsed = RequestKey(key) else {
                throw reader.bad("key must be header:<name>, json:<field> or random")
            }
            plan.key = parsed
        }
        if strategy == .canary {
            guard case .array(let items) = top["steps"] ?? .null else {
                throw reader.bad("steps must be a list of weights such as [5, 25, 50, 100]")
            }
            plan.steps = try items.map {
                guard let weight = $0.int(in: 1...100) else {
                    throw reader.bad("each step is a percentage from 1 to 100")
                }
                return weight
            }
            if let problem = validate(steps: plan.steps) { throw reader.bad(problem) }
        } else if top["steps"] != nil {
            throw reader.bad("steps is a setting of the canary strategy only")
        }
        let analysis = try reader.mapping(top["analysis"] ?? .null, "analysis")
        try reader.only(
            analysis,
            ["max_error_rate", "max_p99_ms", "max_latency_ratio", "min_requests", "min_agreement", "tolerance"],
            at: "analysis.")
        var bounds = AnalysisBounds()
        bounds.maxErrorRate =
            try reader.number(analysis["max_error_rate"], "analysis.max_error_rate", 0...1) ?? bounds.maxErrorRate
        bounds.maxP99Milliseconds = try reader.number(analysis["max_p99_ms"], "analysis.max_p99_ms", 0.001...3_600_000)
        bounds.maxLatencyRatio = try reader.number(
            analysis["max_latency_ratio"], "analysis.max_latency_ratio", 0.01...1000)
        bounds.minRequests =
            try reader.int(analysis["min_requests"], "analysis.min_requests", 1...100_000_000) ?? bounds.minRequests
        bounds.minAgreement = try reader.number(analysis["min_agreement"], "analysis.min_agreement", 0...1)
        bounds.tolerance = try reader.number(analysis["tolerance"], "analysis.tolerance", 0...1e12) ?? bounds.tolerance
        plan.analysis = bounds
        return plan
    }
}
