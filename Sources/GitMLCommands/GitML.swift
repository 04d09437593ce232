import ArgumentParser
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
            Hook.self, Card.self, Reproduce.self, ProfileCommand.self, DriftCommand.self,
        ]
    )

    public init() {}
}
