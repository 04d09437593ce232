import Foundation
import GitMLBasics

/// When a column counts as drifted (defaults follow common practice; config.yaml's `drift:` and `--threshold`
/// change them).
public struct DriftThresholds: Sendable, Equatable {
    /// PSI above this is drift.
    public var psi = 0.2
    /// A KS or chi-squared p-value below this is drift.
    public var pValue = 0.05

    public init() {}
}

/// One column compared.
public struct ColumnDrift: Sendable {
    public var column: String
    /// "numeric", "categorical", or the schema change: "added", "removed", "type changed".
    public var kind: String
    public var drifted: Bool
    /// Named statistics (psi, ks, ks_p, jensen_shannon, wasserstein, chi2, chi2_p, missing_reference, missing_current,
    /// out_of_range); absent when they do not apply.
    public var statistics: [String: Double] = [:]
    public var newCategories: [String] = []
    /// Why it counts as drift, for people.
    public var reasons: [String] = []
    /// Reference and current proportions over the reference's bins (numeric) or categories, for charts.
    public var bins: [(label: String, reference: Double, current: Double)] = []
    /// How the statistics were computed: `exact` (every value of both sides) or `profile` (quantile sketches,
    /// within their stated rank error).
    public var method = "profile"

    /// How bad: schema changes first, then by PSI and p-values.
    public var severity: Double {
        if kind == "added" || kind == "removed" || kind == "type changed" { return 1000 }
        let psi = statistics["psi"] ?? 0
        let p = min(statistics["ks_p"] ?? 1, statistics["chi2_p"] ?? 1)
        return (drifted ? 100 : 0) + psi * 10 + (1 - p)
    }
}

/// A profile read back from its JSON (the stored reference, or a fresh current profile).
public struct ProfileSummary: Sendable {
    public struct Column: Sendable {
        public var name: String
        public var type: String
        public var count: Double
        public var missing: Double
        public var min: Double?
        public var max: Double?
        public var sketch: QuantileSketch?
        public var values: [(String, Double)]
        public var other: Double
        /// Every finite value, sorted, when the profile was made from data kept whole (exact comparisons).
        public var sorted: [Double]?
        /// True when `values` are exact counts of every category (`other` is then 0).
        public var exactCounts = false
    }

    public var name: String
    public var rows: Double
    public var columns: [Column]

    public init(json: JSONValue) {
        name = json["name"]?.string ?? ""
        rows = json["rows"]?.number ?? 0
        columns = (json["columns"]?.array ?? []).map { column in
            Column(
                name: column["name"]?.string ?? "", type: column["type"]?.string ?? "categorical",
                count: column["count"]?.number ?? 0, missing: column["missing"]?.number ?? 0,
                min: column["min"]?.number, max: column["max"]?.number,
                sketch: column["sketch"].flatMap(QuantileSketch.init(json:)),
                values: (column["values"]?.array ?? []).compactMap { pair in
                    guard let value = pair.array?.first?.string, let count = pair.array?.last?.number else {
                        return nil
                    }
                    return (value, count)
                },
                other: column["other"]?.number ?? 0)
        }
    }

    public init(_ profile: consuming Profile) {
        self.init(json: (try? JSONParser.parse(profile.bytes, source: "profile")) ?? .null)
        // Kept values make the comparison exact: numbers sorted (on every core, a column each), counts whole. The
        // values move out of the profile and are sorted where they are: no second copy of every value.
        let boxes = profile.columns.indices.map { i in
            defer { profile.columns[i].values = nil }
            return ValuesBox(profile.columns[i].values)
        }
        PerformanceTrace.measure("sort the values of \(name)") {
            _ = try? Parallel.map(count: boxes.count) { i in
                guard var values = boxes[i].values else { return }
                boxes[i].values = nil  // the only reference left is `values`: sorted in place
                Statistics.sort(&values)
                boxes[i].values = values
            }
        }
        releaseFreeMemory()
        for (i, column) in profile.columns.enumerated() where i < columns.count {
            columns[i].sorted = boxes[i].values
            boxes[i].values = nil
            if let counts = column.exactCounts {
                columns[i].values = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                    .map { ($0.key, Double($0.value)) }
                columns[i].other = 0
                columns[i].exactCounts = true
            }
        }
    }
}

/// Compares a current profile with a reference profile, column by column.
public enum DriftDetector {
    public static func compare(
        reference: ProfileSummary, current: ProfileSummary, thresholds: DriftThresholds = DriftThresholds(),
        columns only: Set<String> = []
    ) -> [ColumnDrift] {
        PerformanceTrace.measure("compare \(current.name) with \(reference.name)") {
            compareColumns(reference: reference, current: current, thresholds: thresholds, columns: only)
        }
    }

    private static func compareColumns(
        reference: ProfileSummary, current: ProfileSummary, thresholds: DriftThresholds, columns only: Set<String>
    ) -> [ColumnDrift] {
        let currentByName = Dictionary(current.columns.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let referenceNames = Set(reference.columns.map(\.name))
        let compared = reference.columns.filter { only.isEmpty || only.contains($0.name) }
        // A column each, on every core (an exact comparison merges two sorted columns of every value).
        var results =
            (try? Parallel.map(count: compared.count) { index -> ColumnDrift in
                let ref = compared[index]
                guard let cur = currentByName[ref.name] else {
                    return ColumnDrift(
                        column: ref.name, kind: "removed", drifted: true, reasons: ["the column is gone"])
                }
                guard ref.type == cur.type else {
                    return ColumnDrift(
                        column: ref.name, kind: "type changed", drifted: true,
                        reasons: ["\(ref.type) in the reference, \(cur.type) now"])
                }
                return ref.type == "numeric" ? numeric(ref, cur, thresholds) : categorical(ref, cur, thresholds)
            }) ?? []
        for cur in current.columns where !referenceNames.contains(cur.name) && (only.isEmpty || only.contains(cur.name))
        {
            results.append(ColumnDrift(column: cur.name, kind: "added", drifted: true, reasons: ["a new column"]))
        }
        return results.sorted { $0.severity != $1.severity ? $0.severity > $1.severity : $0.column < $1.column }
    }

    /// A column's result, started with the missing-value rates both kinds of column report.
    static func begin(_ kind: String, _ ref: ProfileSummary.Column, _ cur: ProfileSummary.Column) -> ColumnDrift {
        var result = ColumnDrift(column: ref.name, kind: kind, drifted: false)
        result.statistics["missing_reference"] = ref.count > 0 ? ref.missing / ref.count : 0
        result.statistics["missing_current"] = cur.count > 0 ? cur.missing / cur.count : 0
        return result
    }

    /// The verdict both kinds share: PSI against its threshold and the column's test (named `test`) against the
    /// p-value threshold, or `also`, a reason the caller found.
    static func judge(
        _ result: inout ColumnDrift, psi: Double, test: String, p: Double, also: Bool = false,
        _ thresholds: DriftThresholds
    ) {
        func short(_ value: Double) -> String { NumberText.format(value, significant: 4) }
        if psi > thresholds.psi { result.reasons.append("PSI \(short(psi)) > \(short(thresholds.psi))") }
        if p < thresholds.pValue { result.reasons.append("\(test) p \(short(p)) < \(short(thresholds.pValue))") }
        result.drifted = psi > thresholds.psi || p < thresholds.pValue || also
    }

    /// A change of more than five points in the share of missing values is worth saying (not drift by itself).
    static func noteMissingChange(_ result: inout ColumnDrift) {
        let before = result.statistics["missing_reference"] ?? 0
        let after = result.statistics["missing_current"] ?? 0
        if abs(after - before) > 0.05 {
            result.reasons.append("missing values \(NumberText.percent(before)) -> \(NumberText.percent(after))")
        }
    }

    static func numeric(_ ref: ProfileSummary.Column, _ cur: ProfileSummary.Column, _ thresholds: DriftThresholds)
        -> ColumnDrift
    {
        if let a = ref.sorted, let b = cur.sorted { return exactNumeric(ref, cur, a, b, thresholds) }
        var result = begin("numeric", ref, cur)
        guard let a = ref.sketch, let b = cur.sketch, a.count > 0, b.count > 0 else {
            result.reasons.append("no values to compare")
            return result
        }
        // Bins: the reference's deciles, so each holds a tenth of the reference.
        var edges: [Double] = []
        for q in stride(from: 0.1, through: 0.9, by: 0.1) {
            if let edge = a.quantile(q), edges.last != edge { edges.append(edge) }
        }
        let psi = binned(&result, edges: edges, reference: a.cdf, current: b.cdf)
        let wa = a.weighted
        let wb = b.weighted
        let ks = ksFromSketches(wa, wb)
        result.statistics["ks"] = ks
        // The sketches may put D off by up to their rank errors; the p-value is taken on the part of D they
        // cannot explain, so sketch error alone never reads as drift (with millions of rows it otherwise would).
        let p = Statistics.ksPValue(max(0, ks - a.rankError - b.rankError), Double(a.count), Double(b.count))
        result.statistics["ks_p"] = p
        result.statistics["wasserstein"] = Statistics.wasserstein(
            wa.map { ($0.0, Double($0.1)) }, wb.map { ($0.0, Double($0.1)) })
        if let low = ref.min, let high = ref.max {
            let total = Double(b.count)
            let outside = wb.filter { $0.0 < low || $0.0 > high }.reduce(0.0) { $0 + Double($1.1) }
            outOfRange(&result, fraction: outside / total, low: low, high: high)
        }
        judge(&result, psi: psi, test: "KS", p: p, thresholds)
        noteMissingChange(&result)
        return result
    }

    /// Every value on both sides: the KS statistic and p-value as `scipy.stats.ks_2samp` gives them, the
    /// Wasserstein distance as `scipy.stats.wasserstein_distance`, and PSI and Jensen-Shannon over the reference's
    /// exact deciles.
    static func exactNumeric(
        _ ref: ProfileSummary.Column, _ cur: ProfileSummary.Column, _ a: [Double], _ b: [Double],
        _ thresholds: DriftThresholds
    ) -> ColumnDrift {
        var result = begin("numeric", ref, cur)
        result.method = "exact"
        guard !a.isEmpty, !b.isEmpty else {
            result.reasons.append("no values to compare")
            return result
        }
        // Deciles with numpy's default (linear) interpolation; bins hold values <= each edge.
        func quantile(_ q: Double) -> Double {
            let position = q * Double(a.count - 1)
            let low = Int(position.rounded(.down))
            let high = Swift.min(low + 1, a.count - 1)
            return a[low] + (a[high] - a[low]) * (position - Double(low))
        }
        var edges: [Double] = []
        for q in stride(from: 0.1, through: 0.9, by: 0.1) {
            let edge = quantile(q)
            if edges.last != edge { edges.append(edge) }
        }
        let psi = binned(
            &result, edges: edges, reference: { Double(Statistics.countAtMost($0, in: a)) / Double(a.count) },
            current: { Double(Statistics.countAtMost($0, in: b)) / Double(b.count) })
        let (ks, wasserstein) = Statistics.ksAndWassersteinSorted(a, b)
        let p = KolmogorovSmirnov.twoSamplePValue(statistic: ks, n1: a.count, n2: b.count)
        result.statistics["ks"] = ks
        result.statistics["ks_p"] = p
        result.statistics["wasserstein"] = wasserstein
        if let low = a.first, let high = a.last {
            let outside = Double(Statistics.countBelow(low, in: b) + b.count - Statistics.countAtMost(high, in: b))
            outOfRange(&result, fraction: outside / Double(b.count), low: low, high: high)
        }
        judge(&result, psi: psi, test: "KS", p: p, thresholds)
        noteMissingChange(&result)
        return result
    }

    /// Bins cut at `edges` (each holds the values up to its edge), their proportions from each side's CDF, and
    /// PSI and Jensen-Shannon over them; returns PSI.
    static func binned(
        _ result: inout ColumnDrift, edges: [Double], reference: (Double) -> Double, current: (Double) -> Double
    ) -> Double {
        func proportions(_ cdf: (Double) -> Double) -> [Double] {
            var previous = 0.0
            var out: [Double] = []
            for edge in edges {
                let c = cdf(edge)
                out.append(c - previous)
                previous = c
            }
            out.append(1 - previous)
            return out
        }
        let pr = proportions(reference)
        let pc = proportions(current)
        result.bins = zip(pr, pc).enumerated().map { i, pair in
            let low = i == 0 ? "min" : NumberText.format(edges[i - 1], significant: 4)
            let high = i == edges.count ? "max" : NumberText.format(edges[i], significant: 4)
            return ("\(low)–\(high)", pair.0, pair.1)
        }
        let psi = Statistics.psi(reference: pr, current: pc)
        result.statistics["psi"] = psi
        result.statistics["jensen_shannon"] = Statistics.jensenShannon(pr, pc)
        return psi
    }

    /// The share of current values outside the training range [low, high], and a reason when there are any.
    static func outOfRange(_ result: inout ColumnDrift, fraction: Double, low: Double, high: Double) {
        result.statistics["out_of_range"] = fraction
        if fraction > 0 {
            result.reasons.append(
                "\(NumberText.percent(fraction)) of values outside the training range [\(NumberText.format(low, significant: 4)), \(NumberText.format(high, significant: 4))]"
            )
        }
    }

    /// The largest CDF distance between two weighted samples (sketch items).
    static func ksFromSketches(_ a: [(Double, Int64)], _ b: [(Double, Int64)]) -> Double {
        let ta = Double(a.reduce(Int64(0)) { $0 + $1.1 })
        let tb = Double(b.reduce(Int64(0)) { $0 + $1.1 })
        var i = 0
        var j = 0
        var fa = 0.0
        var fb = 0.0
        var d = 0.0
        while i < a.count || j < b.count {
            let v = min(i < a.count ? a[i].0 : .infinity, j < b.count ? b[j].0 : .infinity)
            while i < a.count && a[i].0 <= v { fa += Double(a[i].1); i += 1 }
            while j < b.count && b[j].0 <= v { fb += Double(b[j].1); j += 1 }
            d = max(d, abs(fa / ta - fb / tb))
        }
        return d
    }

    static func categorical(_ ref: ProfileSummary.Column, _ cur: ProfileSummary.Column, _ thresholds: DriftThresholds)
        -> ColumnDrift
    {
        var result = begin("categorical", ref, cur)
        if ref.exactCounts && cur.exactCounts { result.method = "exact" }
        let refCounts = Dictionary(ref.values, uniquingKeysWith: +)
        let curCounts = Dictionary(cur.values, uniquingKeysWith: +)
        var labels = ref.values.map(\.0)
        for (value, _) in cur.values where refCounts[value] == nil { labels.append(value) }
        var reference = labels.map { refCounts[$0] ?? 0 }
        var current = labels.map { curCounts[$0] ?? 0 }
        labels.append("(other)")
        reference.append(ref.other)
        current.append(cur.other)
        if ref.other == 0 {
            result.newCategories = cur.values.map(\.0).filter { refCounts[$0] == nil }
        }
        let sr = max(reference.reduce(0, +), 1)
        let sc = max(current.reduce(0, +), 1)
        result.bins = labels.indices.map { (labels[$0], reference[$0] / sr, current[$0] / sc) }.filter {
            $0.1 > 0 || $0.2 > 0
        }
        let psi = Statistics.psi(reference: reference, current: current)
        result.statistics["psi"] = psi
        result.statistics["jensen_shannon"] = Statistics.jensenShannon(reference, current)
        let kept = labels.indices.filter { reference[$0] > 0 || current[$0] > 0 }
        let (chi2, p) = Statistics.chiSquared(observed: kept.map { current[$0] }, expected: kept.map { reference[$0] })
        result.statistics["chi2"] = chi2
        result.statistics["chi2_p"] = p
        judge(&result, psi: psi, test: "chi-squared", p: p, also: !result.newCategories.isEmpty, thresholds)
        if !result.newCategories.isEmpty {
            result.reasons.append("new categories: \(result.newCategories.prefix(5).joined(separator: ", "))")
        }
        noteMissingChange(&result)
        return result
    }
}

/// One column's kept values, sorted in place by one worker thread.
private final class ValuesBox: @unchecked Sendable {
    var values: [Double]?
    init(_ values: [Double]?) { self.values = values }
}
