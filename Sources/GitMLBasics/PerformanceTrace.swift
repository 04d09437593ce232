#if canImport(Glibc)
    import Glibc
#endif

/// Phase timings on stderr when `GIT_ML_TRACE_PERFORMANCE` is set (like git's `GIT_TRACE_PERFORMANCE`),
/// so a slow command can be taken apart without a profiler.
public enum PerformanceTrace {
    /// Read once: the trace is on for the whole process or not at all.
    public static let enabled: Bool = {
        guard let value = getenv("GIT_ML_TRACE_PERFORMANCE").map({ String(cString: $0) }) else { return false }
        return !value.isEmpty && value != "0" && value != "false"
    }()

    /// Runs `body`, and when tracing prints how long it took as `performance: 0.012345 s: <phase>`.
    @discardableResult
    public static func measure<T>(_ phase: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = now()
        defer {
            let line = Array(("performance: " + format(now() - start) + " s: " + phase() + "\n").utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        return try body()
    }

    /// Seconds on the monotonic clock (for durations).
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private static func format(_ seconds: Double) -> String {
        let micros = Int((seconds * 1e6).rounded())
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }
}
