import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct Approve: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record your approval of a model version.",
        discussion: """
            The approval names you (git user.name and user.email) and the exact version file. Gates may require \
            approvals from config.yaml's approvers, and from someone other than the run's owner.

            Example: git ml model approve churn 3 --comment "reviewed the card"
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var target: VersionArguments
    @Option(help: "A comment for the audit trail.") var comment = ""
    @Flag(help: "Print the event as JSON.") var json = false
    var wantsJSON: Bool { json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: json).workspace()
        let (name, _, number) = try target.resolve(in: workspace)
        let event = try RegistryWriter(workspace: workspace).approve(name, version: number, comment: comment)
        if json {
            print(JSONWriter.pretty(.object(["format": .int(1), "event": event.json])), terminator: "")
            return 0
        }
        print("approved \(name) \(number) as \(event.actorEmail.isEmpty ? "(no git identity)" : event.actorEmail)")
        print("next: git ml gate check \(name) \(number), then commit .mlops")
        return 0
    }
}
