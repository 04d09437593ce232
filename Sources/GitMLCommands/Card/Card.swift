import ArgumentParser
import GitMLBasics
import GitMLCards
import GitMLGates
import GitMLLineage
import GitMLRegistry
import GitMLStore

struct Card: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a model card from the recorded lineage, check a committed one, or write a PR comment.",
        discussion: """
            The card comes from the Mustache template .mlops/templates/model-card.md (or --template), filled from \
            the version's run record, the registry and .mlops/models/<name>/card.yaml; every inserted value is \
            escaped for Markdown. Markdown output starts with Hugging Face front matter; HTML is one \
            self-contained file rendered by cmark-gfm in safe mode. The same lineage renders the same bytes.

            Examples:
              git ml card churn@3 --write                 # .mlops/cards/churn/v3.md, for review in a PR
              git ml card churn@production --format html -o card.html
              git ml card churn@3 --check                 # exit 1 when a required section is missing or empty, or stale
              git ml card churn@3 --pr                    # summary and metric deltas vs the champion, for a PR comment
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "model, model@version or model@stage (default: the latest version).") var model: String
    @Option(
        help: ArgumentHelp(
            "A template inside the repository (default: .mlops/templates/model-card.md).", valueName: "path"))
    var template: String?
    @Option(help: ArgumentHelp("md or html.", valueName: "format")) var format = CardFormat.md
    @Option(
        name: .customShort("o"),
        help: ArgumentHelp("Write to this file (inside the repository) instead of stdout.", valueName: "file"))
    var output: String?
    @Flag(help: "Write the card to .mlops/cards/<name>/v<n>.<format>, where --check and gates look for it.") var write =
        false
    @Flag(help: "Check the committed card: required sections present and not empty, lineage current.") var check = false
    @Flag(help: "Render every version of the model (with --write: each to .mlops/cards/<name>/v<n>.<format>).")
    var all = false
    @Flag(help: "Print Markdown for a pull-request comment: the summary and metric deltas against the champion.")
    var pr = false

    func execute() throws -> Int32 {
        let workspace = try Context(common).workspace()
        let (name, reference) = Registry.split(model)
        let builder = CardBuilder(workspace: workspace)
        if check {
            let version = try Registry(source: WorkTreeSource(workspace: workspace)).model(name).resolve(
                reference ?? "latest")
            let problems = try builder.check(
                name, reference: String(version), sections: try requiredSections(workspace), templatePath: template)
            for problem in problems { printError("card \(name) \(version): \(problem)") }
            if problems.isEmpty {
                print("card \(name) \(version): complete and current")
            } else {
                printError("hint: render it again: git ml card \(name)@\(version) --write, then commit .mlops/cards")
            }
            return problems.isEmpty ? 0 : ExitStatus.checkFailed
        }
        if pr {
            print(try builder.pullRequestComment(name, reference: reference ?? "latest"), terminator: "")
            return 0
        }
        if all {
            guard write else {
                throw LineageError.badArgument(
                    "--all renders many cards", hint: "add --write to write each to .mlops/cards/")
            }
            let cards = try builder.renderAll(name, templatePath: template)
            for card in cards { try builder.commit(card, format: format.rawValue) }
            print("wrote \(cards.count) cards under .mlops/cards/\(name)/")
            return 0
        }
        let card = try builder.render(name, reference: reference ?? "latest", templatePath: template)
        if write {
            print("wrote \(try builder.commit(card, format: format.rawValue))")
        } else if let output {
            print(
                "wrote \(try workspace.writeOutput(Array(CardBuilder.text(card, format: format.rawValue).utf8), to: output))"
            )
        } else {
            print(CardBuilder.text(card, format: format.rawValue), terminator: "")
        }
        return 0
    }

    /// The sections gates.yaml requires of a card (production's, else staging's), else the default ones. A gates
    /// file that cannot be read is an error, not a reason to fall back.
    private func requiredSections(_ workspace: Workspace) throws -> [String] {
        let spec = try workspace.files.exists(GateSpec.file) ? try GateRunner(workspace: workspace).spec() : nil
        let declared = spec?.cardSections(for: .production) ?? spec?.cardSections(for: .staging) ?? []
        return declared.isEmpty ? CardBuilder.defaultSections : declared
    }
}

/// The card examiner the gates use when they require card sections (gate check, the hooks, serve, rollout, probe).
let cardExaminer: GateRunner.CardExaminer = {
    workspace, model, version, sections in
    try CardBuilder(workspace: workspace).check(
        model, reference: String(version), sections: sections.isEmpty ? CardBuilder.defaultSections : sections)
}
