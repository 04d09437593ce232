import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct History: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's whole audit trail: registrations, stage changes, approvals, gate checks, rollbacks.",
        discussion: "Example: git ml model history churn --json")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The model.") var model: String
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: output.json).workspace()
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(Registry.split(model).name)
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "model": .string(state.name), "events": .array(state.events.map(\.json)),
                    ])), terminator: "")
            return 0
        }
        let ignored = Dictionary(state.ignored.map { ($0.event.id, $0.reason) }, uniquingKeysWith: { a, _ in a })
        for event in state.events {
            print("\(event.time)  \(event.summary)" + (ignored[event.id].map { "  [ignored: \($0)]" } ?? ""))
        }
        return 0
    }
}
