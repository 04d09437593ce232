import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct ShowModel: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one model version: stage, run, artifacts, approvals and gate evidence.",
        discussion: "Example: git ml model show churn@production --json")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "model, model@version or model@stage (default: the latest version).") var model: String
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: output.json).workspace()
        let reference = ModelReference(model)
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(reference.name)
        let number = try reference.version(in: state)
        guard let version = state.versions[number] else { return ExitStatus.operational }
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "model": .string(state.name), "version": .int(Int64(number)),
                        "stage": .string(version.stage.rawValue), "run": .string(version.file.run),
                        "created": .string(version.file.created), "owner": version.file.owner,
                        "artifacts": .array(version.file.artifacts.map(\.json)), "digest": .string(version.file.digest),
                        "rolled_back": .bool(version.rolledBack),
                        "approvals": .array(version.approvals.map(\.json)), "gates": .array(version.gates.map(\.json)),
                        "ignored": .array(
                            state.ignored.filter { $0.event.version == number }.map {
                                .object(["event": .string($0.event.id), "reason": .string($0.reason)])
                            }),
                    ])), terminator: "")
            return 0
        }
        print("\(state.name) version \(number): \(version.stage.rawValue)\(version.rolledBack ? " (rolled back)" : "")")
        print("run       \(version.file.run)")
        print("created   \(version.file.created)")
        for artifact in version.file.artifacts {
            print("artifact  \(artifact.path) sha256:\(artifact.sha256) (\(artifact.size) bytes)")
        }
        for approval in version.approvals { print("approved  by \(approval.actorEmail) at \(approval.time)") }
        for ignored in state.ignored where ignored.event.version == number {
            print("ignored   \(ignored.event.id): \(ignored.reason)")
        }
        for gate in version.gates {
            print(
                "gates     \(gate.value["stage"]?.string ?? "?") \(gate.passed ? "passed" : "failed") at \(gate.time)")
        }
        return 0
    }
}
