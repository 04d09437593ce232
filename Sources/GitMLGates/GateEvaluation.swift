import Foundation
import GitMLBasics
import GitMLGit

/// One evaluated check: what was observed, against what, and whether it passed.
public struct GateRow: Sendable, Equatable {
    public var check: String
    public var observed: String
    public var threshold: String
    public var passed: Bool
    public var detail: String
    /// It passes, but says something a reviewer should know (an ungated stage, unsigned approvals).
    public var warning = false

    public var json: JSONValue {
        .object([
            "check": .string(check), "observed": .string(observed), "threshold": .string(threshold),
            "passed": .bool(passed), "detail": .string(detail), "warning": .bool(warning),
        ])
    }
}

/// One approval event of the candidate version, with what its signature says.
public struct ApprovalInput: Sendable, Equatable {
    public enum Signature: Sendable, Equatable {
        /// No allowed_signers file judges approvals: every approval counts, signed or not.
        case notRequired
        case good
        case unsigned
        case bad(String)
    }
    public var email: String
    public var signature: Signature

    public init(email: String, signature: Signature) {
        self.email = email
        self.signature = signature
    }

    var counts: Bool { signature == .notRequired || signature == .good }
}

/// Everything a gate evaluation looks at, gathered beforehand so the evaluation itself is pure.
public struct GateInputs: Sendable {
    /// The candidate version's run record.
    public var candidate: JSONValue
    /// The champion's run record (the production version's), when there is one other than the candidate.
    public var champion: JSONValue?
    public var championLabel: String = ""
    /// Lineage problems found by re-hashing the candidate's data and artifacts ("modified data/a.csv", ...).
    public var lineageProblems: [String] = []
    /// Everyone who approved this exact version, with what their signature says.
    public var approvals: [ApprovalInput] = []
    /// config.yaml's approvers; empty means anyone.
    public var allowedApprovers: [String] = []
    /// True when an allowed_signers file judges approvals (only those with a good signature count).
    public var signaturesRequired = false
    /// Everyone who counts as the version's owner (the run's, the version file's and the registrant's email).
    public var owners: [String] = []
    /// Under allowed_signers, no good signature names who registered the version: its owner cannot be known.
    public var ownerUnknown = false
    /// A champion exists but its run record is missing: comparisons with it fail rather than pass.
    public var championRecordMissing = false
    /// What is wrong with the version's committed card (empty: nothing); nil when it was not examined.
    public var cardProblems: [String]?
    /// Each golden file's SHA-256 and failed probes (empty: none), by path; a file missing here was not replayed.
    public var probeProblems: [String: (sha256: String, problems: [String])] = [:]

    public init(candidate: JSONValue) { self.candidate = candidate }
}

/// Pure evaluation of gate checks.
public enum GateEvaluation {
    /// One row per check, in the order declared.
    public static func evaluate(_ checks: [GateCheck], _ inputs: GateInputs) -> [GateRow] {
        checks.flatMap { evaluate($0, inputs) }
    }

    static func evaluate(_ check: GateCheck, _ inputs: GateInputs) -> [GateRow] {
        let metrics = inputs.candidate["metrics"]?.object ?? [:]
        switch check {
        case .threshold(let kind, let metric, let min, let max, let minSamples):
            let label = "\(kind) \(metric)"
            let bounds = [min.map { ">= \(NumberText.format($0))" }, max.map { "<= \(NumberText.format($0))" }]
                .compactMap { $0 }.joined(separator: ", ")
            guard let value = metrics[metric]?.number else {
                return [missingMetric(label, metric, bounds, metrics)]
            }
            let passed = value.isFinite && (min.map { value >= $0 } ?? true) && (max.map { value <= $0 } ?? true)
            var rows = [
                GateRow(
                    check: label, observed: NumberText.format(value), threshold: bounds, passed: passed,
                    detail: passed ? "within bounds" : "\(metric) is \(NumberText.format(value)), outside \(bounds)")
            ]
            if let minSamples, let slice = metric.split(separator: "@", maxSplits: 1).dropFirst().first {
                // The slice's size, when the record carries one (n@, count@ or samples@ the same slice).
                if let size = ["n", "count", "samples"].lazy.compactMap({ metrics["\($0)@\(slice)"]?.number }).first {
                    let ok = size >= minSamples
                    rows.append(
                        GateRow(
                            check: "slice size \(slice)", observed: NumberText.format(size),
                            threshold: ">= \(NumberText.format(minSamples))",
                            passed: ok,
                            detail: ok ? "enough samples" : "slice \(slice) has only \(NumberText.format(size)) samples"
                        ))
                }
            }
            return rows
        case .regression(let metric, let maxDrop, let maxDropPercent, let lowerIsBetter):
            let label = "regression \(metric)"
            let limits = [
                maxDrop.map { "drop <= \(NumberText.format($0))" },
                maxDropPercent.map { "drop <= \(NumberText.format($0))%" },
            ]
            .compactMap { $0 }.joined(separator: ", ")
            guard let value = metrics[metric]?.number else { return [missingMetric(label, metric, limits, metrics)] }
            if inputs.championRecordMissing { return [championMissing(label, inputs.championLabel)] }
            guard let champion = inputs.champion else {
                return [
                    GateRow(
                        check: label, observed: NumberText.format(value), threshold: limits, passed: true,
                        detail: "no version was ever in production to compare with")
                ]
            }
            guard let old = champion["metrics"]?[metric]?.number else {
                return [
                    GateRow(
                        check: label, observed: NumberText.format(value), threshold: limits, passed: false,
                        detail: "the champion (\(inputs.championLabel)) recorded no \(metric) to compare with")
                ]
            }
            let drop = lowerIsBetter ? value - old : old - value
            let percent = old == 0 ? (drop > 0 ? Double.infinity : 0) : drop / abs(old) * 100
            let passed = (maxDrop.map { drop <= $0 } ?? true) && (maxDropPercent.map { percent <= $0 } ?? true)
            return [
                GateRow(
                    check: label, observed: "\(NumberText.format(value)) vs \(NumberText.format(old))",
                    threshold: limits, passed: passed,
                    detail: passed
                        ? "no worse than \(inputs.championLabel) beyond the margin"
                        : "\(metric) is \(NumberText.format(drop)) (\(NumberText.format(percent))%) worse than \(inputs.championLabel)"
                )
            ]
        case .schema:
            let mine = inputs.candidate["schema"]
            let theirs = inputs.champion?["schema"]
            if inputs.championRecordMissing { return [championMissing("schema", inputs.championLabel)] }
            guard inputs.champion != nil else {
                return [
                    GateRow(
                        check: "schema", observed: mine == nil ? "none" : "recorded", threshold: "= champion",
                        passed: true, detail: "no version was ever in production to compare with")
                ]
            }
            if mine == theirs {
                return [
                    GateRow(
                        check: "schema", observed: mine == nil ? "none" : "same", threshold: "= champion", passed: true,
                        detail: mine == nil
                            ? "neither run recorded an input schema"
                            : "same columns and types as \(inputs.championLabel)")
                ]
            }
            return [
                GateRow(
                    check: "schema", observed: "differs", threshold: "= champion", passed: false,
                    detail: schemaDifferences(mine, theirs))
            ]
        case .lineage:
            let dirty = inputs.candidate["git"]?["dirty"]?.bool != false
            let seeded = (inputs.candidate["seed"] ?? .null) != .null
            return [
                GateRow(
                    check: "lineage clean commit", observed: dirty ? "dirty" : "clean", threshold: "clean",
                    passed: !dirty,
                    detail: dirty
                        ? "the run was recorded from a work tree with uncommitted changes"
                        : "recorded at a clean commit"),
                GateRow(
                    check: "lineage seed", observed: seeded ? "recorded" : "none", threshold: "recorded",
                    passed: seeded,
                    detail: seeded ? "seed recorded" : "the run recorded no seed: use git ml run --seed"),
                GateRow(
                    check: "lineage verify",
                    observed: inputs.lineageProblems.isEmpty ? "ok" : "\(inputs.lineageProblems.count) problem(s)",
                    threshold: "all verify", passed: inputs.lineageProblems.isEmpty,
                    detail: inputs.lineageProblems.isEmpty
                        ? "data and artifacts match the record"
                        : inputs.lineageProblems.prefix(5).joined(separator: "; ")),
            ]
        case .card:
            guard let problems = inputs.cardProblems else {
                return [
                    GateRow(
                        check: "card", observed: "not examined", threshold: "fresh and complete", passed: false,
                        detail: "the card could not be examined")
                ]
            }
            return [
                GateRow(
                    check: "card", observed: problems.isEmpty ? "fresh and complete" : "\(problems.count) problem(s)",
                    threshold: "fresh and complete", passed: problems.isEmpty,
                    detail: problems.isEmpty
                        ? "the committed card is complete and current" : problems.joined(separator: "; "))
            ]
        case .probe(let golden):
            let (sha256, problems) = inputs.probeProblems[golden] ?? ("", ["the golden probes were not replayed"])
            let answers = sha256.isEmpty ? "" : " (\(golden) sha256 \(sha256.prefix(12)))"
            return [
                GateRow(
                    check: "probe \(golden)", observed: problems.isEmpty ? "no drift" : "\(problems.count) problem(s)",
                    threshold: "no drift", passed: problems.isEmpty,
                    detail: (problems.isEmpty
                        ? "every golden probe answered as recorded" : problems.prefix(5).joined(separator: "; "))
                        + answers)
            ]
        case .approvals(let count, let distinctFromOwner):
            let owners = Array(
                Set(
                    ([inputs.candidate["owner"]?["email"]?.string ?? ""] + inputs.owners)
                        .map(GitIdentity.normalize).filter { !$0.isEmpty })
            ).sorted()
            let owner = owners.joined(separator: ", ")
            let signed = inputs.approvals.filter(\.counts).map(\.email)
            let valid = Approvals.valid(
                signed, allowed: inputs.allowedApprovers, owners: owners, distinctFromOwner: distinctFromOwner)
            if distinctFromOwner && inputs.ownerUnknown {
                return [
                    GateRow(
                        check: "approvals", observed: "owner unknown", threshold: ">= \(count)", passed: false,
                        detail: "the version's registration carries no signature from .mlops/allowed_signers, so who "
                            + "owns it (and may not approve it) is not known: register it again with git signing")
                ]
            }
            let passed = valid.count >= count
            var notCounting: [String] = []
            for approval in inputs.approvals {
                switch approval.signature {
                case .unsigned: notCounting.append("\(approval.email) (unsigned)")
                case .bad(let reason): notCounting.append("\(approval.email) (signature does not verify: \(reason))")
                case .good, .notRequired: continue
                }
            }
            var rows = [
                GateRow(
                    check: "approvals",
                    observed: valid.isEmpty ? "0" : "\(valid.count) (\(valid.joined(separator: ", ")))",
                    threshold: ">= \(count)", passed: passed,
                    detail: (passed
                        ? "approved"
                        : "needs \(count - valid.count) more approval(s)"
                            + (distinctFromOwner ? " from someone other than \(owner)" : "")
                            + (inputs.allowedApprovers.isEmpty
                                ? "" : " among \(inputs.allowedApprovers.joined(separator: ", "))"))
                        + (notCounting.isEmpty ? "" : "; not counted: " + notCounting.joined(separator: ", ")))
            ]
            if !inputs.signaturesRequired {
                rows.append(
                    GateRow(
                        check: "approval signatures", observed: "not checked", threshold: "signed", passed: true,
                        detail: "no .mlops/allowed_signers: approvals are not signed, so anyone who can push can "
                            + "write one in any name (docs/trust.md)", warning: true))
            }
            return rows
        case .ungated:
            return [
                GateRow(
                    check: "ungated", observed: "no checks", threshold: "-", passed: true,
                    detail: "gates.yaml lets any version into this stage (ungated: true)", warning: true)
            ]
        }
    }

    private static func championMissing(_ check: String, _ champion: String) -> GateRow {
        GateRow(
            check: check, observed: "no champion record", threshold: "= champion", passed: false,
            detail: "the champion (\(champion)) has no run record here, so there is nothing to compare with")
    }

    private static func missingMetric(
        _ label: String, _ metric: String, _ threshold: String, _ metrics: [String: JSONValue]
    ) -> GateRow {
        let known = metrics.keys.sorted().prefix(8).joined(separator: ", ")
        return GateRow(
            check: label, observed: "missing", threshold: threshold, passed: false,
            detail: "the run recorded no metric \(metric)" + (known.isEmpty ? "" : " (it has: \(known))"))
    }

    private static func schemaDifferences(_ mine: JSONValue?, _ theirs: JSONValue?) -> String {
        let a = mine?.object ?? [:]
        let b = theirs?.object ?? [:]
        var parts: [String] = []
        for key in Set(a.keys).union(b.keys).sorted() where a[key] != b[key] {
            parts.append("\(key): \(b[key]?.description ?? "absent") -> \(a[key]?.description ?? "absent")")
        }
        if mine == nil { return "the candidate recorded no schema; the champion did" }
        if theirs == nil { return "the champion recorded no schema; the candidate did" }
        return "columns differ: " + parts.prefix(10).joined(separator: "; ")
    }
}

/// Which approvals count.
public enum Approvals {
    /// The distinct approvers among `emails` that count: listed in `allowed` (when it lists anyone), and not the
    /// owner when `distinctFromOwner`.
    public static func valid(_ emails: [String], allowed: [String], owners: [String], distinctFromOwner: Bool)
        -> [String]
    {
        var seen = Set<String>()
        let owners = Set(owners.map(GitIdentity.normalize))
        let allowed = Set(allowed.map(GitIdentity.normalize))
        return emails.filter { email in
            let key = GitIdentity.normalize(email)
            guard !key.isEmpty, seen.insert(key).inserted else { return false }
            if !allowed.isEmpty && !allowed.contains(key) { return false }
            return !(distinctFromOwner && owners.contains(key))
        }
    }
}
