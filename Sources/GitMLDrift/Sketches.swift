import Foundation
import GitMLBasics

/// A KLL quantile sketch (Karnin, Lang, Liberty 2016): mergeable, at most about 3k values whatever the stream's
/// length, and a normalized rank error of 2.296 / k^0.9723 with 99 % confidence (Apache DataSketches' empirical
/// bound for this design; k = 200: 1.33 %). The coin that picks which
/// half of a compacted level survives comes from a generator seeded by the level's content, so the same stream
/// gives the same sketch (profiles are content-addressed).
public struct QuantileSketch: Sendable, Equatable {
    public let k: Int
    /// levels[h] holds items of weight 2^h.
    public private(set) var levels: [[Double]] = [[]]
    public private(set) var count: Int64 = 0
    private var coin: UInt64 = 0x9E37_79B9_7F4A_7C15
    /// Level 0's capacity, cached: it only changes when a level is added.
    private var firstCapacity = 0

    /// The normalized rank error this sketch states (99 % confidence).
    public var rankError: Double { 2.296 / pow(Double(k), 0.9723) }

    public init(k: Int = 200) { self.k = k }

    init(k: Int, levels: [[Double]], count: Int64) {
        self.k = k
        self.levels = levels.isEmpty ? [[]] : levels
        self.count = count
    }

    public mutating func add(_ value: Double) {
        levels[0].append(value)
        count += 1
        if firstCapacity == 0 { firstCapacity = capacity(0) }
        if levels[0].count >= firstCapacity {
            compress()
            firstCapacity = capacity(0)
        }
    }

    /// Folds another sketch in (profiles of partitions merge into one).
    public mutating func merge(_ other: QuantileSketch) {
        while levels.count < other.levels.count { levels.append([]) }
        for (h, items) in other.levels.enumerated() { levels[h] += items }
        count += other.count
        compress()
    }

    private func capacity(_ level: Int) -> Int {
        max(8, Int((Double(k) * pow(2.0 / 3.0, Double(levels.count - level - 1))).rounded(.up)))
    }

    private mutating func compress() {
        var h = 0
        while h < levels.count {
            if levels[h].count >= capacity(h) {
                if h + 1 == levels.count { levels.append([]) }
                levels[h].sort()
                coin = coin &* 6364136223846793005 &+ 1442695040888963407 &+ UInt64(levels[h].count)
                let offset = Int((coin >> 33) & 1)
                let survivors = stride(from: offset, to: levels[h].count - (levels[h].count % 2 == 1 ? 1 : 0), by: 2)
                    .map { levels[h][$0] }
                let leftover: [Double] = levels[h].count % 2 == 1 ? levels[h].suffix(1) : []
                levels[h + 1] += survivors
                levels[h] = leftover
            }
            h += 1
        }
    }

    /// (value, weight) pairs in value order.
    public var weighted: [(Double, Int64)] {
        var items: [(Double, Int64)] = []
        for (h, level) in levels.enumerated() { items += level.map { ($0, Int64(1) << Int64(h)) } }
        return items.sorted { $0.0 < $1.0 }
    }

    /// The value at quantile `q` (0...1).
    public func quantile(_ q: Double) -> Double? {
        let items = weighted
        guard !items.isEmpty else { return nil }
        let total = items.reduce(Int64(0)) { $0 + $1.1 }
        let target = q * Double(total)
        var seen: Int64 = 0
        for (value, weight) in items {
            seen += weight
            if Double(seen) >= target { return value }
        }
        return items.last?.0
    }

    /// The fraction of values at or below `x`.
    public func cdf(_ x: Double) -> Double {
        let items = weighted
        let total = items.reduce(Int64(0)) { $0 + $1.1 }
        guard total > 0 else { return 0 }
        return Double(items.filter { $0.0 <= x }.reduce(Int64(0)) { $0 + $1.1 }) / Double(total)
    }

    public var json: JSONValue {
        .object([
            "kind": .string("kll"), "k": .int(Int64(k)), "count": .int(count), "rank_error": .double(rankError),
            "levels": .array(levels.map { .array($0.map(JSONValue.double)) }),
        ])
    }

    public init?(json: JSONValue) {
        // Weights are 2^level and are summed: more than 40 levels (a trillion values) is not a sketch git-ml wrote.
        guard json["kind"]?.string == "kll", let k = json["k"]?.int(in: 8...1 << 20),
            let count = json["count"]?.integer(in: 0...Int64.max), let levels = json["levels"]?.array,
            levels.count <= 40
        else { return nil }
        self.init(
            k: k, levels: levels.map { ($0.array ?? []).compactMap(\.number).filter(\.isFinite) }, count: count)
    }
}

/// The most frequent values of a stream in bounded memory (Misra-Gries): a value's count is under by at most
/// `total / capacity`, every value more frequent than that is kept, and each value costs O(1) amortized.
public struct FrequencyTable: Sendable {
    public let capacity: Int
    public private(set) var counts: [String: Int64] = [:]
    public private(set) var total: Int64 = 0
    /// How much any kept count may be under its true value (0 while no value was ever dropped).
    public private(set) var error: Int64 = 0

    public init(capacity: Int = 1000) { self.capacity = capacity }

    public mutating func add(_ value: String) {
        total += 1
        if let current = counts[value] {
            counts[value] = current + 1
        } else if counts.count < capacity {
            counts[value] = 1
        } else {
            // Full: every counter drops by one (the new value's single count too); at most total/capacity times.
            error += 1
            counts = counts.compactMapValues { $0 > 1 ? $0 - 1 : nil }
        }
    }

    /// The top `limit` values (by count, then value) and the count of everything else.
    public func top(_ limit: Int) -> (values: [(String, Int64)], other: Int64) {
        let sorted = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let kept = Array(sorted.prefix(limit))
        return (kept.map { ($0.key, $0.value) }, total - kept.reduce(0) { $0 + $1.1 })
    }
}
