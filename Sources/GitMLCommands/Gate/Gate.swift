import ArgumentParser

/// `git ml gate`: quality gates.
struct Gate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate quality gates for a model version.",
        subcommands: [GateCheckCommand.self])
}
