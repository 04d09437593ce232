import ArgumentParser
import GitMLBasics
import GitMLLineage
import GitMLRegistry

/// `git ml model`: the registry's commands.
struct Model: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register model versions and move them through Draft, Staging, Production and Archived.",
        discussion: """
            Every change is a new file under .mlops/models/<name>/ (a version, or an event), so branches that \
            promote or approve merge without conflicts and `history` is the whole audit trail. A model may be \
            named with a version or stage anywhere: churn@3, churn@staging, churn@production (docs/registry.md).
            """,
        subcommands: [
            Register.self, Promote.self, Approve.self, Archive.self, Rollback.self, Undo.self, ListModels.self,
            ShowModel.self, History.self,
        ])
}

/// A model named with an optional version or stage: `churn`, `churn@3`, `churn@production`.
struct ModelReference {
    let name: String
    let reference: String?

    init(_ text: String, version: String? = nil) {
        let (name, reference) = Registry.split(text)
        self.name = name
        self.reference = version ?? reference
    }

    /// The version it names; `fallback` when it names none.
    func version(in state: ModelState, fallback: String = "latest") throws -> Int {
        try state.resolve(reference ?? fallback)
    }
}

/// `<model> [<version>]` for commands that act on one version (`churn 3`, `churn@3`, `churn@staging`).
struct VersionArguments: ParsableArguments {
    @Argument(help: "The model (or model@version).") var model: String
    @Argument(help: "The version (a number, staging or production; default: the latest).") var version: String?

    /// The model's name, its folded state and the version number meant.
    func resolve(in workspace: Workspace) throws -> (name: String, state: ModelState, version: Int) {
        let reference = ModelReference(model, version: version)
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(reference.name)
        return (reference.name, state, try reference.version(in: state))
    }
}

extension RegistryEvent {
    /// The event as `--json` shows it: its fields plus its id.
    var json: JSONValue {
        guard case .object(var members) = value else { return value }
        members["id"] = .string(id)
        return .object(members)
    }
}
