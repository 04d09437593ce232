import ArgumentParser
import GitMLBasics
import GitMLLineage

/// Options shared by `snapshot` and `run`.
struct RecordOptions: ParsableArguments {
    @Option(
        name: .customLong("data"),
        help: ArgumentHelp(
            "A data file or directory to hash (repeatable; default: data in config.yaml).", valueName: "path"))
    var data: [String] = []
    @Option(
        name: .customLong("artifact"),
        help: ArgumentHelp("An output to hash and store (repeatable).", valueName: "path"))
    var artifacts: [String] = []
    @Option(
        name: .customLong("param"),
        help: ArgumentHelp("A parameter (repeatable); params.yaml is read too.", valueName: "name=value"))
    var params: [String] = []
    @Option(name: .customLong("metric"), help: ArgumentHelp("A numeric metric (repeatable).", valueName: "name=value"))
    var metrics: [String] = []
    @Option(
        name: .customLong("metrics-file"),
        help: ArgumentHelp("A JSON or YAML metrics file, DVC style (repeatable).", valueName: "path"))
    var metricsFiles: [String] = []
    @Option(
        help: ArgumentHelp("The seed (0...4294967295), exported as GIT_ML_SEED and PYTHONHASHSEED.", valueName: "n"))
    var seed: UInt32?
    @Option(
        name: .customLong("profile"),
        help: ArgumentHelp("A CSV or JSON-lines table to profile for drift detection (repeatable).", valueName: "path"))
    var profiles: [String] = []
    @Option(name: .customLong("parent"), help: ArgumentHelp("A run this one builds on (repeatable).", valueName: "run"))
    var parents: [String] = []
    @Flag(help: "Print the new record's id and summary as JSON.")
    var json = false

    var request: RecordRequest {
        var request = RecordRequest()
        request.data = data
        request.artifacts = artifacts
        request.params = params
        request.metrics = metrics
        request.metricsFiles = metricsFiles
        request.seed = seed
        request.parents = parents
        request.profiles = profiles
        return request
    }
}

/// The lines both commands print after writing a record.
func describe(_ outcome: RecordOutcome, context: Context) -> [String] {
    let record = outcome.record
    let kind = record["kind"]?.string ?? "run"
    var lines = [
        "recorded \(kind) \(context.paint(String(outcome.id.prefix(12)), "33")) (\(record["status"]?.string ?? ""))"
    ]
    let commit = record["git"]?["commit"]?.string.map { String($0.prefix(10)) } ?? "no commit yet"
    let dirty = record["git"]?["dirty"]?.bool == true ? ", work tree dirty: patch stored" : ""
    lines.append("  commit \(commit)\(dirty)")
    for item in record["data"]?.array ?? [] {
        lines.append(
            "  data \(item["path"]?.string ?? "") sha256:\(item["sha256"]?.string?.prefix(12) ?? "") (\(item["files"]?.description ?? "1") files)"
        )
    }
    for item in record["artifacts"]?.array ?? [] {
        let digest = item["sha256"]?.string.map { "sha256:" + $0.prefix(12) } ?? "missing"
        lines.append("  artifact \(item["path"]?.string ?? "") \(digest)")
    }
    lines += outcome.notes.map { "  note: " + $0 }
    lines.append("next: git add .mlops && git commit")
    return lines
}

func summaryJSON(_ outcome: RecordOutcome) -> String {
    var object: [String: JSONValue] = [
        "id": .string(outcome.id), "kind": outcome.record["kind"] ?? .null, "status": outcome.record["status"] ?? .null,
        "notes": .array(outcome.notes.map(JSONValue.string)),
    ]
    if let status = outcome.childStatus { object["exit_status"] = .int(Int64(status)) }
    return JSONWriter.compact(.object(object))
}

struct Snapshot: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record the code, data, environment, params and metrics as they are now.",
        discussion: """
            Example: git ml snapshot --param lr=0.01 --metric acc=0.93 --metrics-file metrics.json \
            --data data/ --artifact model.pkl
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var options: RecordOptions
    var wantsJSON: Bool { options.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: options.json)
        let outcome = try Recorder(workspace: try context.workspace(), progress: context.progress).snapshot(
            options.request)
        print(options.json ? summaryJSON(outcome) : describe(outcome, context: context).joined(separator: "\n"))
        return 0
    }
}

struct Run: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run a command and record it: its code, data, environment, seed, params, metrics, artifacts and logs.",
        discussion: """
            The command runs as a child process with GIT_ML_SEED and PYTHONHASHSEED set to the seed \
            (given with --seed, or drawn and recorded), GIT_ML_METRICS naming a file it may write metrics \
            to (a JSON object, or JSON lines of steps) and GIT_ML_PARAMS holding the params as JSON. \
            A failed command is recorded too, and git ml run exits with its status.

            Example: git ml run --seed 42 --data data/ --artifact model.pkl -- python3 train.py --lr 0.01
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var options: RecordOptions
    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []
    var wantsJSON: Bool { options.json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: options.json)
        let outcome = try Recorder(workspace: try context.workspace(), progress: context.progress).run(
            options.request, command: command)
        if options.json {
            print(summaryJSON(outcome))
        } else {
            printError(describe(outcome, context: context).map { "git-ml: " + $0 }.joined(separator: "\n"))
        }
        return outcome.childStatus ?? 0
    }
}
