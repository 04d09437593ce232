import ArgumentParser
import GitMLBasics
import GitMLCards
import GitMLLineage
import GitMLRegistry
import GitMLRemote
import GitMLReproduce
import GitMLStore

struct Reproduce: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-run a recorded run in a temporary checkout of its commit and judge whether it reproduces.",
        discussion: """
            Checks the recorded commit out into a temporary work tree (your HEAD, index and files are never \
            touched), applies the recorded patch of a dirty tree, verifies every data file by sha256 before \
            running anything, diffs the environment, re-runs the command with the recorded seed and params, and \
            compares every metric within tolerance and every artifact by digest. Writes a Markdown and an HTML \
            report. Exit: 0 reproduced (exactly or within tolerance), 1 not reproduced, 2 could not run.

            Examples:
              git ml reproduce 3fa2c1
              git ml reproduce churn@production --tolerance 1e-4 --tolerance acc=0.002 --report audit/churn.md
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "A run id (or prefix), or model@version / model@stage.") var target: String
    @Option(
        name: .customLong("tolerance"),
        help: ArgumentHelp(
            "Absolute tolerance: a number for every metric (default 1e-6), or name=number (repeatable).",
            valueName: "tol"))
    var tolerances: [NamedNumber] = []
    @Flag(help: "Keep the temporary work tree for inspection.") var keep = false
    @Option(help: ArgumentHelp("Write the report here (an .html beside it).", valueName: "path"))
    var report: String?
    @Option(
        help: ArgumentHelp(
            "Find the recorded data paths under this directory instead of the work tree.", valueName: "path"))
    var dataRoot: String?
    @Option(
        name: .customLong("pass-env"),
        help: ArgumentHelp(
            "Pass this variable of your environment to the re-run (repeatable); by default it gets only PATH, HOME, LANG, TMPDIR, GIT_ML_* and the recorded allow-listed variables.",
            valueName: "name"))
    var passEnvironment: [String] = []
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        var options = ReproduceOptions()
        for tolerance in tolerances {
            if let name = tolerance.name {
                options.metricTolerances[name] = tolerance.value
            } else {
                options.tolerance = tolerance.value
            }
        }
        options.keep = keep
        options.dataRoot = dataRoot
        options.passEnvironment = passEnvironment
        let id = try runID(workspace)
        // An auditor's clone has the lineage, not the bytes: the recorded artifacts come from the remote first.
        if try workspace.config.get().defaultRemote != nil {
            do {
                let sync = try RemoteSync(workspace: workspace, remote: nil, credentials: CredentialSource())
                let fetched = try sync.fetchArtifacts(ofRun: id)
                if fetched > 0 {
                    printError("pulled \(fetched) recorded artifact(s) of run \(id.prefix(12)) from \(sync.remoteName)")
                }
            } catch let error as GitMLError {
                printError("note: the recorded artifacts could not be pulled: \(TerminalText.escape(error.message))")
            }
        }
        let reproducer = Reproducer(workspace: workspace)
        let result = try reproducer.reproduce(id, options: options)
        let markdown = ReproductionReport.markdown(result)
        let html = CardBuilder.page(title: "Reproduction of run \(id.prefix(12))", markdown: markdown)
        let base = try reproducer.writeReport(result, id: id, markdown: markdown, html: html, to: report)
        if output.json {
            guard case .object(var members) = ReproductionReport.json(result) else { return result.verdict.exitStatus }
            members["report"] = .string(base)
            print(JSONWriter.pretty(.object(members)), terminator: "")
        } else {
            let color = result.verdict.exitStatus == 0 ? "32" : "31"
            print(
                "\(context.paint(result.verdict.rawValue, color)): run \(id.prefix(12)) at commit \(result.commit.prefix(10))"
                    + (result.reason.isEmpty ? "" : " (\(result.reason))"))
            let outside = result.metrics.filter { $0.outcome == "outside" || $0.outcome == "missing" }.map(\.name)
            if !result.metrics.isEmpty {
                print(
                    "  metrics: \(result.metrics.count) compared, \(result.metrics.filter { $0.outcome == "exact" }.count) exact"
                        + (outside.isEmpty ? "" : ", outside tolerance: \(outside.joined(separator: ", "))"))
            }
            if !result.environment.isEmpty {
                print("  environment: \(result.environment.count) difference(s) from the recorded one")
            }
            if let newRun = result.newRun { print("  new run \(newRun.prefix(12)) (reproduces \(id.prefix(12)))") }
            print("  report: \(base) (and .html)")
        }
        return result.verdict.exitStatus
    }

    /// A run id, or the run of a registered model version.
    private func runID(_ workspace: Workspace) throws -> String {
        let (name, reference) = Registry.split(target)
        if let reference {
            let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(name)
            guard let run = state.versions[try state.resolve(reference)]?.file.run else {
                throw RegistryError.versionNotFound(model: name, reference: reference, known: [])
            }
            return run
        }
        return try RunStore(workspace: workspace).resolve(target)
    }
}

/// A Markdown document as one self-contained HTML page (the card's page style).
