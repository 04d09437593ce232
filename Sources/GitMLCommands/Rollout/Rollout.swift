import ArgumentParser
import GitMLBasics
import GitMLCards
import GitMLGates
import GitMLLineage
import GitMLRegistry
import GitMLRollout
import GitMLServe

/// `git ml rollout`: canary, shadow and blue-green rollouts that the running gateway carries out.
struct RolloutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract:
            "Roll a model version out through the gateway: canary or shadow (with automatic abort), or blue-green.",
        discussion: """
            The desired state is .mlops/rollouts/<model>.yaml (commit it: it is reviewed like code); each change is \
            also a registry event, so git ml model history says why. A running git ml serve reads the file within \
            a second, starts the candidate beside the stable version (verified as serving verifies), splits traffic, \
            judges every interval on its own measurements and advances, holds, aborts or promotes. \
            docs/commands/rollout.md
            """,
        subcommands: [
            RolloutStart.self, RolloutStatus.self, RolloutPause.self, RolloutResume.self, RolloutAbort.self,
            RolloutPromote.self, RolloutExportCommand.self,
        ])
}

extension Strategy: ExpressibleByArgument {}

extension RequestKey: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

struct RolloutStart: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start rolling a version out (refused when the registry would refuse its promotion).",
        discussion: """
            The candidate's production gates are evaluated again now; an archived version, one rolled back or \
            one whose rollout was aborted before is refused unless --force (recorded). The version in production \
            is the rollback target: there must be one.

            Examples:
              git ml rollout start churn 4 --steps 5,25,50,100 --interval 5m --max-error-rate 0.01 \\
                  --max-p99-ms 300 --max-latency-ratio 1.3 --min-requests 200 --key header:x-user-id
              git ml rollout start churn 4 --strategy shadow --duration 1h --min-agreement 0.98
              git ml rollout start churn 4 --strategy blue-green --keep-warm 30m
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The model (or model@version).") var model: String
    @Argument(help: "The candidate version (a number, staging or latest).") var version: String?
    @Option(help: "canary, shadow or blue-green.") var strategy: Strategy = .canary
    @Option(help: ArgumentHelp("Canary weights in percent, the last 100.", valueName: "list")) var steps = "5,25,50,100"
    @Option(help: ArgumentHelp("How long each step runs before it is judged (30s, 5m, 1h).", valueName: "duration"))
    var interval: LogAge?
    @Option(help: ArgumentHelp("The request key that picks an arm: header:<name>, json:<field> or random."))
    var key: RequestKey = .random
    @Option(help: ArgumentHelp("The candidate's error rate at most (0 to 1).", valueName: "rate"))
    var maxErrorRate = 0.01
    @Option(help: ArgumentHelp("The candidate's p99 latency at most.", valueName: "ms")) var maxP99Ms: Double?
    @Option(help: ArgumentHelp("Candidate median latency / stable median at most.", valueName: "ratio"))
    var maxLatencyRatio: Double?
    @Option(help: ArgumentHelp("Requests an interval needs before it is judged.", valueName: "n"))
    var minRequests = 100
    @Option(help: ArgumentHelp("Shadow: how long requests are mirrored.", valueName: "duration")) var duration: LogAge?
    @Option(help: ArgumentHelp("Shadow: the share of requests mirrored (0 to 1).", valueName: "share"))
    var sample = 1.0
    @Option(help: ArgumentHelp("Shadow: the share of answers that must agree (0 to 1).", valueName: "share"))
    var minAgreement: Double?
    @Option(help: ArgumentHelp("Shadow: how far numbers may differ and agree.", valueName: "x")) var tolerance = 1e-6
    @Option(help: ArgumentHelp("Blue-green: how long the old version stays running.", valueName: "duration"))
    var keepWarm: LogAge?
    @Option(help: ArgumentHelp("Golden probes the candidate must pass first (JSON lines).", valueName: "file"))
    var probe: String?
    @Flag(help: "Roll out a version that was archived, rolled back or aborted before (recorded).") var force = false
    @Option(help: "Why, for the audit trail.") var reason = ""
    @Flag(help: "Print the plan and the event as JSON.") var json = false
    var wantsJSON: Bool { json }

    func validate() throws {
        guard (0...1).contains(maxErrorRate) else { throw ValidationError("--max-error-rate takes 0 to 1") }
        guard (0...1).contains(sample), sample > 0 else { throw ValidationError("--sample takes more than 0, up to 1") }
        guard (1...100_000_000).contains(minRequests) else { throw ValidationError("--min-requests takes 1 or more") }
        if let maxP99Ms, !(maxP99Ms > 0 && maxP99Ms <= 3_600_000) {
            throw ValidationError("--max-p99-ms takes a positive number of milliseconds")
        }
        if let maxLatencyRatio, !(maxLatencyRatio >= 0.01 && maxLatencyRatio <= 1000) {
            throw ValidationError("--max-latency-ratio takes 0.01 to 1000")
        }
        if let minAgreement, !(0...1).contains(minAgreement) { throw ValidationError("--min-agreement takes 0 to 1") }
        if !(tolerance >= 0 && tolerance <= 1e12) { throw ValidationError("--tolerance takes 0 or more") }
        if let problem = RolloutPlan.validate(steps: parsedSteps ?? []) { throw ValidationError("--steps: \(problem)") }
        if let interval, !(1...86_400).contains(interval.seconds) {
            throw ValidationError("--interval takes 1s to 1d")
        }
        if let keepWarm, keepWarm.seconds > 2_592_000 { throw ValidationError("--keep-warm is at most 30d") }
        if let duration, !(1...2_592_000).contains(duration.seconds) {
            throw ValidationError("--duration takes 1s to 30d")
        }
    }

    private var parsedSteps: [Int]? {
        let parts = steps.split(separator: ",", omittingEmptySubsequences: false).map {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        return parts.contains(nil) ? nil : parts.compactMap { $0 }
    }

    func execute() throws -> Int32 {
        let context = try Context(common, json: json)
        let workspace = try context.workspace()
        let reference = ModelReference(model, version: version)
        var options = RolloutControl.StartOptions(strategy: strategy)
        options.steps = parsedSteps ?? []
        options.intervalSeconds = interval?.seconds
        options.key = key
        options.analysis.maxErrorRate = maxErrorRate
        options.analysis.maxP99Milliseconds = maxP99Ms
        options.analysis.maxLatencyRatio = maxLatencyRatio
        options.analysis.minRequests = minRequests
        options.analysis.minAgreement = minAgreement
        options.analysis.tolerance = tolerance
        options.durationSeconds = duration?.seconds ?? 3600
        options.sample = sample
        options.keepWarmSeconds = keepWarm?.seconds ?? 1800
        options.force = force
        options.reason = reason
        if let probe {
            let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(reference.name)
            let candidate = try reference.version(in: state)
            let report = try ProbeCommand.run(
                context: context, workspace: workspace, model: reference.name, version: candidate, golden: probe,
                url: nil, headers: [])
            guard report.passed else {
                printError(
                    "git ml: \(report.failures) of \(report.results.count) golden probes failed against "
                        + "\(report.target); not started (git ml probe \(reference.name)@\(candidate) --golden \(probe))"
                )
                return ExitStatus.checkFailed
            }
        }
        let control = RolloutControl(workspace: workspace, cardExaminer: cardExaminer)
        let (plan, event) = try control.start(
            reference.name, version: reference.reference ?? "latest", options: options)
        if json {
            print(
                JSONWriter.pretty(
                    .object(["format": .int(1), "plan": .string(plan.yaml()), "event": event.json])), terminator: "")
            return 0
        }
        let what: String
        switch plan.strategy {
        case .canary:
            what =
                "canary \(plan.steps.map { "\($0) %" }.joined(separator: " → ")), judged every \(Self.text(plan.intervalSeconds))"
        case .shadow:
            let share = (plan.sample * 1000).rounded() / 10
            what =
                "shadow for \(Self.text(plan.durationSeconds)), "
                + "\(NumberText.exact(share)) % mirrored"
        case .blueGreen: what = "blue-green, version \(plan.stable) kept warm \(Self.text(plan.keepWarmSeconds))"
        }
        print("started \(plan.model) version \(plan.candidate): \(what); rollback target: version \(plan.stable)")
        if let forced = plan.forced { print("forced over: \(forced)") }
        print(
            "the running gateway picks it up within a second (git ml serve); watch: git ml rollout status \(plan.model)"
        )
        print("next: git add .mlops && git commit -m \"Roll out \(plan.model) \(plan.candidate)\"")
        return 0
    }

    static func text(_ seconds: Double) -> String {
        if seconds >= 3600 && seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds >= 60 && seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        return NumberText.exact(seconds) + "s"
    }
}

struct RolloutStatus: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a rollout: strategy, step, weights, each interval's numbers per arm, and its decisions.",
        discussion: "Example: git ml rollout status churn --json")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The model.") var model: String
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: output.json).workspace()
        let name = Registry.split(model).name
        guard let plan = try RolloutControl(workspace: workspace).plan(name) else {
            throw RolloutError.noRollout(model: name)
        }
        let store = try RolloutStore(root: workspace.root)
        let state = try store.state(model: name, rollout: plan.id)
        let intervals = try store.intervals(rollout: plan.id)
        let events = try Registry(source: WorkTreeSource(workspace: workspace)).model(name).events.filter {
            $0.kind == .rollout && $0.value["rollout"]?.string == plan.id
        }
        let weight = plan.currentWeight(saved: state?.weight)
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "model": .string(name), "rollout": .string(plan.id),
                        "strategy": .string(plan.strategy.rawValue), "phase": .string(plan.phase.rawValue),
                        "candidate": .int(Int64(plan.candidate)), "stable": .int(Int64(plan.stable)),
                        "rollback_target": .int(Int64(plan.stable)),
                        "steps": .array(plan.steps.map { .int(Int64($0)) }),
                        "state": state?.json ?? .null,
                        "weights": .object([
                            "candidate": .int(Int64(weight)), "stable": .int(Int64(100 - weight)),
                        ]),
                        "intervals": .array(intervals), "events": .array(events.map(\.json)),
                        "reason": .string(plan.reason),
                    ])), terminator: "")
            return 0
        }
        print("\(name): \(plan.strategy.rawValue) rollout of version \(plan.candidate), \(plan.phase.rawValue)")
        print("  rollback target: version \(plan.stable)")
        if plan.strategy == .canary {
            let step = (state?.step ?? 0) + 1
            print("  step \(step) of \(plan.steps.count) (\(plan.steps.map(String.init).joined(separator: ", ")))")
        }
        if plan.strategy != .shadow {
            print("  weights: version \(plan.candidate) \(weight) %, version \(plan.stable) \(100 - weight) %")
        }
        if state == nil && plan.phase.isActive { print("  no gateway has picked it up yet: is git ml serve running?") }
        if !plan.reason.isEmpty { print("  reason: \(plan.reason)") }
        if !intervals.isEmpty {
            print("  intervals (per arm: requests, errors, p50, p99):")
            for row in intervals.suffix(10) {
                func arm(_ key: String) -> String {
                    let stats = row[key]
                    let ms = { (v: JSONValue?) in v?.number.map { JSONWriter.format(($0 * 10).rounded() / 10) } ?? "-" }
                    var text =
                        "\(stats?["requests"]?.number.map { String(Int($0)) } ?? "0") req, "
                        + "\(stats?["errors"]?.number.map { String(Int($0)) } ?? "0") err, "
                        + "p50 \(ms(stats?["p50_ms"])) ms, p99 \(ms(stats?["p99_ms"])) ms"
                    if let agreement = stats?["agreement"]?.number {
                        text += ", agree \(JSONWriter.format((agreement * 1000).rounded() / 10)) %"
                    }
                    return text
                }
                print(
                    "    \(row["time"]?.string ?? "") step \((row["step"]?.int(in: 0...1000) ?? 0) + 1) "
                        + "\(row["verdict"]?.string ?? "?"): candidate \(arm("candidate")); stable \(arm("stable"))")
                print("      \(row["reason"]?.string ?? "")")
            }
        }
        if !events.isEmpty {
            print("  decisions:")
            for event in events { print("    \(event.time)  \(event.summary)") }
        }
        return 0
    }
}

/// `pause`, `resume`, `abort` and `promote` share their arguments.
struct RolloutChange: ParsableArguments {
    @OptionGroup var common: CommonOptions
    @Argument(help: "The model.") var model: String
    @Option(help: "Why, for the audit trail.") var reason = ""
}

struct RolloutPause: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Hold the weights where they are and stop judging intervals.",
        discussion: "Example: git ml rollout pause churn --reason \"holiday traffic\"")
    @OptionGroup var change: RolloutChange

    func execute() throws -> Int32 {
        let workspace = try Context(change.common).workspace()
        let plan = try RolloutControl(workspace: workspace).pause(
            Registry.split(change.model).name, true, reason: change.reason)
        print(
            "paused the rollout of \(plan.model) version \(plan.candidate); git ml rollout resume \(plan.model) goes on"
        )
        return 0
    }
}

struct RolloutResume: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Go on with a paused rollout.",
        discussion: "Example: git ml rollout resume churn"
    )
    @OptionGroup var change: RolloutChange

    func execute() throws -> Int32 {
        let workspace = try Context(change.common).workspace()
        let plan = try RolloutControl(workspace: workspace).pause(
            Registry.split(change.model).name, false, reason: change.reason)
        print("resumed the rollout of \(plan.model) version \(plan.candidate)")
        return 0
    }
}

struct RolloutAbort: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort",
        abstract: "Send all traffic back to the rollback target now.",
        discussion: """
            A blue-green candidate that had already taken production is rolled back in the registry too; the old \
            version is still warm, so the switch back is immediate.

            Example: git ml rollout abort churn --reason "p99 regression seen on the dashboard"
            """)
    @OptionGroup var change: RolloutChange

    func execute() throws -> Int32 {
        let workspace = try Context(change.common).workspace()
        let outcome = try RolloutControl(workspace: workspace).abort(
            Registry.split(change.model).name, reason: change.reason.isEmpty ? "aborted by hand" : change.reason)
        let plan = outcome.plan
        print(
            "aborted the rollout of \(plan.model) version \(plan.candidate): version \(plan.stable) takes all traffic")
        if outcome.rolledBack != nil { print("production is version \(plan.stable) again (a registry rollback)") }
        print("next: git add .mlops && git commit -m \"Abort the rollout of \(plan.model) \(plan.candidate)\"")
        return 0
    }
}

struct RolloutPromote: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Skip the remaining steps: the candidate becomes the production version now.",
        discussion: "Example: git ml rollout promote churn --reason \"metrics look good\"")
    @OptionGroup var change: RolloutChange

    func execute() throws -> Int32 {
        let workspace = try Context(change.common).workspace()
        let (plan, _) = try RolloutControl(workspace: workspace, cardExaminer: cardExaminer).promote(
            Registry.split(change.model).name, reason: change.reason.isEmpty ? "promoted by hand" : change.reason)
        print(
            "promoted \(plan.model) version \(plan.candidate) to production; version \(plan.stable) is the rollback target"
        )
        print("next: git add .mlops && git commit -m \"Promote \(plan.model) \(plan.candidate)\"")
        return 0
    }
}

struct RolloutExportCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the rollout for Argo Rollouts (Rollout + AnalysisTemplate) or KServe (InferenceService).",
        discussion: """
            argo: canary steps as setWeight/pause, and an AnalysisTemplate whose Prometheus queries use git-ml's \
            metrics with the rollout's bounds. kserve: an InferenceService with canaryTrafficPercent and the \
            candidate's storageUri (the default remote's OCI reference unless --storage-uri).

            Examples:
              git ml rollout export churn --format argo --image ghcr.io/acme/churn-serve:4 > rollout.yaml
              git ml rollout export churn --format kserve --model-format sklearn > isvc.yaml
            """)

    enum Format: String, ExpressibleByArgument { case argo, kserve }

    @OptionGroup var common: CommonOptions
    @Argument(help: "The model.") var model: String
    @Option(help: "argo or kserve.") var format: Format
    @Option(help: ArgumentHelp("The image running git ml serve (argo).", valueName: "image")) var image: String?
    @Option(help: ArgumentHelp("Prometheus's address for the analysis (argo).", valueName: "url"))
    var prometheus = "http://prometheus.monitoring.svc:9090"
    @Option(help: ArgumentHelp("Where the candidate's artifact is (kserve).", valueName: "uri")) var storageUri: String?
    @Option(help: ArgumentHelp("KServe's model format name.", valueName: "name")) var modelFormat = "sklearn"
    @Option(help: ArgumentHelp("The Kubernetes namespace.", valueName: "name")) var namespace: String?

    func execute() throws -> Int32 {
        let workspace = try Context(common).workspace()
        let name = Registry.split(model).name
        let control = RolloutControl(workspace: workspace)
        guard let plan = try control.plan(name) else { throw RolloutError.noRollout(model: name) }
        if format == .argo && plan.strategy != .canary {
            throw RolloutError.notCanary(model: name, strategy: plan.strategy)
        }
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(name)
        let version = state.versions[plan.candidate]
        var storage = storageUri
        if storage == nil, format == .kserve {
            let config = try workspace.config.get()
            if let remote = config.defaultRemote, let settings = config.remotes[remote] {
                storage = settings.url + ":\(name)-v\(plan.candidate)"
            } else {
                throw LineageError.badArgument(
                    "no --storage-uri, and no remote to name the artifact by",
                    hint: "pass --storage-uri (s3://, gs://, oci://...) or add one: git ml remote add origin oci://...")
            }
        }
        let inputs = RolloutExport.Inputs(
            image: image ?? "ghcr.io/REPLACE-ME/\(RolloutExport.kubernetesName(name))-serve:\(plan.candidate)",
            prometheus: prometheus, storageURI: storage ?? "", modelFormat: modelFormat,
            weight: plan.currentWeight(
                saved: try RolloutStore(root: workspace.root).state(model: name, rollout: plan.id)?.weight),
            run: version?.file.run ?? "", namespace: namespace)
        print(format == .argo ? RolloutExport.argo(plan, inputs) : RolloutExport.kserve(plan, inputs), terminator: "")
        return 0
    }
}
