import ArgumentParser
import GitMLBasics
import GitMLLineage
import GitMLRegistry

struct Register: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register a new version of a model from a recorded run.",
        discussion: """
            The version takes the run's artifacts (all of them, or the ones named with --artifact) with their \
            sha256 and starts in Draft.

            Example: git ml model register churn --run 3fa2c1 --artifact model.pkl
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The model's name (letters, digits, '.', '_', '-').") var name: String
    @Option(help: ArgumentHelp("The run whose artifacts make the version (default: the newest run).", valueName: "run"))
    var run: String?
    @Option(
        name: .customLong("artifact"),
        help: ArgumentHelp("An artifact of the run to include (repeatable).", valueName: "path"))
    var artifacts: [String] = []
    @Flag(help: "Print the new version as JSON.") var json = false
    var wantsJSON: Bool { json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: json)
        let workspace = try context.workspace()
        try Registry.validate(name: name)
        let run = try self.run ?? RunStore(workspace: workspace).latest()
        let version = try RegistryWriter(workspace: workspace).register(name, run: run, artifacts: artifacts)
        if json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "model": .string(name), "version": .int(Int64(version.version)),
                        "run": .string(version.run),
                        "stage": .string("draft"), "artifacts": .array(version.artifacts.map(\.json)),
                    ])), terminator: "")
            return 0
        }
        print(
            "registered \(name) version \(context.paint(String(version.version), "33")) from run \(version.run.prefix(12)) (draft)"
        )
        for artifact in version.artifacts { print("  artifact \(artifact.path) sha256:\(artifact.sha256.prefix(12))") }
        print(
            "next: git ml gate check \(name) \(version.version), then git ml model promote \(name) \(version.version) --to staging"
        )
        return 0
    }
}
