import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct Archive: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Retire a model version.",
        discussion: "Example: git ml model archive churn 1 --reason \"superseded\"")

    @OptionGroup var common: CommonOptions
    @OptionGroup var target: VersionArguments
    @Option(help: "Why, for the audit trail.") var reason = ""
    @Flag(help: "Print the event as JSON.") var json = false
    var wantsJSON: Bool { json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: json).workspace()
        let (name, _, number) = try target.resolve(in: workspace)
        let event = try RegistryWriter(workspace: workspace).archive(name, version: number, reason: reason)
        if json {
            print(JSONWriter.pretty(.object(["format": .int(1), "event": event.json])), terminator: "")
            return 0
        }
        print("archived \(name) \(number) (was \(event.from?.rawValue ?? "?"))")
        if event.from == .production { print("  \(name) has no version in production now") }
        return 0
    }
}
