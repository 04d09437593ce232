import ArgumentParser
import Foundation
import GitMLBasics
import GitMLLineage

/// `git ml`: the root command.
public struct GitML: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "git-ml",
        abstract: "Make machine-learning work auditable with nothing but git.",
        discussion: """
            Records each training run (commit, data digests, environment, seeds, params, metrics, artifacts) \
            as an immutable file under .mlops/, committed with the code.

            Start with `git ml init`, then `git ml run -- python3 train.py` or `git ml snapshot`. \
            Exit status: 0 ok, 1 a check failed, 2 an operational error, 64 a bad command line \
            (docs/exit-codes.md).

            Environment: NO_COLOR turns colour off; GIT_ML_TRACE_PERFORMANCE=1 prints each phase's time \
            on stderr; GIT_DIR, GIT_WORK_TREE and GIT_CEILING_DIRECTORIES are honoured as git honours them.
            """,
        version: GitMLVersion.current,
        subcommands: [
            Init.self, Run.self, Snapshot.self, Log.self, Show.self, Diff.self, Verify.self, Fsck.self, Model.self,
            Gate.self,
            Hook.self, Card.self, Reproduce.self, ProfileCommand.self, DriftCommand.self, RemoteCommand.self,
            PushCommand.self, PullCommand.self, ServeCommand.self, RolloutCommand.self, ProbeCommand.self,
        ]
    )

    public init() {}

    /// Runs the command line, first answering a mistyped command as git does (`did you mean ...?`, exit 64).
    public static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let message = unknownCommand(arguments) {
            printError(message)
            Foundation.exit(ExitStatus.usage)
        }
        Self.main(arguments)
    }

    /// The error for a first word (or `help <word>`) that names no command, with the nearest one.
    static func unknownCommand(_ arguments: [String]) -> String? {
        let names = configuration.subcommands.map { $0._commandName }
        var words = arguments
        var prefix = "git ml"
        if words.first == "help" {
            words.removeFirst()
            prefix = "git ml help"
        }
        guard let word = words.first, !word.hasPrefix("-"), !names.contains(word), word != "help" else { return nil }
        let nearest = names.map { ($0, editDistance($0, word)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
        return "error: \(prefix) \(word): no such command"
            + (nearest.map { " (did you mean \($0)?)" } ?? "") + "\nhint: see git ml --help for the commands"
    }

    /// Levenshtein distance, for suggestions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        return row[b.count]
    }
}
