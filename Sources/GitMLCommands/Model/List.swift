import ArgumentParser
import GitMLBasics
import GitMLRegistry

struct ListModels: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List registered models with their production and staging versions.",
        discussion: "Example: git ml model list --json")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    var wantsJSON: Bool { output.json }

    func execute() throws -> Int32 {
        let workspace = try Context(common, json: output.json).workspace()
        let registry = Registry(source: WorkTreeSource(workspace: workspace))
        let states = try registry.modelNames().map { try registry.model($0) }
        func staging(_ state: ModelState) -> [Int] {
            state.versions.filter { $0.value.stage == .staging }.keys.sorted()
        }
        if output.json {
            print(
                JSONWriter.pretty(
                    .object([
                        "format": .int(1),
                        "models": .array(
                            states.map { state in
                                .object([
                                    "name": .string(state.name), "versions": .int(Int64(state.versions.count)),
                                    "latest": .int(Int64(state.versions.keys.max() ?? 0)),
                                    "production": state.production.map { .int(Int64($0)) } ?? .null,
                                    "staging": .array(staging(state).map { .int(Int64($0)) }),
                                ])
                            }),
                    ])), terminator: "")
            return 0
        }
        guard !states.isEmpty else {
            print("no models registered yet; register one: git ml model register <name> --run <run>")
            return 0
        }
        var rows = [["MODEL", "PRODUCTION", "STAGING", "LATEST", "VERSIONS"]]
        for state in states {
            rows.append([
                state.name, state.production.map(String.init) ?? "-",
                staging(state).isEmpty ? "-" : staging(state).map(String.init).joined(separator: ","),
                String(state.versions.keys.max() ?? 0), String(state.versions.count),
            ])
        }
        print(table(rows))
        return 0
    }
}
