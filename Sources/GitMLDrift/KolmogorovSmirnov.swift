/// The two-sided two-sample Kolmogorov-Smirnov p-value.
///
/// For samples of at most 10,000 values (SciPy's `ks_2samp` threshold for its exact method) the p-value is exact:
/// the probability that a random interleaving of the two samples reaches a CDF distance of at least `d`, counted
/// over lattice paths (Hodges 1958) with the recursion that yields that probability directly rather than as one
/// minus a small number (Viehmann 2021, arXiv:2102.08037). Larger samples use the Kolmogorov distribution's
/// asymptotic survival function at `d·sqrt(n·m/(n+m))`.
public enum KolmogorovSmirnov {
    /// The largest sample for which the exact method is used.
    public static let exactLimit = 10_000

    /// P(D >= d) for samples of `n1` and `n2` values, given the observed statistic `d`; NaN for empty samples or a
    /// statistic outside [0, 1].
    public static func twoSamplePValue(statistic d: Double, n1: Int, n2: Int) -> Double {
        guard n1 > 0, n2 > 0, d >= 0, d <= 1 else { return .nan }
        guard max(n1, n2) <= exactLimit else { return Statistics.ksPValue(d, Double(n1), Double(n2)) }
        return exactPValue(d, n1, n2)
    }

    /// Walks the lattice from (0, 0) to (m, n), one column at a time. A path is a random interleaving of the two
    /// sorted samples; at (i, j) the CDF distance is |i/m - j/n|, which in units of 1/lcm(m, n) is
    /// |i·(n/g) - j·(m/g)| for g = gcd(m, n). `exited[j]` holds, for the point (i, j), the share of paths reaching
    /// it that have already been at distance h or more: 1 outside the band, and inside it the mix of its two
    /// predecessors in proportion to the paths through each (i/(i+j) and j/(i+j)).
    static func exactPValue(_ d: Double, _ n1: Int, _ n2: Int) -> Double {
        let m = max(n1, n2)
        let n = min(n1, n2)
        let g = gcd(m, n)
        let (mg, ng) = (m / g, n / g)
        let lcm = mg * n
        let h = Int((d * Double(lcm)).rounded())
        if h == 0 { return 1 }
        // Inside the band at column i: |i·ng - j·mg| < h.
        func band(_ i: Int) -> ClosedRange<Int>? {
            let low = max(0, floorDivide(i * ng - h, mg) + 1)
            let high = min(n, ceilDivide(i * ng + h, mg) - 1)
            return low <= high ? low...high : nil
        }
        var exited = [Double](repeating: 1, count: n + 1)
        guard let first = band(0) else { return 1 }
        for j in first { exited[j] = 0 }
        var previous = first
        for i in 1...m {
            guard let inside = band(i) else { return 1 }
            // Points that left the band since the last column are outside: every path there has exited.
            for j in previous where !inside.contains(j) { exited[j] = 1 }
            for j in inside {
                let fromLeft = exited[j]
                let fromBelow = j > 0 ? exited[j - 1] : 0
                exited[j] = (Double(i) * fromLeft + Double(j) * fromBelow) / Double(i + j)
            }
            // Below the band's new low end, points are outside too.
            if inside.lowerBound > 0 { exited[inside.lowerBound - 1] = 1 }
            previous = inside
        }
        return min(1, max(0, exited[n]))
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
    static func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
    static func ceilDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }
}
