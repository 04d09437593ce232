import GitMLBasics
import GitMLRegistry

/// One check of `.mlops/gates.yaml`.
public enum GateCheck: Sendable, Equatable {
    /// A recorded metric within bounds. `kind` labels the row: metric, latency or cost.
    case threshold(kind: String, metric: String, min: Double?, max: Double?, minSamples: Double?)
    /// No worse than the champion (the production version) by more than an absolute or relative margin.
    case regression(metric: String, maxDrop: Double?, maxDropPercent: Double?, lowerIsBetter: Bool)
    /// The recorded input schema equals the champion's.
    case schema
    /// A clean commit, a recorded seed, and data and artifacts that still verify.
    case lineage
    /// At least `count` approvals, from config.yaml's approvers, and not from the run's owner when asked.
    case approvals(count: Int, distinctFromOwner: Bool)
    /// A committed model card, fresh, with these sections present and not empty (empty: the default sections).
    case card(sections: [String])
    /// Golden request/response pairs (a JSON-lines file in the repository, read where the policy is read) replayed
    /// against the version started as `git ml serve` starts it: no drift.
    case probe(golden: String)
    /// No checks, on purpose: the stage takes any version. Without it an empty stage blocks every promotion.
    case ungated
}

/// `.mlops/gates.yaml`: the checks a version must pass before it may enter each stage.
public struct GateSpec: Sendable {
    public let checks: [Stage: [GateCheck]]
    /// The SHA-256 of the file's bytes: evidence names the gates it was evaluated against.
    public let digest: String

    public static let file = ".mlops/gates.yaml"

    /// Reads the file's bytes; anything it cannot understand is an error naming the entry, never a pass.
    public static func parse(_ bytes: [UInt8], digest: String) throws -> GateSpec {
        let value = try YAMLReader.parse(bytes, source: file)
        guard case .object(let top) = value else {
            throw GateError.malformedSpec("expected a mapping with staging: and production: lists")
        }
        var checks: [Stage: [GateCheck]] = [:]
        for (key, entries) in top {
            if key == "version" { continue }
            guard let stage = Stage(rawValue: key), stage == .staging || stage == .production else {
                throw GateError.malformedSpec("unknown key \(key): use staging: and production:")
            }
            guard case .array(let items) = entries else {
                if entries == .null { checks[stage] = []; continue }
                throw GateError.malformedSpec("\(key) must be a list of checks")
            }
            checks[stage] = try items.enumerated().map { try check($1, at: "\(key)[\($0)]") }
        }
        return GateSpec(checks: checks, digest: digest)
    }

    private static func check(_ value: JSONValue, at place: String) throws -> GateCheck {
        guard case .object(let fields) = value else { throw GateError.malformedSpec("\(place) must be a mapping") }
        func number(_ key: String) throws -> Double? {
            guard let field = fields[key], field != .null else { return nil }
            guard let n = field.number, n.isFinite else {
                throw GateError.malformedSpec("\(place).\(key) must be a number")
            }
            return n
        }
        func allowOnly(_ keys: Set<String>) throws {
            if let extra = fields.keys.sorted().first(where: { !keys.contains($0) }) {
                throw GateError.malformedSpec("\(place) has unknown field \(extra)")
            }
        }
        for kind in ["metric", "latency", "cost"] {
            guard let name = fields[kind] else { continue }
            try allowOnly([kind, "min", "max", "min_samples"])
            guard let metric = name.string, !metric.isEmpty else {
                throw GateError.malformedSpec("\(place).\(kind) must name a metric")
            }
            let (min, max) = (try number("min"), try number("max"))
            guard min != nil || max != nil else { throw GateError.malformedSpec("\(place) needs min: or max:") }
            return .threshold(kind: kind, metric: metric, min: min, max: max, minSamples: try number("min_samples"))
        }
        if let name = fields["regression"] {
            try allowOnly(["regression", "max_drop", "max_drop_pct", "direction"])
            guard let metric = name.string, !metric.isEmpty else {
                throw GateError.malformedSpec("\(place).regression must name a metric")
            }
            let (drop, percent) = (try number("max_drop"), try number("max_drop_pct"))
            guard drop != nil || percent != nil else {
                throw GateError.malformedSpec("\(place) needs max_drop: or max_drop_pct:")
            }
            let direction = fields["direction"]?.string ?? "higher"
            guard direction == "higher" || direction == "lower" else {
                throw GateError.malformedSpec("\(place).direction must be higher or lower (which way is better)")
            }
            return .regression(
                metric: metric, maxDrop: drop, maxDropPercent: percent, lowerIsBetter: direction == "lower")
        }
        if fields["schema"] != nil {
            try allowOnly(["schema"])
            return .schema
        }
        if let ungated = fields["ungated"] {
            try allowOnly(["ungated"])
            guard ungated == .bool(true) else {
                throw GateError.malformedSpec("\(place).ungated must be true (remove the entry to require checks)")
            }
            return .ungated
        }
        if let golden = fields["probe"] {
            try allowOnly(["probe"])
            let parts = golden.string?.split(separator: "/", omittingEmptySubsequences: false) ?? []
            guard let path = golden.string, !path.hasPrefix("/"), path.utf8.count < 1024,
                !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
            else {
                throw GateError.malformedSpec(
                    "\(place).probe must be a golden file's path in the repository, such as probes/churn.jsonl")
            }
            return .probe(golden: path)
        }
        if fields["lineage"] != nil {
            try allowOnly(["lineage"])
            return .lineage
        }
        if fields["card"] != nil {
            try allowOnly(["card", "sections"])
            guard let sections = fields["sections"] else { return .card(sections: []) }
            guard case .array(let items) = sections, let names = Optional(items.compactMap(\.string)),
                names.count == items.count
            else {
                throw GateError.malformedSpec("\(place).sections must be a list of section titles")
            }
            return .card(sections: names)
        }
        if let count = fields["approvals"] {
            try allowOnly(["approvals", "distinct_from_owner"])
            guard let n = count.int(in: 0...100) else {
                throw GateError.malformedSpec("\(place).approvals must be a whole number from 0 to 100")
            }
            return .approvals(count: n, distinctFromOwner: fields["distinct_from_owner"]?.bool ?? false)
        }
        throw GateError.malformedSpec(
            "\(place) is not a check: use metric, latency, cost, regression, schema, lineage, approvals, card, probe or ungated"
        )
    }

    /// The checks a version must pass to enter `stage`. A stage with no section, a null one or an empty list has
    /// no declared policy, and that blocks the promotion (fail closed); `- ungated: true` lets it through on purpose.
    public func checks(for stage: Stage) throws -> [GateCheck] {
        guard let declared = checks[stage], !declared.isEmpty else { throw GateError.noGates(stage: stage.rawValue) }
        return declared
    }

    /// The card sections a stage's gates require (nil when no card check is declared for it).
    public func cardSections(for stage: Stage) -> [String]? {
        for check in checks[stage] ?? [] {
            if case .card(let sections) = check { return sections }
        }
        return nil
    }

    /// The golden files every stage's `probe` checks name.
    public var goldenFiles: [String] {
        Array(
            Set(
                checks.values.joined().compactMap {
                    if case .probe(let golden) = $0 { return golden }
                    return nil
                })
        ).sorted()
    }

    /// How many approvals `stage` requires, and whether the owner's own approval counts.
    public func approvalPolicy(for stage: Stage) -> (count: Int, distinctFromOwner: Bool)? {
        for check in checks[stage] ?? [] {
            if case .approvals(let count, let distinct) = check { return (count, distinct) }
        }
        return nil
    }
}
