import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct Undo: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take back a model's newest registry event, while it has not been pushed.",
        discussion: """
            Removes the newest event file of the model (its signature too, and for a registration the version \
            file), as long as no remote-tracking ref has it: a promotion the pre-push hook refuses can be taken \
            back instead of fixed. Once pushed, an event is history: record a new one (rollback, archive). \
            Commit the removal as any other change.

            Example: git ml model undo churn
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The model.") var model: String
    @Flag(help: "Print the removed event as JSON.") var json = false
    var wantsJSON: Bool { json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: json).workspace()
        let event = try RegistryWriter(workspace: workspace).undo(Registry.split(model).name)
        if json {
            print(JSONWriter.pretty(.object(["format": .int(1), "removed": event.json])), terminator: "")
            return 0
        }
        print("took back \(event.summary) (\(event.id))")
        print("next: git add -A .mlops && git commit -m \"Take back: \(event.summary)\"")
        return 0
    }
}
