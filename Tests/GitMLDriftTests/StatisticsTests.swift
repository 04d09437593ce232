import Foundation
import GitMLBasics
import Testing

@testable import GitMLDrift

/// SciPy's answers (Fixtures/scipy-reference.json, made by Fixtures/make_fixtures.py).
private let reference: JSONValue = {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/scipy-reference.json"
    ).path
    return
        (try? JSONParser.parse(
            Array(FileManager.default.contents(atPath: path) ?? Data()), source: "scipy-reference.json")) ?? .null
}()

private func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-9) -> Bool {
    abs(a - b) <= tolerance * max(1, abs(b))
}

private func numbers(_ value: JSONValue?) -> [Double] { (value?.array ?? []).compactMap(\.number) }

@Suite("Drift statistics against SciPy")
struct StatisticsTests {
    @Test("the fixtures are present")
    func fixtures() {
        #expect(reference["samples"]?.array?.count == 4)
        #expect(reference["distributions"]?.array?.count == 4)
    }

    @Test("KS statistic, its asymptotic p-value and the Wasserstein distance match SciPy to 1e-9")
    func samples() throws {
        for case_ in reference["samples"]?.array ?? [] {
            let a = numbers(case_["a"])
            let b = numbers(case_["b"])
            let name = case_["name"]?.string ?? ""
            let d = Statistics.ksStatistic(a, b)
            #expect(close(d, case_["ks_statistic"]?.number ?? -1), "\(name): D \(d)")
            let p = Statistics.ksPValue(d, Double(a.count), Double(b.count))
            #expect(close(p, case_["ks_pvalue_asymptotic"]?.number ?? -1), "\(name): p \(p)")
            #expect(close(Statistics.wasserstein(a, b), case_["wasserstein"]?.number ?? -1), "\(name)")
        }
    }

    @Test(
        "the two-sample KS p-value matches scipy.stats.ks_2samp to 1e-9: its exact method up to 10,000 values, kstwo past"
    )
    func exactKSPValue() throws {
        var cases: [(Double, Int, Int, Double, String)] = (reference["ks_pvalues"]?.array ?? []).compactMap { c in
            guard let d = c["d"]?.number, let n1 = c["n1"]?.int(in: 1...1_000_000),
                let n2 = c["n2"]?.int(in: 1...1_000_000), let p = c["p"]?.number
            else { return nil }
            return (d, n1, n2, p, "\(n1) vs \(n2), d \(d)")
        }
        for c in reference["samples"]?.array ?? [] {
            let (a, b) = (numbers(c["a"]), numbers(c["b"]))
            if let p = c["ks_pvalue_scipy_auto"]?.number {
                cases.append((Statistics.ksStatistic(a, b), a.count, b.count, p, c["name"]?.string ?? ""))
            }
        }
        #expect(cases.count == 22)
        for (d, n1, n2, expected, name) in cases {
            let p = KolmogorovSmirnov.twoSamplePValue(statistic: d, n1: n1, n2: n2)
            let tolerance = expected < 1e-6 ? expected * 1e-9 : 1e-9
            #expect(abs(p - expected) <= tolerance, "\(name): \(p) vs SciPy \(expected)")
        }
    }

    @Test("kstwo.sf(d, n), the one-sample distribution, matches SciPy to 1e-9 in every method's region")
    func oneSampleSurvival() throws {
        let cases = reference["kstwo_sf"]?.array ?? []
        #expect(cases.count > 100)
        for c in cases {
            let n = try #require(c["n"]?.int(in: 1...1_000_000))
            let (d, expected) = (try #require(c["d"]?.number), try #require(c["sf"]?.number))
            let p = KolmogorovSmirnov.oneSampleSurvival(n: n, d)
            let tolerance = expected < 1e-6 ? expected * 1e-9 : 1e-9
            #expect(
                abs(p - expected) <= tolerance, "n \(n), d \(d), n·d² \(Double(n) * d * d): \(p) vs SciPy \(expected)")
        }
    }

    @Test("the radix sort orders negatives, zeros, subnormals, huge values and duplicates as sort() does")
    func radixSort() {
        var state: UInt64 = 5
        var values: [Double] = [
            -0.0, 0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, 1, 1, -1,
        ]
        for i in 0..<100_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let x = Double(bitPattern: state >> 1 | (state & 1) << 63)
            values.append(x.isFinite ? x : Double(i % 100) - 50)
            values.append(Double(Int(state >> 40) % 1000) / 8 - 60)
        }
        var radix = values
        Statistics.sort(&radix)
        let firstDifference = zip(radix, values.sorted()).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil && radix.count == values.count)
        var small = [3.0, -1, 2]
        Statistics.sort(&small)
        #expect(small == [-1, 2, 3])
    }

    @Test("exact statistics over sorted samples agree with the sample-based ones")
    func sortedStatistics() {
        for c in reference["samples"]?.array ?? [] {
            let (a, b) = (numbers(c["a"]).sorted(), numbers(c["b"]).sorted())
            #expect(close(Statistics.ksStatisticSorted(a, b), c["ks_statistic"]?.number ?? -1))
            #expect(close(Statistics.wassersteinSorted(a, b), c["wasserstein"]?.number ?? -1))
        }
    }

    @Test("Jensen-Shannon distance and the chi-squared test match SciPy to 1e-9")
    func distributions() {
        for case_ in reference["distributions"]?.array ?? [] {
            let p = numbers(case_["p"])
            let q = numbers(case_["q"])
            #expect(close(Statistics.jensenShannon(p, q), case_["jensenshannon"]?.number ?? -1))
            if let statistic = case_["chisquare_statistic"]?.number, let pValue = case_["chisquare_pvalue"]?.number {
                let (s, pv) = Statistics.chiSquared(observed: q, expected: p)
                #expect(close(s, statistic) && close(pv, pValue), "\(s) \(pv)")
            }
        }
        for case_ in reference["chi2_survival"]?.array ?? [] {
            let value = Statistics.chiSquaredSurvival(case_["x"]?.number ?? 0, degrees: case_["df"]?.number ?? 1)
            #expect(
                close(value, case_["sf"]?.number ?? -1),
                "chi2.sf(\(case_["x"]?.description ?? ""), \(case_["df"]?.description ?? ""))")
        }
    }

    @Test("from sketches, the KS statistic stays within the sketches' rank error of the exact one")
    func sketchBound() {
        for case_ in reference["samples"]?.array ?? [] {
            let a = numbers(case_["a"])
            let b = numbers(case_["b"])
            var sa = QuantileSketch(k: 50)
            var sb = QuantileSketch(k: 50)
            a.forEach { sa.add($0) }
            b.forEach { sb.add($0) }
            let exact = Statistics.ksStatistic(a, b)
            let sketched = DriftDetector.ksFromSketches(sa.weighted, sb.weighted)
            #expect(
                abs(sketched - exact) <= sa.rankError + sb.rankError,
                "\(case_["name"]?.string ?? ""): \(sketched) vs \(exact)")
        }
    }
}

@Suite("Drift detection")
struct DriftDetectionTests {
    private func profile(_ rows: [(Double, String)], name: String) throws -> ProfileSummary {
        var text = "x,c\n"
        for (x, c) in rows { text += "\(x),\(c)\n" }
        let path = FileManager.default.temporaryDirectory.path + "/git-ml-drift-\(UUID().uuidString.prefix(8)).csv"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return ProfileSummary(try ProfileBuilder.build(path: path, source: name, name: name))
    }

    private func sample(_ n: Int, seed: UInt64, shift: Double, categories: [String]) -> [(Double, String)] {
        var state = seed
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        return (0..<n).map { _ in
            // A sum of uniforms: roughly normal, mean 2 + shift.
            let x = next() + next() + next() + next() + shift
            return (x, categories[Int(next() * Double(categories.count)) % categories.count])
        }
    }

    @Test("a shifted column and a new category are drift; the same distribution is not")
    func shifted() throws {
        let reference = try profile(sample(20_000, seed: 1, shift: 0, categories: ["DE", "FR", "US"]), name: "train")
        let same = try profile(sample(20_000, seed: 2, shift: 0, categories: ["DE", "FR", "US"]), name: "same")
        let moved = try profile(
            sample(20_000, seed: 3, shift: 0.5, categories: ["DE", "FR", "US", "IT"]), name: "moved")
        let calm = DriftDetector.compare(reference: reference, current: same)
        #expect(calm.allSatisfy { !$0.drifted }, "\(calm.map { ($0.column, $0.statistics) })")
        let drift = DriftDetector.compare(reference: reference, current: moved)
        let x = try #require(drift.first { $0.column == "x" })
        #expect(x.drifted && (x.statistics["psi"] ?? 0) > 0.2 && (x.statistics["ks_p"] ?? 1) < 0.05)
        #expect((x.statistics["out_of_range"] ?? 0) > 0)
        let c = try #require(drift.first { $0.column == "c" })
        #expect(c.drifted && c.newCategories == ["IT"])
    }

    @Test("from profiles, a +0.03 standard deviation shift in 305,000 rows is drift; an unchanged column is not")
    func subtleShift() throws {
        var state: UInt64 = 11
        func normal() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = (Double(state >> 11) + 0.5) / Double(1 << 53)
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let v = Double(state >> 11) / Double(1 << 53)
            return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
        }
        func profile(shift: Double) -> ProfileSummary {
            var x = ColumnProfile(name: "x", type: "numeric")
            var y = ColumnProfile(name: "y", type: "numeric")
            for _ in 0..<305_000 {
                x.count += 1
                x.addNumber(normal() + shift)
                y.count += 1
                y.addNumber(normal())
            }
            return ProfileSummary(Profile(name: "p", source: "p.csv", rows: 305_000, target: nil, columns: [x, y]))
        }
        let results = DriftDetector.compare(reference: profile(shift: 0), current: profile(shift: 0.03))
        let x = try #require(results.first { $0.column == "x" })
        let y = try #require(results.first { $0.column == "y" })
        #expect(x.method == "profile")
        #expect(x.drifted && (x.statistics["ks_p"] ?? 1) < 1e-6, "\(x.statistics)")
        // The exact D for a 0.03 sigma shift is about 0.012; the sketches add at most their rank errors (0.2 % each).
        #expect(abs((x.statistics["ks"] ?? 0) - 0.012) < 0.005, "\(x.statistics)")
        #expect(!y.drifted && (y.statistics["ks"] ?? 1) < 0.006, "\(y.statistics)")
    }

    @Test("schema changes are drift and come first")
    func schema() throws {
        let reference = ProfileSummary(
            json: .object([
                "columns": .array([
                    .object(["name": .string("a"), "type": .string("numeric")]),
                    .object(["name": .string("b"), "type": .string("categorical")]),
                ])
            ]))
        let current = ProfileSummary(
            json: .object([
                "columns": .array([
                    .object(["name": .string("b"), "type": .string("numeric")]),
                    .object(["name": .string("z"), "type": .string("categorical")]),
                ])
            ]))
        let results = DriftDetector.compare(reference: reference, current: current)
        #expect(Set(results.map { "\($0.column) \($0.kind)" }) == ["a removed", "b type changed", "z added"])
        #expect(results.allSatisfy { $0.drifted })
    }
}
