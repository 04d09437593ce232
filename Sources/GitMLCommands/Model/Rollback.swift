import ArgumentParser
import GitMLBasics
import GitMLRegistry
import GitMLServe

struct Rollback: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put production back on the previous production version (or abort the rollout under way).",
        discussion: """
            Skips gates and analysis: it returns to a version that was already in production. The version \
            leaving production is marked rolled back, so a later rollback never returns to it unless --to names it. \
            During a rollout (git ml rollout), it aborts the rollout: the running gateway puts all traffic on the \
            rollback target within a second (a blue-green candidate already in production is rolled back too).

            Example: git ml model rollback churn            (or --to 2)
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The model.") var model: String
    @Option(
        help: ArgumentHelp("The version to return to (default: the previous production version).", valueName: "version")
    )
    var to: String?
    @Option(help: "Why, for the audit trail.") var reason = ""
    @Flag(help: "Print the event as JSON.") var json = false
    var wantsJSON: Bool { json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: json).workspace()
        let name = Registry.split(model).name
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(name)
        let target = try to.map { try state.resolve($0) }
        let outcome = try RolloutControl(workspace: workspace).rollback(name, to: target, reason: reason)
        let event = outcome.registry?.event ?? outcome.abortedRollout?.rolledBack
        if json {
            var members: [String: JSONValue] = ["format": .int(1), "event": event?.json ?? .null]
            if let plan = outcome.abortedRollout?.plan { members["rollout"] = .string(plan.id) }
            print(JSONWriter.pretty(.object(members)), terminator: "")
            return 0
        }
        var destination = outcome.registry?.to
        if let plan = outcome.abortedRollout?.plan {
            print(
                "aborted the rollout of \(name) version \(plan.candidate): version \(plan.stable), its rollback target, "
                    + "takes all traffic")
            destination = destination ?? plan.stable
        }
        if let (from, to, _) = outcome.registry {
            print(
                "rolled back \(name): production is version \(to) again; version \(from) is archived and marked rolled back"
            )
        }
        print("next: git add .mlops && git commit -m \"Roll back \(name) to \(destination ?? 0)\"")
        return 0
    }
}
