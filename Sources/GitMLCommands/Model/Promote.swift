import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct Promote: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a model version to staging or production.",
        discussion: """
            One version is in production at a time: promoting another archives the current one and makes it \
            the rollback target. The promotion is recorded locally; the pre-push hook and `git ml verify --range` \
            refuse to let it leave this machine without passing gate evidence and the required approvals.

            Example: git ml model promote churn 3 --to production --reason "beats v2 on recall"
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var target: VersionArguments
    @Option(help: ArgumentHelp("staging or production.", valueName: "stage")) var to: Stage
    @Option(help: "Why, for the audit trail.") var reason = ""
    @Flag(help: "Print the event as JSON.") var json = false
    var wantsJSON: Bool { json }

    func execute() throws -> Int32 {
        let context = try Context(common, json: json)
        let workspace = try context.workspace()
        let stage = to
        let writer = RegistryWriter(workspace: workspace)
        let (name, state, number) = try target.resolve(in: workspace)
        let (event, archived) = try writer.promote(name, version: number, to: stage, reason: reason)
        let evidence = state.versions[number]?.gates.last { $0.value["stage"]?.string == stage.rawValue }
        if json {
            print(JSONWriter.pretty(.object(["format": .int(1), "event": event.json])), terminator: "")
            return 0
        }
        print("promoted \(name) \(number): \(event.from?.rawValue ?? "?") -> \(stage.rawValue)")
        if let archived { print("  \(name) \(archived) archived; it is the rollback target") }
        if evidence?.passed != true {
            print(
                "  note: no passing gate evidence for \(stage.rawValue) yet; the pre-push hook refuses this push until "
                    + "git ml gate check \(name) \(number) --to \(stage.rawValue) passes")
        }
        if let moved = event.artifacts.first(where: { now in
            state.versions[number]?.file.artifacts.contains { $0.path == now.path && $0.sha256 != now.sha256 } == true
        }) {
            print(
                "  warning: \(moved.path) differs from the registered artifact; this promotion will be refused at push")
        }
        print("next: git add .mlops && git commit -m \"Promote \(name) \(number) to \(stage.rawValue)\"")
        return 0
    }
}
