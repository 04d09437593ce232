import Prometheus
import Synchronization

/// The gateway's Prometheus metrics (`/metrics`), written in the exposition format by swift-prometheus.
/// Label values are only configured model names and served version numbers, never what a client sent.
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let requestCounters = Synchronization.Mutex<[String: Counter]>([:])
    private let durations: DurationHistogram
    let inflight: Gauge
    let lineageRefusals: Counter
    let restarts: Counter
    let cacheHits: Counter
    let logDropped: Counter
    let queueDepth: Gauge
    private let perVersion = Synchronization.Mutex<[String: VersionMetrics]>([:])

    /// The metrics one served version carries.
    final class VersionMetrics: Sendable {
        let up: Gauge
        let tokensIn: Counter
        let tokensOut: Counter
        let cost: Counter
        let timeToFirstToken: DurationHistogram
        let inflightTokens: Gauge
        let tokensPerSecond: Gauge
        /// Request durations of this version (a rollout's analysis in Prometheus compares two versions by it).
        let duration: DurationHistogram
        /// Tokens seen in each of the last 10 one-second slots, for tokens per second.
        private let window = Synchronization.Mutex<(second: Int64, slots: [Double])>(
            (0, Array(repeating: 0, count: 10)))

        init(registry: PrometheusCollectorRegistry, model: String, version: String) {
            let labels = [("model", model), ("version", version)]
            up = registry.makeGauge(
                descriptor: .init(
                    metricName: "git_ml_backend_up", unitName: "",
                    helpText: "1 while the version's backend answers its health check"),
                labels: labels)
            tokensIn = registry.makeCounter(
                descriptor: .init(
                    metricName: "git_ml_tokens", unitName: "total", helpText: "Tokens, from the OpenAI usage object"),
                labels: labels + [("direction", "input")])
            tokensOut = registry.makeCounter(
                descriptor: .init(
                    metricName: "git_ml_tokens", unitName: "total", helpText: "Tokens, from the OpenAI usage object"),
                labels: labels + [("direction", "output")])
            cost = registry.makeCounter(
                descriptor: .init(
                    metricName: "git_ml_cost", unitName: "total",
                    helpText: "Cost from serve.yaml's price and the tokens used"),
                labels: labels)
            timeToFirstToken = registry.makeDurationHistogram(
                descriptor: .init(
                    metricName: "git_ml_time_to_first_token", unitName: "seconds",
                    helpText: "From request to the first streamed byte"),
                labels: labels, buckets: GatewayMetrics.latencyBuckets)
            inflightTokens = registry.makeGauge(
                descriptor: .init(
                    metricName: "git_ml_inflight_tokens", unitName: "",
                    helpText: "Estimated tokens of requests in flight (prompt bytes / 4 + max_tokens): a scaling signal"
                ),
                labels: labels)
            duration = registry.makeDurationHistogram(
                descriptor: .init(
                    metricName: "git_ml_version_request_duration", unitName: "seconds",
                    helpText: "Time from request to the end of the response, by model and version"),
                labels: labels, buckets: GatewayMetrics.latencyBuckets)
            tokensPerSecond = registry.makeGauge(
                descriptor: .init(
                    metricName: "git_ml_tokens_per_second", unitName: "",
                    helpText: "Tokens per second over the last 10 seconds: a scaling signal"),
                labels: labels)
        }

        /// Adds `count` tokens to the sliding window and updates the rate.
        func addTokens(_ count: Double, now: Int64) {
            let rate = window.withLock { state -> Double in
                advance(&state, to: now)
                state.slots[Int(now % 10)] += count
                return state.slots.reduce(0, +) / 10
            }
            tokensPerSecond.set(rate)
        }

        /// Lets the rate fall when no tokens arrive.
        func tick(now: Int64) {
            let rate = window.withLock { state -> Double in
                advance(&state, to: now)
                return state.slots.reduce(0, +) / 10
            }
            tokensPerSecond.set(rate)
        }

        private func advance(_ state: inout (second: Int64, slots: [Double]), to now: Int64) {
            if now - state.second >= 10 {
                state.slots = Array(repeating: 0, count: 10)
            } else if now > state.second {
                for second in (state.second + 1)...now { state.slots[Int(second % 10)] = 0 }
            }
            state.second = max(state.second, now)
        }
    }

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    init() {
        durations = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "git_ml_request_duration", unitName: "seconds",
                helpText: "Time from request to the end of the response"),
            labels: [], buckets: Self.latencyBuckets)
        inflight = registry.makeGauge(
            descriptor: .init(
                metricName: "git_ml_inflight_requests", unitName: "", helpText: "Requests being answered"), labels: [])
        lineageRefusals = registry.makeCounter(
            descriptor: .init(
                metricName: "git_ml_lineage_refusals", unitName: "total",
                helpText: "Versions refused because an artifact did not hash to the registry's digest or was missing"),
            labels: [])
        restarts = registry.makeCounter(
            descriptor: .init(
                metricName: "git_ml_backend_restarts", unitName: "total",
                helpText: "Managed backends restarted after they exited"),
            labels: [])
        cacheHits = registry.makeCounter(
            descriptor: .init(
                metricName: "git_ml_cache_hits", unitName: "total",
                helpText: "Responses answered from the exact-match cache"), labels: [])
        logDropped = registry.makeCounter(
            descriptor: .init(
                metricName: "git_ml_log_dropped", unitName: "total",
                helpText: "Prediction-log entries dropped because the writer's queue was full"),
            labels: [])
        queueDepth = registry.makeGauge(
            descriptor: .init(
                metricName: "git_ml_queue_depth", unitName: "", helpText: "Requests waiting in micro-batch queues"),
            labels: [])
    }

    /// Counts one answered request and its duration.
    func request(model: String, version: String, code: Int, seconds: Double) {
        let key = "\(model)\u{0}\(version)\u{0}\(code)"
        let counter = requestCounters.withLock { counters in
            if let counter = counters[key] { return counter }
            let made = registry.makeCounter(
                descriptor: .init(
                    metricName: "git_ml_requests", unitName: "total",
                    helpText: "Requests answered, by model, version and status code"),
                labels: [("model", model), ("version", version), ("code", String(code))])
            counters[key] = made
            return made
        }
        counter.increment()
        durations.record(.nanoseconds(Int64(seconds * 1e9)))
    }

    /// The metrics of one served version (made on first use).
    func version(model: String, version: String) -> VersionMetrics {
        perVersion.withLock { table in
            let key = "\(model)\u{0}\(version)"
            if let found = table[key] { return found }
            let made = VersionMetrics(registry: registry, model: model, version: version)
            table[key] = made
            return made
        }
    }

    /// Every version's metrics, for the once-a-second tick.
    func allVersions() -> [VersionMetrics] { perVersion.withLock { Array($0.values) } }

    /// The exposition text.
    func render() -> [UInt8] { registry.emitToBuffer() }
}
