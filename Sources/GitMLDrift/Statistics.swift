import Foundation

/// The drift statistics, as pure functions. Each one on full samples matches SciPy's function of the same name
/// (fixtures in Tests/GitMLDriftTests/Fixtures, made by the script there); the profile-based ones evaluate the same
/// formulas on quantile sketches, within the sketches' stated rank error.
public enum Statistics {
    /// Two-sample Kolmogorov–Smirnov statistic: the largest distance between the empirical CDFs
    /// (`scipy.stats.ks_2samp(a, b).statistic`).
    public static func ksStatistic(_ a: [Double], _ b: [Double]) -> Double {
        let x = a.sorted()
        let y = b.sorted()
        var i = 0
        var j = 0
        var d = 0.0
        while i < x.count && j < y.count {
            let v = min(x[i], y[j])
            while i < x.count && x[i] <= v { i += 1 }
            while j < y.count && y[j] <= v { j += 1 }
            d = max(d, abs(Double(i) / Double(x.count) - Double(j) / Double(y.count)))
        }
        return d
    }

    /// The asymptotic two-sided p-value of a two-sample KS statistic: the Kolmogorov distribution's survival
    /// function at `d·sqrt(n·m/(n+m))` (`scipy.stats.kstwobign.sf`). For large samples SciPy's `ks_2samp`
    /// (`method="asymp"`, `kstwo`) converges to it.
    public static func ksPValue(_ d: Double, _ n: Double, _ m: Double) -> Double {
        guard n > 0, m > 0 else { return 1 }
        let x = d * (n * m / (n + m)).squareRoot()
        return kolmogorovSurvival(x)
    }

    /// P(K > x) for the Kolmogorov distribution.
    static func kolmogorovSurvival(_ x: Double) -> Double {
        if x <= 0 { return 1 }
        if x < 1 {
            // sqrt(2π)/x Σ exp(-(2k-1)² π² / (8x²)): converges fast for small x.
            let t = -Double.pi * Double.pi / (8 * x * x)
            var sum = 0.0
            for k in 1...50 {
                let odd = Double(2 * k - 1)
                sum += exp(odd * odd * t)
            }
            return max(0, min(1, 1 - (2 * Double.pi).squareRoot() / x * sum))
        }
        // 2 Σ (-1)^(k-1) exp(-2k²x²)
        var sum = 0.0
        for k in 1...100 {
            let term = exp(-2 * Double(k * k) * x * x)
            sum += (k % 2 == 1 ? term : -term)
            if term < 1e-300 { break }
        }
        return max(0, min(1, 2 * sum))
    }

    /// Sorts finite numbers: an LSD radix sort on their bits in 8 passes of 8 bits (on a million values about 10×
    /// faster than a comparison sort; a pass in which every value has the same digit is skipped), or a quicksort
    /// below 512 values (a sketch's level). -0 comes before +0; they compare equal, so every statistic is the same.
    public static func sort(_ values: inout [Double]) {
        let n = values.count
        guard n > 512 else {
            values.withUnsafeMutableBufferPointer { quicksort($0, 0, n) }
            return
        }
        var other = [UInt64](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: 8 << 8)
        values.withUnsafeMutableBufferPointer { doubles in
            // The values' own storage holds the keys: a double's bits as an unsigned key in the same order (flip
            // every bit of a negative, the sign bit of a positive), so the only extra memory is one buffer.
            doubles.withMemoryRebound(to: UInt64.self) { a in
                other.withUnsafeMutableBufferPointer { b in
                    counts.withUnsafeMutableBufferPointer { c in
                        // Every pass's digit counts in one read.
                        for i in 0..<n {
                            let key = a[i] & (1 << 63) != 0 ? ~a[i] : a[i] | (1 << 63)
                            a[i] = key
                            for pass in 0..<8 { c[pass << 8 | Int((key >> UInt64(pass * 8)) & 0xFF)] += 1 }
                        }
                        var source = a
                        var target = b
                        for pass in 0..<8 {
                            let shift = UInt64(pass * 8)
                            let base = pass << 8
                            // A digit every key shares moves nothing: skip the pass.
                            if c[base | Int((source[0] >> shift) & 0xFF)] == n { continue }
                            var total = 0
                            for d in 0..<256 {
                                let here = c[base | d]
                                c[base | d] = total
                                total += here
                            }
                            for i in 0..<n {
                                let key = source[i]
                                let slot = base | Int((key >> shift) & 0xFF)
                                target[c[slot]] = key
                                c[slot] += 1
                            }
                            swap(&source, &target)
                        }
                        if source.baseAddress != a.baseAddress {
                            for i in 0..<n { a[i] = source[i] }
                        }
                    }
                }
                for i in 0..<n { a[i] = a[i] & (1 << 63) != 0 ? a[i] & ~(1 << 63) : ~a[i] }
            }
        }
    }

    /// Sorts `v[low..<high]`: median-of-three quicksort, insertion sort below 16 values, the smaller side first.
    private static func quicksort(_ v: UnsafeMutableBufferPointer<Double>, _ low: Int, _ high: Int) {
        var low = low
        var high = high
        while high - low > 16 {
            let middle = low + (high - low) / 2
            if v[middle] < v[low] { v.swapAt(middle, low) }
            if v[high - 1] < v[low] { v.swapAt(high - 1, low) }
            if v[high - 1] < v[middle] { v.swapAt(high - 1, middle) }
            let pivot = v[middle]
            var i = low
            var j = high - 1
            while i <= j {
                while v[i] < pivot { i += 1 }
                while pivot < v[j] { j -= 1 }
                if i <= j {
                    v.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if j - low < high - i {
                quicksort(v, low, j + 1)
                low = i
            } else {
                quicksort(v, i, high)
                high = j + 1
            }
        }
        guard high - low > 1 else { return }
        for i in (low + 1)..<high {
            let x = v[i]
            var j = i
            while j > low && x < v[j - 1] {
                v[j] = v[j - 1]
                j -= 1
            }
            v[j] = x
        }
    }

    /// How many values of the sorted `s` are at most `x` (numpy's `searchsorted(s, x, side='right')`).
    public static func countAtMost(_ x: Double, in s: [Double]) -> Int {
        var low = 0
        var high = s.count
        while low < high {
            let middle = (low + high) / 2
            if s[middle] <= x { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// How many values of the sorted `s` are below `x` (`searchsorted(s, x, side='left')`).
    public static func countBelow(_ x: Double, in s: [Double]) -> Int {
        var low = 0
        var high = s.count
        while low < high {
            let middle = (low + high) / 2
            if s[middle] < x { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// `ksStatistic` of two sorted samples, by one merge: the largest distance between the empirical CDFs, taken
    /// after every tie is consumed on both sides, as `scipy.stats.ks_2samp` measures it.
    public static func ksStatisticSorted(_ x: [Double], _ y: [Double]) -> Double { ksAndWassersteinSorted(x, y).ks }

    /// `wasserstein` of two sorted samples, by one merge (`scipy.stats.wasserstein_distance`: the area between the
    /// empirical CDFs over the pooled values).
    public static func wassersteinSorted(_ u: [Double], _ v: [Double]) -> Double {
        ksAndWassersteinSorted(u, v).wasserstein
    }

    /// Both from the same merge of two sorted samples: the KS statistic is the largest CDF distance after each
    /// pooled value (past the end of one sample the distance only shrinks), Wasserstein the area under it.
    public static func ksAndWassersteinSorted(_ u: [Double], _ v: [Double]) -> (ks: Double, wasserstein: Double) {
        guard !u.isEmpty, !v.isEmpty else { return (0, 0) }
        return u.withUnsafeBufferPointer { u in
            v.withUnsafeBufferPointer { v in
                var i = 0
                var j = 0
                var distance = 0.0
                var largest = 0.0
                let n = Double(u.count)
                let m = Double(v.count)
                var previous = min(u[0], v[0])
                while i < u.count || j < v.count {
                    let next = min(i < u.count ? u[i] : .infinity, j < v.count ? v[j] : .infinity)
                    distance += abs(Double(i) / n - Double(j) / m) * (next - previous)
                    while i < u.count && u[i] <= next { i += 1 }
                    while j < v.count && v[j] <= next { j += 1 }
                    largest = max(largest, abs(Double(i) / n - Double(j) / m))
                    previous = next
                }
                return (largest, distance)
            }
        }
    }

    /// The first Wasserstein distance between two samples: ∫|F(x) − G(x)| dx (`scipy.stats.wasserstein_distance`).
    public static func wasserstein(_ a: [Double], _ b: [Double]) -> Double {
        wasserstein(a.map { ($0, 1.0) }, b.map { ($0, 1.0) })
    }

    /// The same for weighted points (a sketch's items and their weights).
    public static func wasserstein(_ a: [(Double, Double)], _ b: [(Double, Double)]) -> Double {
        let totalA = a.reduce(0) { $0 + $1.1 }
        let totalB = b.reduce(0) { $0 + $1.1 }
        guard totalA > 0, totalB > 0 else { return 0 }
        let all = (a.map { ($0.0, $0.1 / totalA, 0) } + b.map { ($0.0, $0.1 / totalB, 1) }).sorted { $0.0 < $1.0 }
        var f = 0.0
        var g = 0.0
        var distance = 0.0
        for (index, item) in all.enumerated() {
            if item.2 == 0 { f += item.1 } else { g += item.1 }
            if index + 1 < all.count { distance += abs(f - g) * (all[index + 1].0 - item.0) }
        }
        return distance
    }

    /// Jensen–Shannon distance (the square root of the divergence, natural log) between two distributions over
    /// the same bins, normalized first (`scipy.spatial.distance.jensenshannon`).
    public static func jensenShannon(_ p: [Double], _ q: [Double]) -> Double {
        let sp = p.reduce(0, +)
        let sq = q.reduce(0, +)
        guard sp > 0, sq > 0 else { return 0 }
        var divergence = 0.0
        for (x, y) in zip(p, q) {
            let a = x / sp
            let b = y / sq
            let m = (a + b) / 2
            if a > 0 { divergence += a * log(a / m) }
            if b > 0 { divergence += b * log(b / m) }
        }
        return (max(0, divergence) / 2).squareRoot()
    }

    /// Population stability index over bins: Σ (c − r) ln(c / r), proportions floored at 1e-4 so an empty bin
    /// counts (the convention of most monitoring tools).
    public static func psi(reference: [Double], current: [Double]) -> Double {
        let sr = reference.reduce(0, +)
        let sc = current.reduce(0, +)
        guard sr > 0, sc > 0 else { return 0 }
        var total = 0.0
        for (r, c) in zip(reference, current) {
            let pr = max(r / sr, 1e-4)
            let pc = max(c / sc, 1e-4)
            total += (pc - pr) * log(pc / pr)
        }
        return total
    }

    /// Pearson's chi-squared test of observed counts against expected counts scaled to the same total
    /// (`scipy.stats.chisquare(observed, expected)`): the statistic and its p-value with k − 1 degrees of freedom.
    public static func chiSquared(observed: [Double], expected: [Double]) -> (statistic: Double, pValue: Double) {
        let so = observed.reduce(0, +)
        let se = expected.reduce(0, +)
        guard so > 0, se > 0, observed.count > 1 else { return (0, 1) }
        var statistic = 0.0
        for (o, e) in zip(observed, expected) {
            let scaled = e / se * so
            if scaled > 0 { statistic += (o - scaled) * (o - scaled) / scaled } else if o > 0 { statistic = .infinity }
        }
        return (statistic, chiSquaredSurvival(statistic, degrees: Double(observed.count - 1)))
    }

    /// P(X > x) for a chi-squared variable with `degrees` degrees of freedom: the regularized upper incomplete
    /// gamma function Q(k/2, x/2).
    static func chiSquaredSurvival(_ x: Double, degrees: Double) -> Double {
        guard x.isFinite else { return 0 }
        guard x > 0 else { return 1 }
        return regularizedGammaQ(degrees / 2, x / 2)
    }

    /// Q(a, x) by the series for x < a + 1 and Lentz's continued fraction otherwise (Numerical Recipes §6.2),
    /// iterated to double precision.
    static func regularizedGammaQ(_ a: Double, _ x: Double) -> Double {
        let logPrefix = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var sum = 1 / a
            var term = sum
            var n = a
            for _ in 0..<10_000 {
                n += 1
                term *= x / n
                sum += term
                if abs(term) < abs(sum) * 1e-17 { break }
            }
            return max(0, 1 - sum * exp(logPrefix))
        }
        let tiny = 1e-300
        var b = x + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var h = d
        for i in 1..<10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-17 { break }
        }
        return max(0, min(1, exp(logPrefix) * h))
    }
}
