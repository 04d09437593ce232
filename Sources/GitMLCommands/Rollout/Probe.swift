import ArgumentParser
import GitMLBasics
import GitMLLineage
import GitMLRegistry
import GitMLRollout
import GitMLServe
import GitMLStore

struct ProbeCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Replay golden request/response pairs against a version or an endpoint; exit 1 when answers drift.",
        discussion: """
            Each line of the golden file is {"request": ..., "response": ..., "compare": "exact" | "numeric" | \
            "text", "tolerance": t, "similarity": s, "path": "/v1/models/churn:predict", "name": "..."}. Without \
            --url the version is started as git ml serve starts it (artifacts verified, backend from serve.yaml, \
            health-checked), probed, and stopped. With --url (a vendor's LLM endpoint, say) the requests go there; \
            a key goes in --header, never in the URL.

            Examples:
              git ml probe churn@4 --golden probes.jsonl
              git ml probe assistant --golden golden.jsonl --url https://api.example.com/v1/chat/completions \\
                  --header "Authorization: Bearer $VENDOR_KEY"
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The model (or model@version; default: the production version).") var model: String
    @Option(help: ArgumentHelp("The golden file (JSON lines).", valueName: "file")) var golden: String
    @Option(help: ArgumentHelp("Probe this endpoint instead of a version.", valueName: "url")) var url: String?
    @Option(help: ArgumentHelp("A header for --url ('Name: value'; repeatable).", valueName: "header"))
    var header: [String] = []
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: output.json)
        let workspace = try context.workspace()
        let reference = ModelReference(model)
        var headers: [(String, String)] = []
        for item in header {
            guard let colon = item.firstIndex(of: ":") else {
                throw ValidationError("--header takes 'Name: value'")
            }
            headers.append(
                (
                    String(item[..<colon]).trimmingCharacters(in: .whitespaces),
                    String(item[item.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                ))
        }
        var version: Int?
        if url == nil {
            let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(reference.name)
            version = try reference.version(in: state, fallback: "production")
        }
        let report = try Self.run(
            context: context, workspace: workspace, model: reference.name, version: version, golden: golden, url: url,
            headers: headers)
        if output.json {
            print(JSONWriter.pretty(report.json), terminator: "")
            return report.passed ? 0 : ExitStatus.checkFailed
        }
        for result in report.results where !result.passed {
            print("drift  \(result.name) (line \(result.line)): \(result.detail)")
        }
        print(
            report.passed
                ? "\(report.results.count) golden probes pass against \(report.target)"
                : "\(report.failures) of \(report.results.count) golden probes drifted against \(report.target)")
        return report.passed ? 0 : ExitStatus.checkFailed
    }

    /// Reads the golden file and replays it (shared with `rollout start --probe`).
    static func run(
        context: Context, workspace: Workspace, model: String, version: Int?, golden: String, url: String?,
        headers: [(String, String)]
    ) throws -> ProbeReport {
        let path = workspace.inputPath(golden)
        let probes = try GoldenProbe.parse(try AtomicFile.read(path, limit: 256 << 20), source: golden)
        return try Gateway.probe(
            Gateway.Options(
                root: workspace.root, configPath: ServeConfig.path, host: nil, port: nil, token: nil,
                environment: context.environment, cardExaminer: cardExaminer),
            model: model, version: version, url: url, headers: headers, probes: probes)
    }
}
