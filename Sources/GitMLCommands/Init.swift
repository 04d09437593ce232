import ArgumentParser
import GitMLLineage

struct Init: GitMLCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create .mlops/ in the current repository.",
        discussion: """
            Writes .mlops/config.yaml, gates.yaml, templates/model-card.md and .gitignore. \
            Files that already exist are left as they are. With --hooks it also installs the pre-push hook \
            (git ml hook install).

            Example: git ml init && git add .mlops && git commit -m "Track ML lineage with git-ml"
            """)

    @OptionGroup var common: CommonOptions
    @Flag(help: "Also install the pre-push hook that blocks ungated promotions.") var hooks = false

    func execute() throws -> Int32 {
        let workspace = try Context(common).workspace(requireInitialized: false)
        let created = try Initializer.initialize(workspace)
        if created.isEmpty {
            print("git-ml is already initialised in \(workspace.root); nothing to do")
        } else {
            print("initialised git-ml in \(workspace.root)/.mlops: created \(created.joined(separator: ", "))")
            print("next: git ml run -- python3 train.py (or git ml snapshot), then commit .mlops")
        }
        if hooks { print(try installHook(workspace.repository)) }
        return 0
    }
}
