import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct Approve: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record your approval of a model version.",
        discussion: """
            The approval names you (as git names a commit's author) and the exact version file. When git signs \
            with SSH (gpg.format=ssh, user.signingkey), the event is signed with that key (ssh-keygen -Y sign, \
            namespace git-ml) and the signature kept beside it. Gates may require approvals from config.yaml's \
            approvers and from someone other than the run's owner; with .mlops/allowed_signers on the target \
            branch, only approvals whose signature verifies count. You are warned at once when yours would not.

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
        let (event, warnings) = try RegistryWriter(workspace: workspace).approve(
            name, version: number, comment: comment)
        if json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1), "event": event.json, "signed": .bool(event.signature != nil),
                        "warnings": .array(warnings.map(JSONValue.string)),
                    ])), terminator: "")
            return 0
        }
        print("approved \(name) \(number) as \(event.actorEmail)\(event.signature == nil ? " (unsigned)" : ", signed")")
        for warning in warnings { printError("warning: \(warning)") }
        print("next: git ml gate check \(name) \(number), then commit .mlops")
        return 0
    }
}
