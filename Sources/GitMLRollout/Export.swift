import GitMLBasics

/// A rollout written for an engine that runs it across a cluster: Argo Rollouts (a `Rollout` and its
/// `AnalysisTemplate`, with Prometheus queries on git-ml's own metrics and the plan's bounds) or KServe (an
/// `InferenceService` whose canary share is the plan's current weight).
public enum RolloutExport {
    /// What the plan does not say.
    public struct Inputs: Sendable {
        /// The container image that runs `git ml serve` for this model (Argo).
        public var image: String
        /// Where Prometheus answers queries (Argo's analysis).
        public var prometheus: String
        /// Where the candidate's artifact is (KServe's storageUri).
        public var storageURI: String
        /// KServe's model format (`sklearn`, `xgboost`, `onnx`, `mlflow`, `huggingface`...).
        public var modelFormat: String
        /// The candidate's weight now, for KServe's canaryTrafficPercent.
        public var weight: Int
        public var run: String
        public var namespace: String?

        public init(
            image: String, prometheus: String, storageURI: String, modelFormat: String, weight: Int, run: String,
            namespace: String?
        ) {
            self.image = image
            self.prometheus = prometheus
            self.storageURI = storageURI
            self.modelFormat = modelFormat
            self.weight = weight
            self.run = run
            self.namespace = namespace
        }
    }

    /// A Kubernetes name for a model: lower case, `-` for anything but letters and digits, at most 63 bytes.
    public static func kubernetesName(_ model: String) -> String {
        var name = String(
            model.lowercased().unicodeScalars.map { scalar -> Character in
                (scalar.value >= 0x61 && scalar.value <= 0x7A) || (scalar.value >= 0x30 && scalar.value <= 0x39)
                    ? Character(scalar) : "-"
            })
        while name.hasPrefix("-") || name.first?.isNumber == true { name.removeFirst() }
        name = String(name.prefix(50))
        while name.hasSuffix("-") { name.removeLast() }
        return name.isEmpty ? "model" : name
    }

    private static func quoted(_ text: String) -> String { JSONWriter.compact(.string(text)) }

    private static func metadata(_ name: String, _ plan: RolloutPlan, _ inputs: Inputs, indent: String = "  ")
        -> [String]
    {
        var lines = ["metadata:", "\(indent)name: \(quoted(name))"]
        if let namespace = inputs.namespace { lines.append("\(indent)namespace: \(quoted(namespace))") }
        lines += [
            "\(indent)labels:",
            "\(indent)\(indent)app.kubernetes.io/name: \(quoted(kubernetesName(plan.model)))",
            "\(indent)\(indent)app.kubernetes.io/managed-by: git-ml",
            "\(indent)annotations:",
            "\(indent)\(indent)git-ml/model: \(quoted(plan.model))",
            "\(indent)\(indent)git-ml/candidate: \(quoted(String(plan.candidate)))",
            "\(indent)\(indent)git-ml/stable: \(quoted(String(plan.stable)))",
            "\(indent)\(indent)git-ml/rollout: \(quoted(plan.id))",
            "\(indent)\(indent)git-ml/run: \(quoted(inputs.run))",
        ]
        return lines
    }

    /// An Argo Rollouts `Rollout` and `AnalysisTemplate` (two YAML documents) for a canary plan.
    public static func argo(_ plan: RolloutPlan, _ inputs: Inputs) -> String {
        let name = kubernetesName(plan.model)
        let template = name + "-git-ml-analysis"
        let interval = "\(Int(plan.intervalSeconds.rounded(.up)))s"
        let bounds = plan.analysis
        var rollout = ["apiVersion: argoproj.io/v1alpha1", "kind: Rollout"] + metadata(name, plan, inputs)
        rollout += [
            "spec:",
            "  replicas: 2",
            "  revisionHistoryLimit: 3",
            "  selector:",
            "    matchLabels:",
            "      app.kubernetes.io/name: \(quoted(name))",
            "  template:",
            "    metadata:",
            "      labels:",
            "        app.kubernetes.io/name: \(quoted(name))",
            "        git-ml/version: \(quoted(String(plan.candidate)))",
            "    spec:",
            "      containers:",
            "        - name: gateway",
            "          image: \(quoted(inputs.image))",
            "          args: [\"ml\", \"serve\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\"]",
            "          ports:",
            "            - name: http",
            "              containerPort: 8080",
            "          readinessProbe:",
            "            httpGet:",
            "              path: /readyz",
            "              port: 8080",
            "  strategy:",
            "    canary:",
            "      analysis:",
            "        templates:",
            "          - templateName: \(quoted(template))",
            "        startingStep: 1",
            "        args:",
            "          - name: model",
            "            value: \(quoted(plan.model))",
            "          - name: version",
            "            value: \(quoted(String(plan.candidate)))",
            "          - name: stable-version",
            "            value: \(quoted(String(plan.stable)))",
            "      steps:",
        ]
        for (index, weight) in plan.steps.enumerated() {
            rollout.append("        - setWeight: \(weight)")
            if index < plan.steps.count - 1 || weight < 100 {
                rollout.append("        - pause:")
                rollout.append("            duration: \(quoted(interval))")
            }
        }
        let selector = #"model="{{args.model}}",version="{{args.version}}""#
        let stableSelector = #"model="{{args.model}}",version="{{args.stable-version}}""#
        // At least two minutes, so a window holds several scrapes whatever the interval.
        let window = "[\(max(120, Int(plan.intervalSeconds.rounded(.up))))s]"
        // No answer yet (an empty vector, or NaN from 0/0) is not a failure; a number over the bound is.
        func conditions(_ bound: String) -> (String, String) {
            (
                "len(result) == 0 || isNaN(result[0]) || result[0] <= \(bound)",
                "len(result) > 0 && !isNaN(result[0]) && result[0] > \(bound)"
            )
        }
        let errorBound = conditions(JSONWriter.format(bounds.maxErrorRate))
        var metrics: [(name: String, query: String, success: String, failure: String)] = [
            (
                "error-rate",
                // A version that never answered 5xx has no 5xx series: `or vector(0)` makes that a 0.
                "(sum(rate(git_ml_requests_total{\(selector),code=~\"5..\"}\(window))) or vector(0)) / "
                    + "sum(rate(git_ml_requests_total{\(selector)}\(window)))",
                errorBound.0, errorBound.1
            )
        ]
        if let p99 = bounds.maxP99Milliseconds {
            let seconds = JSONWriter.format(p99 / 1000)
            metrics.append(
                (
                    "p99-latency",
                    "histogram_quantile(0.99, sum by (le) (rate(git_ml_version_request_duration_seconds_bucket{\(selector)}\(window))))",
                    conditions(seconds).0, conditions(seconds).1
                ))
        }
        if let ratio = bounds.maxLatencyRatio {
            let bound = JSONWriter.format(ratio)
            metrics.append(
                (
                    "latency-ratio",
                    "histogram_quantile(0.5, sum by (le) (rate(git_ml_version_request_duration_seconds_bucket{\(selector)}\(window)))) / "
                        + "histogram_quantile(0.5, sum by (le) (rate(git_ml_version_request_duration_seconds_bucket{\(stableSelector)}\(window))))",
                    conditions(bound).0, conditions(bound).1
                ))
        }
        var analysis =
            ["apiVersion: argoproj.io/v1alpha1", "kind: AnalysisTemplate"] + metadata(template, plan, inputs)
        analysis += [
            "spec:",
            "  args:",
            "    - name: model",
            "    - name: version",
            "    - name: stable-version",
            "  metrics:",
        ]
        for metric in metrics {
            analysis += [
                "    - name: \(metric.name)",
                "      interval: \(quoted(interval))",
                "      failureLimit: 0",
                "      consecutiveErrorLimit: 4",
                "      successCondition: \(quoted(metric.success))",
                "      failureCondition: \(quoted(metric.failure))",
                "      provider:",
                "        prometheus:",
                "          address: \(quoted(inputs.prometheus))",
                "          query: \(quoted(metric.query))",
            ]
        }
        let header =
            "# Exported by git ml rollout export --format argo from \(RolloutPlan.path(model: plan.model)).\n"
            + "# min_requests (\(bounds.minRequests)) has no Argo equivalent: a step with too few requests is judged "
            + "on what it saw.\n"
            + "# The image must serve version \(plan.candidate) of \(plan.model) (a serve.yaml pinning version: "
            + "\(plan.candidate)): the queries select by the version label git ml serve gives its metrics.\n"
        return header + rollout.joined(separator: "\n") + "\n---\n" + analysis.joined(separator: "\n") + "\n"
    }

    /// A KServe `InferenceService` whose predictor serves the candidate's artifact with `canaryTrafficPercent`.
    public static func kserve(_ plan: RolloutPlan, _ inputs: Inputs) -> String {
        var lines = [
            "# Exported by git ml rollout export --format kserve from \(RolloutPlan.path(model: plan.model)).",
            "apiVersion: serving.kserve.io/v1beta1", "kind: InferenceService",
        ]
        lines += metadata(kubernetesName(plan.model), plan, inputs)
        lines += [
            "spec:",
            "  predictor:",
            "    canaryTrafficPercent: \(max(0, min(100, inputs.weight)))",
            "    model:",
            "      modelFormat:",
            "        name: \(quoted(inputs.modelFormat))",
            "      storageUri: \(quoted(inputs.storageURI))",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
