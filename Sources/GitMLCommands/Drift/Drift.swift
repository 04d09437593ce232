import ArgumentParser
import GitMLBasics
import GitMLCards
import GitMLDrift
import GitMLLineage
import GitMLRegistry
import GitMLServe
import GitMLStore

struct DriftCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Compare current data with the training-data profile recorded in lineage.",
        discussion: """
            The reference is the profile recorded by the run of <name>@<stage> (default: production), or \
            --reference (a run, a profile id, or a CSV/JSON-lines file). Per column: numbers get PSI over the \
            reference's deciles, the KS statistic and p-value, Jensen-Shannon and Wasserstein distances and the \
            share of values outside the training range; categories get chi-squared, PSI, Jensen-Shannon and new \
            categories; both get the change in missing values; added, removed and retyped columns are drift. \
            Thresholds: config.yaml's drift: section, or --threshold psi=0.2 --threshold p=0.05. \
            Exit 0 no drift, 1 drift, 2 error, so it can gate CI or cron.

            Examples:
              git ml drift churn --current data/this-week.csv
              git ml drift churn@staging --current today.jsonl --format md > drift.md
              git ml drift churn --current today.csv --format html -o drift.html
              git ml drift churn --from-log --since 1h     # what git ml serve was sent (train-serve skew)
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The model (model@stage or model@version; default stage: production); not needed with --reference.")
    var model: String?
    @Option(help: ArgumentHelp("The current data: a CSV or JSON-lines file, anywhere.", valueName: "file"))
    var current: String?
    @Flag(help: "Compare the KServe v1 instances git ml serve logged for the model's version instead.")
    var fromLog = false
    @Option(
        help: ArgumentHelp(
            "With --from-log: only requests from the last <n>s, m, h or d (default 24h).", valueName: "age"))
    var since: LogAge?
    @Option(help: ArgumentHelp("A run, a profile id, or a data file to compare with instead.", valueName: "ref"))
    var reference: String?
    @Option(help: ArgumentHelp("text, md, html, json or csv.", valueName: "format")) var format = DriftFormat.text
    @Option(
        name: .customLong("threshold"),
        help: ArgumentHelp("psi=<number> or p=<number> (repeatable).", valueName: "name=value"))
    var thresholds: [NamedNumber] = []
    @Option(help: ArgumentHelp("Only these columns, comma-separated.", valueName: "a,b")) var columns: String?
    @Option(
        name: .customShort("o"), help: ArgumentHelp("Write to this file.", valueName: "file"))
    var output: String?
    var wantsJSON: Bool { format == .json }

    func validate() throws {
        if (current == nil) == !fromLog {
            throw ValidationError("give either --current <file> or --from-log")
        }
        if fromLog && (model == nil || reference != nil) {
            throw ValidationError("--from-log compares a served model's log with its training profile: name the model")
        }
        if since != nil && !fromLog { throw ValidationError("--since goes with --from-log") }
        if model == nil && reference == nil {
            throw ValidationError("name a model (git ml drift churn --current ...) or a --reference to compare with")
        }
        for threshold in thresholds where !["psi", "p", "p_value"].contains(threshold.name ?? "") {
            throw ValidationError("--threshold takes psi=<number> or p=<number>, for example --threshold psi=0.25")
        }
    }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: format == .json).workspace()
        var limits = try workspace.config.get().drift
        for threshold in thresholds {
            if threshold.name == "psi" { limits.psi = threshold.value } else { limits.pValue = threshold.value }
        }
        let (referenceLabel, referenceProfile, exact, version) = try resolveReference(workspace)
        var only = Set(
            (columns ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        )
        let currentPath: String
        let currentProfile: Profile
        if let current {
            currentPath = current
            // Raw data on both sides: every value is kept and the statistics are exact, not read from sketches.
            currentProfile = try ProfileBuilder.build(
                path: workspace.inputPath(current), source: currentPath, name: "current", keepValues: exact)
        } else {
            let age = since ?? LogAge(seconds: 86_400, text: "24h")
            let scratch = try ScratchDirectory()
            let table = scratch.path + "/log.jsonl"
            let name = Registry.split(model ?? "").name
            let exported = try PredictionLog.export(
                path: try workspace.files.checked(PredictionLog.relativePath), model: name, version: version,
                since: Timestamp.nowSeconds() - age.seconds, columns: referenceProfile.columns.map(\.name), to: table)
            guard exported.rows > 0 else {
                throw LineageError.badArgument(
                    "no KServe v1 instances logged for \(name)@\(version ?? 0) in the last \(age.text)",
                    hint: "serve it with git ml serve (log.sample above 0) and send predictions, or widen --since")
            }
            let requests = "\(exported.requests) request\(exported.requests == 1 ? "" : "s")"
            currentPath = "the prediction log (\(exported.rows) rows from \(requests), last \(age.text))"
            currentProfile = try ProfileBuilder.build(path: table, source: "the prediction log", name: "current")
            if only.isEmpty { only = exported.columns }
        }
        let results = DriftDetector.compare(
            reference: referenceProfile, current: ProfileSummary(currentProfile), thresholds: limits, columns: only)
        let how =
            DriftReport.method(results) == "exact"
            ? "exact: every value of both files" : "from profiles: quantile sketches, within their rank error"
        let title = "Drift of \(currentPath) against \(referenceLabel) (\(how))"
        let text: String
        switch format {
        case .json:
            text = JSONWriter.pretty(
                DriftReport.json(results, reference: referenceLabel, current: currentPath, thresholds: limits))
        case .md: text = DriftReport.markdown(results, title: title)
        case .csv: text = DriftReport.csv(results)
        case .html:
            let charts = results.filter { $0.drifted && !$0.bins.isEmpty }.map(DriftReport.svg).joined(separator: "\n")
            text = CardBuilder.page(
                title: title, markdown: DriftReport.markdown(results, title: title), appendingTrustedHTML: charts)
        case .text: text = DriftReport.text(results, title: title)
        }
        if let output {
            printError("wrote \(try workspace.writeOutput(Array(text.utf8), to: output))")
        } else {
            print(text, terminator: "")
        }
        return results.contains(where: \.drifted) ? ExitStatus.checkFailed : 0
    }

    /// The reference profile: --reference (a data file, a profile id, a run), else the profile recorded by the
    /// run of model@stage; and whether it is a data file whose every value was kept (an exact comparison).
    private func resolveReference(_ workspace: Workspace) throws -> (String, ProfileSummary, Bool, Int?) {
        if let reference {
            let path = workspace.inputPath(reference)
            if FileSystem.exists(path) && !FileSystem.isDirectory(path) {
                return (
                    reference,
                    ProfileSummary(
                        try ProfileBuilder.build(path: path, source: reference, name: "reference", keepValues: true)),
                    true, nil
                )
            }
            if let id = try ProfileStore(workspace: workspace).id(prefix: reference) {
                return ("profile \(id.prefix(12))", try loadProfile(workspace, id), false, nil)
            }
            let (label, profile) = try profileOfRun(
                workspace, try RunStore(workspace: workspace).resolve(reference), label: "run \(reference)")
            return (label, profile, false, nil)
        }
        let (name, stage) = Registry.split(model ?? "")
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(name)
        let version = try state.resolve(stage ?? "production")
        guard let run = state.versions[version]?.file.run else {
            throw RegistryError.versionNotFound(model: name, reference: stage ?? "production", known: [])
        }
        let (label, profile) = try profileOfRun(workspace, run, label: "\(name)@\(version) (run \(run.prefix(12)))")
        return (label, profile, false, version)
    }

    private func profileOfRun(_ workspace: Workspace, _ run: String, label: String) throws -> (String, ProfileSummary) {
        let record = try RunStore(workspace: workspace).read(run)
        guard let id = record.record["profiles"]?.array?.first?["sha256"]?.string else {
            throw LineageError.badArgument(
                "run \(run.prefix(12)) recorded no data profile to compare with",
                hint: "record one: git ml run --profile data/train.csv -- ..., or pass --reference <file>")
        }
        return (label, try loadProfile(workspace, id))
    }

    private func loadProfile(_ workspace: Workspace, _ id: String) throws -> ProfileSummary {
        // Checked field by field: a stored profile is repository content, and a broken one must not read as "ok".
        ProfileSummary(try ProfileStore(workspace: workspace).read(id: id))
    }
}

/// `--since 90m`: an age in seconds, minutes, hours or days.
struct LogAge: ExpressibleByArgument {
    let seconds: Double
    let text: String

    init(seconds: Double, text: String) {
        self.seconds = seconds
        self.text = text
    }

    init?(argument: String) {
        guard let unit = argument.last, let scale = ["s": 1.0, "m": 60, "h": 3600, "d": 86_400][String(unit)],
            let count = Double(argument.dropLast()), count.isFinite, count > 0, count <= 36_500
        else { return nil }
        seconds = count * scale
        text = argument
    }
}
