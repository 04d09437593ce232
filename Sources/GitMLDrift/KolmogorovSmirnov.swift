import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The two-sided two-sample Kolmogorov-Smirnov p-value.
///
/// For samples of at most 10,000 values (SciPy's `ks_2samp` threshold for its exact method) the p-value is exact:
/// the probability that a random interleaving of the two samples reaches a CDF distance of at least `d`, counted
/// over lattice paths (Hodges 1958) with the recursion that yields that probability directly rather than as one
/// minus a small number (Viehmann 2021, arXiv:2102.08037). Larger samples use, as SciPy does, the one-sample
/// two-sided distribution of D_N at N = round(n·m/(n+m)) (`scipy.stats.kstwo`), computed as Simard and L'Ecuyer
/// (2011) advise: Durbin's matrix (Marsaglia, Tsang and Wang 2003) where it is exact and small, Pelz and Good's
/// expansion in the body, and twice the one-sided Smirnov tail (Birnbaum and Tingey 1951) in the tail.
public enum KolmogorovSmirnov {
    /// The largest sample for which the exact method is used.
    public static let exactLimit = 10_000

    /// P(D >= d) for samples of `n1` and `n2` values, given the observed statistic `d`; NaN for empty samples or a
    /// statistic outside [0, 1].
    public static func twoSamplePValue(statistic d: Double, n1: Int, n2: Int) -> Double {
        guard n1 > 0, n2 > 0, d >= 0, d <= 1 else { return .nan }
        guard max(n1, n2) <= exactLimit else {
            let (a, b) = (Double(n1), Double(n2))
            let n = (a * b / (a + b)).rounded(.toNearestOrEven)
            return oneSampleSurvival(n: Int(n), d)
        }
        return exactPValue(d, n1, n2)
    }

    /// P(D_n >= d) for the two-sided one-sample statistic (`scipy.stats.kstwo.sf(d, n)`), choosing the method by
    /// n and n·d² as SciPy's `_kolmogn` does.
    public static func oneSampleSurvival(n: Int, _ d: Double) -> Double {
        guard n > 0, !d.isNaN else { return .nan }
        let nd = Double(n)
        if d >= 1 { return 0 }
        if d <= 0 { return 1 }
        let t = nd * d
        if t <= 1 {
            // Ruben and Gambino: P(D_n <= d) = n!/n^n (2t - 1)^n for 1/(2n) <= d <= 1/n.
            if t <= 0.5 { return 1 }
            let cdf = exp(logFactorialOverPower(n) + nd * log(2 * t - 1))
            return clip(1 - cdf)
        }
        if t >= nd - 1 { return clip(2 * pow(1 - d, nd)) }
        if d >= 0.5 { return clip(2 * smirnov(n, d)) }
        let nxSquared = t * d
        if n <= 140 {
            // Durbin's matrix is exact (SciPy uses it or Pomeranz's, also exact, up to n·d² = 4).
            if nxSquared <= 4 { return clip(1 - durbin(n, d)) }
            return clip(2 * smirnov(n, d))
        }
        if nxSquared >= 370 { return 0 }
        if nxSquared >= 2.2 { return clip(2 * smirnov(n, d)) }
        if n <= 100_000 && nd * pow(d, 1.5) <= 1.4 { return clip(1 - durbin(n, d)) }
        return clip(pelzGoodSurvival(n, d))
    }

    static func clip(_ p: Double) -> Double { min(1, max(0, p)) }

    /// log(n! / n^n).
    static func logFactorialOverPower(_ n: Int) -> Double { logGamma(Double(n) + 1) - Double(n) * log(Double(n)) }

    /// P(D+_n >= d), the one-sided tail, by Birnbaum and Tingey's exact sum
    /// d·Σ_{j <= n(1-d)} C(n, j) (1 - d - j/n)^(n-j) (d + j/n)^(j-1), each term through logarithms.
    static func smirnov(_ n: Int, _ d: Double) -> Double {
        let nd = Double(n)
        let last = Int((nd * (1 - d)).rounded(.down))
        let logN = logGamma(nd + 1)
        var sum = 0.0
        for j in 0...max(0, last) {
            let jd = Double(j)
            let rest = 1 - d - jd / nd
            guard rest > 0 || j == n else { continue }
            var logTerm = logN - logGamma(jd + 1) - logGamma(nd - jd + 1) + (jd - 1) * log(d + jd / nd)
            if j < n { logTerm += (nd - jd) * log(rest) }
            sum += exp(logTerm)
        }
        return d * sum
    }

    /// P(D_n < d) by Durbin's matrix method as Marsaglia, Tsang and Wang (2003) compute it: with d = (k - h)/n,
    /// the k-th diagonal element of H^n times n!/n^n, H an m×m matrix (m = 2k - 1), powers scaled by 2^128.
    static func durbin(_ n: Int, _ d: Double) -> Double {
        let nd = Double(n) * d
        if nd <= 0.5 { return 0 }
        let k = Int(nd.rounded(.up))
        let h = Double(k) - nd
        let m = 2 * k - 1
        // H[i][j] = 1/(i - j + 1)! for i - j + 1 >= 0, with the first column and last row corrected for h.
        var v = [Double](repeating: 0, count: m)
        var w = [Double](repeating: 0, count: m)
        var factorial = 1.0
        for j in 1...m {
            w[j - 1] = factorial
            factorial /= Double(j)
            v[j - 1] = (1 - pow(h, Double(j))) * factorial
        }
        v[m - 1] = (1 + pow(max(2 * h - 1, 0), Double(m)) - 2 * pow(h, Double(m))) * factorial
        var matrix = [Double](repeating: 0, count: m * m)
        for column in 1..<m {
            for row in (column - 1)..<m { matrix[row * m + column] = w[row - column + 1] }
        }
        for row in 0..<m { matrix[row * m] = v[row] }
        for column in 0..<m { matrix[(m - 1) * m + column] = v[m - 1 - column] }

        func multiply(_ a: [Double], _ b: [Double]) -> [Double] {
            var c = [Double](repeating: 0, count: m * m)
            for i in 0..<m {
                for l in 0..<m where a[i * m + l] != 0 {
                    let x = a[i * m + l]
                    for j in 0..<m { c[i * m + j] += x * b[l * m + j] }
                }
            }
            return c
        }
        let big = 0x1p128
        var power = [Double](repeating: 0, count: m * m)
        for i in 0..<m { power[i * m + i] = 1 }
        var exponent = 0
        var matrixExponent = 0
        var remaining = n
        while remaining > 0 {
            if remaining % 2 == 1 {
                power = multiply(power, matrix)
                exponent += matrixExponent
            }
            matrix = multiply(matrix, matrix)
            matrixExponent *= 2
            if abs(matrix[(k - 1) * m + (k - 1)]) > big {
                for i in matrix.indices { matrix[i] /= big }
                matrixExponent += 128
            }
            remaining /= 2
        }
        var p = power[(k - 1) * m + (k - 1)]
        for i in 1...n {
            p = Double(i) * p / Double(n)
            if abs(p) < 0x1p-128 {
                p *= big
                exponent -= 128
            }
        }
        return clip(exponent == 0 ? p : scalbn(p, exponent))
    }

    /// P(D_n >= d) by Pelz and Good's (1976) expansion K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5 at z = d√n, in
    /// the form for small z (sums over odd multiples, via Jacobi's theta transformation).
    static func pelzGoodSurvival(_ n: Int, _ d: Double) -> Double {
        let z = Double(n).squareRoot() * d
        let z2 = z * z
        let z4 = z2 * z2
        let z6 = z4 * z2
        let pi2 = Double.pi * Double.pi
        let pi4 = pi2 * pi2
        let pi6 = pi4 * pi2
        let logQ = -pi2 / 8 / z2
        if logQ < -708.4 { return 1 }  // z below about 0.0417: the CDF underflows
        var q = exp(logQ)
        let k1a = -z2
        let k1b = pi2 / 4
        let k2a = 6 * z6 + 2 * z4
        let k2b = (2 * z4 - 5 * z2) * pi2 / 4
        let k2c = pi4 * (1 - 2 * z2) / 16
        let k3d = pi6 * (5 - 30 * z2) / 64
        let k3c = pi4 * (-60 * z2 + 212 * z4) / 16
        let k3b = pi2 * (135 * z4 - 96 * z6) / 4
        let k3a = -30 * z6 - 90 * z4 * z4
        var terms = [0.0, 0.0, 0.0, 0.0]
        let last = Int((16 * z / Double.pi).rounded(.up))
        // Horner's scheme over odd m = 2k - 1 of c_m q^(m²).
        if last >= 1 {
            for k in stride(from: last, through: 1, by: -1) {
                let m = Double(2 * k - 1)
                let m2 = m * m
                let m4 = m2 * m2
                let m6 = m4 * m2
                let qPower = pow(q, Double(8 * k))
                let coefficients = [
                    1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6,
                ]
                for i in 0..<4 { terms[i] = terms[i] * qPower + coefficients[i] }
            }
        }
        let root2pi = (2 * Double.pi).squareRoot()
        let divisors = [z, 6 * z4, 72 * z6 * z, 6480 * z4 * z6]
        for i in 0..<4 { terms[i] = terms[i] * q * root2pi / divisors[i] }
        // The remaining sums, over every integer k, for K2 and K3.
        q = exp(-pi2 / 2 / z2)
        var k2extra = 0.0
        var k3extra = 0.0
        let root3z = 3.0.squareRoot() * z
        if last >= 1 {
            for k in stride(from: last, through: 1, by: -1) {
                let kd = Double(k)
                let k2 = kd * kd
                let qk = pow(q, k2)
                k2extra += k2 * qk
                k3extra += (root3z + Double.pi * kd) * (root3z - Double.pi * kd) * k2 * qk
            }
        }
        terms[2] += k2extra * pi2 * root2pi / (-36 * z2 * z)
        terms[3] += k3extra * pi2 * root2pi / (216 * z6)
        let root = Double(n).squareRoot()
        let powers = [1, root, Double(n), Double(n) * root]
        var survival = 1.0
        for i in 0..<4 { survival -= terms[i] / powers[i] }
        return survival
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

/// log Γ(x), from the C library (Foundation and Glibc both name it lgamma).
private func logGamma(_ x: Double) -> Double {
    #if canImport(Glibc)
        return Glibc.lgamma(x)
    #else
        return Foundation.lgamma(x)
    #endif
}
