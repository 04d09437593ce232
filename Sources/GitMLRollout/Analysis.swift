import GitMLBasics

/// The two versions a rollout serves.
public enum Arm: String, Sendable, CaseIterable {
    case stable, candidate
}

/// What one arm did in one interval.
public struct ArmStats: Sendable, Equatable {
    public var requests = 0
    public var errors = 0
    /// 4xx answers other than 404 and 499: a candidate that refuses inputs the stable version takes.
    public var clientErrors = 0
    /// Median and 99th percentile latency in milliseconds (nil without requests).
    public var p50: Double?
    public var p99: Double?
    /// Shadow: answers compared with the stable version's, and how many agreed.
    public var compared = 0
    public var agreed = 0

    public init() {}

    public var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }
    public var clientErrorRate: Double { requests == 0 ? 0 : Double(clientErrors) / Double(requests) }
    public var agreement: Double? { compared == 0 ? nil : Double(agreed) / Double(compared) }

    public var json: JSONValue {
        var members: [String: JSONValue] = [
            "requests": .int(Int64(requests)), "errors": .int(Int64(errors)), "error_rate": .double(errorRate),
            "client_errors": .int(Int64(clientErrors)),
            "p50_ms": p50.map(JSONValue.double) ?? .null, "p99_ms": p99.map(JSONValue.double) ?? .null,
        ]
        if compared > 0 {
            members["compared"] = .int(Int64(compared))
            members["agreement"] = agreement.map(JSONValue.double) ?? .null
        }
        return .object(members)
    }
}

/// One arm's measurements as they arrive: counts, and latencies kept by reservoir sampling (bounded memory).
public struct ArmSamples: Sendable {
    public static let capacity = 50_000
    public private(set) var requests = 0
    public private(set) var errors = 0
    public private(set) var clientErrors = 0
    public private(set) var compared = 0
    public private(set) var agreed = 0
    private var latencies: [Double] = []

    public init() {}

    /// An answer: a 5xx (a timeout is a 504) counts as an error; a 499 (the client left) is not counted at all.
    /// Without a latency (a request the arm never saw: its backend was down) it counts but has no time.
    public mutating func record(status: Int, milliseconds: Double?) {
        guard status != 499 else { return }
        requests += 1
        if status >= 500 || status == 0 { errors += 1 }
        if (400..<500).contains(status) && status != 404 { clientErrors += 1 }
        guard let milliseconds else { return }
        if latencies.count < Self.capacity {
            latencies.append(milliseconds)
        } else {
            let slot = Int.random(in: 0..<requests)
            if slot < Self.capacity { latencies[slot] = milliseconds }
        }
    }

    /// A shadow answer compared with the stable version's.
    public mutating func compare(agreed matched: Bool) {
        compared += 1
        if matched { agreed += 1 }
    }

    public func stats() -> ArmStats {
        var stats = ArmStats()
        stats.requests = requests
        stats.errors = errors
        stats.clientErrors = clientErrors
        stats.compared = compared
        stats.agreed = agreed
        let sorted = latencies.sorted()
        stats.p50 = Self.quantile(sorted, 0.5)
        stats.p99 = Self.quantile(sorted, 0.99)
        return stats
    }

    /// The nearest-rank quantile of sorted values.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }
}

/// What the analysis decides at the end of an interval.
public enum Verdict: String, Sendable {
    /// The candidate stayed within bounds: next step.
    case advance
    /// Too few requests to judge: the step runs another interval.
    case hold
    /// A bound was broken: all traffic to the stable version.
    case abort
    /// The last step passed: the candidate becomes the production version.
    case promote
    /// A shadow rollout's time is up: its verdict is recorded, nothing changes hands.
    case finish
}

/// A verdict with the numbers it came from: recorded as the interval's row and, for a change, as a registry event.
public struct Decision: Sendable {
    public var verdict: Verdict
    public var reason: String
    public var step: Int
    public var weight: Int
    public var stable: ArmStats
    public var candidate: ArmStats

    public var json: JSONValue {
        .object([
            "verdict": .string(verdict.rawValue), "reason": .string(reason), "step": .int(Int64(step)),
            "weight": .int(Int64(weight)), "stable": stable.json, "candidate": candidate.json,
        ])
    }
}

/// The pure part of a rollout's life: judging an interval and moving between steps.
public enum RolloutAnalysis {
    /// True when the candidate stayed within every bound, false (with the broken bound) when it did not, nil when it
    /// answered fewer than `min_requests`.
    public static func judge(_ bounds: AnalysisBounds, stable: ArmStats, candidate: ArmStats) -> (
        passed: Bool?, reason: String
    ) {
        guard candidate.requests >= bounds.minRequests else {
            return (nil, "\(candidate.requests) of \(bounds.minRequests) requests needed to judge")
        }
        if candidate.errorRate > bounds.maxErrorRate {
            return (
                false,
                "error rate \(percent(candidate.errorRate)) (\(candidate.errors) of \(candidate.requests)) is over "
                    + "\(percent(bounds.maxErrorRate))"
            )
        }
        if stable.requests > 0, candidate.clientErrorRate > stable.clientErrorRate + bounds.maxErrorRate {
            return (
                false,
                "4xx rate \(percent(candidate.clientErrorRate)) is over the stable version's "
                    + "\(percent(stable.clientErrorRate)) by more than \(percent(bounds.maxErrorRate))"
            )
        }
        if let bound = bounds.maxP99Milliseconds, let p99 = candidate.p99, p99 > bound {
            return (false, "p99 \(milliseconds(p99)) is over \(milliseconds(bound))")
        }
        if let bound = bounds.maxLatencyRatio, let mine = candidate.p50, let theirs = stable.p50, theirs > 0,
            stable.requests >= 1, mine / theirs > bound
        {
            return (
                false,
                "median latency \(milliseconds(mine)) is \(NumberText.exact((mine / theirs * 100).rounded() / 100))× "
                    + "the stable version's \(milliseconds(theirs)), over \(NumberText.exact(bound))×"
            )
        }
        if let bound = bounds.minAgreement, let agreement = candidate.agreement, agreement < bound {
            return (
                false,
                "agreement \(percent(agreement)) (\(candidate.agreed) of \(candidate.compared)) is under \(percent(bound))"
            )
        }
        var within = "error rate \(percent(candidate.errorRate))"
        if let p99 = candidate.p99 { within += ", p99 \(milliseconds(p99))" }
        if let agreement = candidate.agreement { within += ", agreement \(percent(agreement))" }
        return (true, within + " over \(candidate.requests) requests")
    }

    /// The end of a canary interval at step `step`.
    public static func canary(_ plan: RolloutPlan, step: Int, stable: ArmStats, candidate: ArmStats) -> Decision {
        let (passed, reason) = judge(plan.analysis, stable: stable, candidate: candidate)
        let verdict: Verdict
        switch passed {
        case nil: verdict = .hold
        case false?: verdict = .abort
        case true?: verdict = step >= plan.steps.count - 1 ? .promote : .advance
        }
        return Decision(
            verdict: verdict, reason: reason, step: step, weight: plan.weight(atStep: step), stable: stable,
            candidate: candidate)
    }

    /// The end of a shadow interval, `elapsed` seconds after the start.
    public static func shadow(_ plan: RolloutPlan, elapsed: Double, stable: ArmStats, candidate: ArmStats) -> Decision {
        let (passed, reason) = judge(plan.analysis, stable: stable, candidate: candidate)
        let verdict: Verdict =
            passed == false ? .abort : (elapsed >= plan.durationSeconds ? .finish : (passed == nil ? .hold : .advance))
        return Decision(verdict: verdict, reason: reason, step: 0, weight: 0, stable: stable, candidate: candidate)
    }

    static func percent(_ share: Double) -> String { NumberText.exact((share * 10_000).rounded() / 100) + " %" }
    static func milliseconds(_ value: Double) -> String { NumberText.exact((value * 10).rounded() / 10) + " ms" }

}

/// Which arm serves a request: a hash of its key and the rollout's id, so every gateway process sends a key to the
/// same arm without talking to the others, and a key on the candidate stays there as its weight grows.
public enum Router {
    /// 0..<10,000: FNV-1a over the salt, a zero byte and the key, then a 64-bit finaliser (splitmix64) so that
    /// keys which differ in their last byte spread over all buckets.
    public static func bucket(_ key: some Sequence<UInt8>, salt: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in salt.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        hash &*= 0x0000_0100_0000_01B3
        for byte in key {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        hash ^= hash >> 30
        hash &*= 0xbf58_476d_1ce4_e5b9
        hash ^= hash >> 27
        hash &*= 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return Int(hash % 10_000)
    }

    /// True when a bucket falls in the candidate's share (`percent` of 100).
    public static func toCandidate(bucket: Int, percent: Int) -> Bool { bucket < percent * 100 }
}
