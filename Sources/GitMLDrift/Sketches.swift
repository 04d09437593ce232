import Foundation
import GitMLBasics

/// A KLL quantile sketch (Karnin, Lang, Liberty 2016) laid out as Apache DataSketches lays out its KLL sketch, so
/// it is stored in DataSketches' compact serialization (`datasketchesBytes`) and a sketch that Spark, Druid, Hive,
/// PostgreSQL or the `datasketches` Python package wrote merges with one git-ml wrote. Level h holds items of
/// weight 2^h; its capacity is max(8, round(k·(2/3)^(levels−h−1))); when the sketch holds as many items as the
/// capacities add up to, the lowest full level is compacted: sorted, every other item kept (which half: a coin),
/// an odd one left behind. Levels above 0 stay sorted. The normalized rank error is 2.296 / k^0.9723 with 99 %
/// confidence (DataSketches' empirical bound for this design; the default k = 1404 is the smallest for which it is
/// at most 0.2 %). The coin comes from a generator with a fixed seed, so the same stream gives the same sketch
/// (profiles are content-addressed).
public struct QuantileSketch: Sendable, Equatable {
    /// The smallest k whose stated rank error is at most 0.2 %.
    public static let defaultK = 1404
    public static let kRange = 8...65535

    public let k: Int
    /// The smallest k of any sketch merged in, which the error follows (as DataSketches keeps it).
    public private(set) var minK: Int
    /// levels[h] holds items of weight 2^h; the top level is never empty once anything was added.
    public private(set) var levels: [[Double]] = [[]]
    public private(set) var count: Int64 = 0
    /// The smallest and largest value added (infinite while empty).
    public private(set) var min = Double.infinity
    public private(set) var max = -Double.infinity
    private var coin: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var capacities: [Int]
    private var totalCapacity: Int
    private var retained = 0

    /// The normalized rank error this sketch states (99 % confidence).
    public var rankError: Double { Self.rankError(k: minK) }

    public static func rankError(k: Int) -> Double { 2.296 / pow(Double(k), 0.9723) }

    public init(k: Int = QuantileSketch.defaultK) {
        self.k = k
        minK = k
        capacities = Self.capacities(k: k, levels: 1)
        totalCapacity = capacities.reduce(0, +)
    }

    public mutating func add(_ value: Double) {
        if retained >= totalCapacity { compactLowestFullLevel() }
        levels[0].append(value)
        retained += 1
        count += 1
        if value < min { min = value }
        if value > max { max = value }
    }

    /// Folds another sketch in (profiles of partitions merge into one), as DataSketches merges: the other's
    /// level 0 is added item by item, its higher levels are merged into ours, and full levels are compacted.
    public mutating func merge(_ other: QuantileSketch) {
        guard other.count > 0 else { return }
        for value in other.levels[0] { add(value) }
        if other.levels.count > 1 {
            while levels.count < other.levels.count { addLevel() }
            for h in 1..<other.levels.count {
                levels[h] = Self.mergeSorted(levels[h], other.levels[h])
                retained += other.levels[h].count
            }
            minK = Swift.min(minK, other.minK)
        }
        count += other.count - Int64(other.levels[0].count)
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
        while retained > totalCapacity { compactLowestFullLevel() }
    }

    /// Level capacities for `levels` levels, as DataSketches computes them (integer rounding included: the
    /// serialized level offsets depend on them).
    static func capacities(k: Int, levels: Int) -> [Int] {
        // round(k · (2/3)^depth) as ((2k·2^depth) / 3^depth + 1) / 2, in two steps past depth 30.
        func scaled(_ k: Int, _ depth: Int) -> Int {
            if depth > 30 { return scaled(scaled(k, depth / 2), depth - depth / 2) }
            var power: UInt64 = 1
            for _ in 0..<depth { power *= 3 }
            return Int(((UInt64(2 * k) << UInt64(depth)) / power + 1) >> 1)
        }
        return (0..<levels).map { h in Swift.max(8, scaled(k, levels - h - 1)) }
    }

    private mutating func addLevel() {
        levels.append([])
        capacities = Self.capacities(k: k, levels: levels.count)
        totalCapacity = capacities.reduce(0, +)
    }

    /// Compacts the lowest level at or over its capacity (there is one whenever the sketch is full).
    private mutating func compactLowestFullLevel() {
        guard let h = levels.indices.first(where: { levels[$0].count >= capacities[$0] }) else { return }
        if h == levels.count - 1 { addLevel() }
        var items = levels[h]
        if h == 0 { Statistics.sort(&items) }
        coin = coin &* 6364136223846793005 &+ 1442695040888963407
        let first = items.count % 2 + Int((coin >> 33) & 1)
        let survivors = stride(from: first, to: items.count, by: 2).map { items[$0] }
        levels[h] = items.count % 2 == 1 ? [items[0]] : []
        levels[h + 1] = Self.mergeSorted(levels[h + 1], survivors)
        retained -= items.count - levels[h].count - survivors.count
    }

    static func mergeSorted(_ a: [Double], _ b: [Double]) -> [Double] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        var out: [Double] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0
        var j = 0
        while i < a.count && j < b.count {
            if b[j] < a[i] {
                out.append(b[j])
                j += 1
            } else {
                out.append(a[i])
                i += 1
            }
        }
        out += a[i...]
        out += b[j...]
        return out
    }

    /// (value, weight) pairs in value order.
    public var weighted: [(Double, Int64)] {
        var items: [(Double, Int64)] = []
        items.reserveCapacity(retained)
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

    // MARK: DataSketches' compact serialization

    /// The sketch as DataSketches' `kll_doubles_sketch::serialize` writes it (little-endian): an 8-byte preamble
    /// (preamble ints, serial version, family 15, flags, k, m = 8); for two or more values n, min k, the number of
    /// levels and each level's start in a buffer of the total capacity filled from the top, then min, max and the
    /// items, level 0 first. Every level is written sorted (flag 2).
    public var datasketchesBytes: [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        func put(_ value: Double) { put(value.bitPattern) }
        let empty = count == 0
        let single = count == 1
        out += [empty || single ? 2 : 5, single ? 2 : 1, 15, empty ? 1 : single ? 6 : 2]
        put(UInt16(k))
        out += [8, 0]
        if empty { return out }
        if single {
            put(levels[0].first ?? min)
            return out
        }
        put(UInt64(count))
        put(UInt16(minK))
        out += [UInt8(levels.count), 0]
        var start = totalCapacity - retained
        for level in levels {
            put(UInt32(start))
            start += level.count
        }
        put(min)
        put(max)
        for (h, level) in levels.enumerated() { for value in h == 0 ? level.sorted() : level { put(value) } }
        return out
    }

    /// Reads DataSketches' compact serialization of a KLL doubles sketch, checking everything: a stored sketch is
    /// repository content (DataSketches itself trusts its bytes and crashes on some).
    public init(datasketches bytes: [UInt8], source: String = "sketch") throws {
        func bad(_ why: String) -> InputError {
            .malformed(source: source, detail: "not a DataSketches KLL doubles sketch: \(why)")
        }
        var offset = 0
        func take<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let size = MemoryLayout<T>.size
            guard offset + size <= bytes.count else { throw bad("\(bytes.count) bytes is too short") }
            var value: T = 0
            for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
            offset += size
            return value
        }
        func double() throws -> Double {
            let value = Double(bitPattern: try take(UInt64.self))
            guard value.isFinite else { throw bad("a value is not a finite number") }
            return value
        }
        let preamble = try take(UInt8.self)
        let version = try take(UInt8.self)
        let family = try take(UInt8.self)
        let flags = try take(UInt8.self)
        let k = Int(try take(UInt16.self))
        let m = try take(UInt8.self)
        _ = try take(UInt8.self)
        guard family == 15 else { throw bad("family \(family), not 15 (KLL)") }
        guard version == 1 || version == 2 else { throw bad("serial version \(version)") }
        guard m == 8 else { throw bad("m is \(m), not 8") }
        guard Self.kRange.contains(k) else { throw bad("k \(k) is outside 8...65535") }
        self.init(k: k)
        guard flags & 5 != 5 else { throw bad("flags say both empty and one value") }
        if flags & 1 != 0 || flags & 4 != 0 {
            guard preamble == 2 else { throw bad("preamble of \(preamble) ints for an empty or one-value sketch") }
            if flags & 4 != 0 { add(try double()) }
            guard offset == bytes.count else { throw bad("\(bytes.count - offset) bytes after the sketch") }
        } else {
            guard preamble == 5 else { throw bad("preamble of \(preamble) ints") }
            let n = try take(UInt64.self)
            let minK = Int(try take(UInt16.self))
            let levelCount = Int(try take(UInt8.self))
            _ = try take(UInt8.self)
            guard n >= 2, n <= UInt64(Int64.max) else { throw bad("n = \(n)") }
            guard (8...k).contains(minK) else { throw bad("min k \(minK) with k \(k)") }
            guard (1...61).contains(levelCount) else { throw bad("\(levelCount) levels") }
            var starts = try (0..<levelCount).map { _ in Int(try take(UInt32.self)) }
            let capacity = Self.capacities(k: k, levels: levelCount).reduce(0, +)
            starts.append(capacity)
            guard zip(starts, starts.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                throw bad("level offsets are not in order within the capacity \(capacity)")
            }
            let low = try double()
            let high = try double()
            guard low <= high else { throw bad("min is above max") }
            guard bytes.count == offset + 8 * (capacity - starts[0]) else {
                throw bad("\(bytes.count) bytes, but the levels hold \(capacity - starts[0]) values")
            }
            var levels: [[Double]] = []
            var weight: Int64 = 0
            for h in 0..<levelCount {
                var level = try (starts[h]..<starts[h + 1]).map { _ in try double() }
                guard level.allSatisfy({ $0 >= low && $0 <= high }) else { throw bad("a value is outside [min, max]") }
                if h > 0 { level.sort() }
                let (scaled, over) = Int64(level.count).multipliedReportingOverflow(by: Int64(1) << Int64(h))
                let (sum, over2) = weight.addingReportingOverflow(scaled)
                guard !over, !over2 else { throw bad("the levels weigh more than 2^63") }
                weight = sum
                levels.append(level)
            }
            guard weight == Int64(n) else { throw bad("n is \(n), but the levels weigh \(weight)") }
            // Trailing empty levels (DataSketches never writes them) are dropped, and the rest compacted to fit.
            while levels.count > 1 && levels[levels.count - 1].isEmpty { levels.removeLast() }
            self.levels = levels
            self.minK = minK
            count = Int64(n)
            min = low
            max = high
            capacities = Self.capacities(k: k, levels: levels.count)
            totalCapacity = capacities.reduce(0, +)
            retained = levels.reduce(0) { $0 + $1.count }
            while retained > totalCapacity { compactLowestFullLevel() }
        }
    }

    public var json: JSONValue {
        .object([
            "kind": .string("kll"), "encoding": .string("datasketches"), "k": .int(Int64(k)),
            "count": .int(count), "rank_error": .double(rankError),
            "bytes": .string(Data(datasketchesBytes).base64EncodedString()),
        ])
    }

    /// A stored sketch: DataSketches bytes in base64 (`encoding: datasketches`, what git-ml writes), or, from profiles
    /// of schema 1, the levels as arrays (`levels`, item weight 2^level). Nil for anything else.
    public init?(json: JSONValue) {
        guard let sketch = try? QuantileSketch(json: json, source: "sketch") else { return nil }
        self = sketch
    }

    /// As `init?(json:)`, saying what is wrong: a sketch that is not one, or whose `count` or `k` disagree with
    /// its bytes.
    public init(json: JSONValue, source: String) throws {
        func bad(_ detail: String) -> InputError { .malformed(source: source, detail: detail) }
        guard json["kind"]?.string == "kll" else { throw bad("the sketch's kind must be kll") }
        guard let k = json["k"]?.int(in: Self.kRange) else { throw bad("the sketch's k must be within 8...65535") }
        guard let count = json["count"]?.integer(in: 0...Int64.max) else {
            throw bad("the sketch's count is not a count")
        }
        if json["encoding"]?.string == "datasketches" {
            guard let text = json["bytes"]?.string, let data = Data(base64Encoded: text) else {
                throw bad("the sketch's bytes are not base64")
            }
            let sketch = try QuantileSketch(datasketches: Array(data), source: source)
            guard sketch.k == k, sketch.count == count else {
                throw bad("the sketch's k and count (\(k), \(count)) are not its bytes' (\(sketch.k), \(sketch.count))")
            }
            self = sketch
            return
        }
        // Weights are 2^level and are summed: more than 40 levels (a trillion values) is not a sketch git-ml wrote.
        guard json["encoding"] == nil, let stored = json["levels"]?.array, (1...40).contains(stored.count) else {
            throw bad("the sketch needs encoding: datasketches and its bytes, or 1 to 40 levels")
        }
        self.init(k: k)
        // git-ml's schema 1 sketches kept each level under its capacity: more values than that is not one of them.
        let bound = Self.capacities(k: k, levels: stored.count).reduce(0, +) + 8 * stored.count
        guard stored.reduce(0, { $0 + ($1.array?.count ?? 0) }) <= bound else {
            throw bad("the sketch holds more values than a KLL sketch with k = \(k) keeps")
        }
        var levels = try stored.map { level -> [Double] in
            guard let items = level.array else { throw bad("each of the sketch's levels must be a list") }
            return try items.map { item in
                guard let x = item.number, x.isFinite else { throw bad("the sketch's values must be finite numbers") }
                return x
            }
        }
        var weight: Int64 = 0
        for h in levels.indices {
            if h > 0 { levels[h].sort() }
            let (scaled, over) = Int64(levels[h].count).multipliedReportingOverflow(by: Int64(1) << Int64(h))
            let (sum, over2) = weight.addingReportingOverflow(scaled)
            guard !over, !over2 else { throw bad("the sketch's levels weigh more than 2^63") }
            weight = sum
        }
        while levels.count > 1 && levels[levels.count - 1].isEmpty { levels.removeLast() }
        guard weight == count else { throw bad("the sketch's levels weigh \(weight), not its count \(count)") }
        self.levels = levels
        self.count = count
        let all = levels.joined()
        min = all.min() ?? .infinity
        max = all.max() ?? -.infinity
        capacities = Self.capacities(k: k, levels: levels.count)
        totalCapacity = capacities.reduce(0, +)
        retained = all.count
        while retained > totalCapacity { compactLowestFullLevel() }
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

    /// A table read back from a profile: `counts` kept, `total` values seen, every count under by at most `error`.
    init(capacity: Int = 1000, counts: [String: Int64], total: Int64, error: Int64) {
        self.capacity = Swift.max(capacity, counts.count)
        self.counts = counts
        self.total = total
        self.error = error
    }

    /// Folds in another table (Agarwal et al.'s mergeable summaries): counts add, and when more values are kept
    /// than the capacity, every count drops by the first one past it; the errors add up, plus that drop.
    public mutating func merge(_ other: FrequencyTable) {
        for (value, n) in other.counts { counts[value, default: 0] += n }
        total += other.total
        error += other.error
        if counts.count > capacity {
            let cut = counts.values.sorted(by: >)[capacity]
            counts = counts.compactMapValues { $0 > cut ? $0 - cut : nil }
            error += cut
        }
    }

    public mutating func add(_ value: String) { add(value, count: 1) }

    /// The same as adding `value` `count` times in a row.
    public mutating func add(_ value: String, count: Int64) {
        var left = count
        total += count
        while left > 0 {
            if let current = counts[value] {
                counts[value] = current + left
                return
            }
            if counts.count < capacity {
                counts[value] = left
                return
            }
            // Full: every counter drops by one (the new value's single count too); at most total/capacity times.
            error += 1
            counts = counts.compactMapValues { $0 > 1 ? $0 - 1 : nil }
            left -= 1
        }
    }

    /// The top `limit` values (by count, then value) and the count of everything else.
    public func top(_ limit: Int) -> (values: [(String, Int64)], other: Int64) {
        let sorted = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let kept = Array(sorted.prefix(limit))
        return (kept.map { ($0.key, $0.value) }, total - kept.reduce(0) { $0 + $1.1 })
    }
}
