import GitMLBasics

/// Why a reproduction cannot even be attempted.
public enum ReproduceError: GitMLError {
    case notARun(String)
    case noCommit(String)
    case commitMissing(commit: String, run: String)

    public var message: String {
        switch self {
        case .notARun(let id): return "run \(id.prefix(12)) is a snapshot: it recorded no command to run again"
        case .noCommit(let id):
            return
                "run \(id.prefix(12)) was recorded before the repository's first commit, so there is no code to check out"
        case .commitMissing(let commit, let run):
            return
                "commit \(commit) of run \(run.prefix(12)) is not in this repository (history rewritten, or a shallow clone)"
        }
    }

    public var hint: String {
        switch self {
        case .notARun: return "reproduce a run recorded with git ml run -- <command>"
        case .noCommit: return "record runs after committing the code"
        case .commitMissing:
            return "fetch it (git fetch --unshallow, or from the remote that still has it), then try again"
        }
    }

    public var code: String {
        switch self {
        case .notARun: return "not-a-run"
        case .noCommit: return "no-commit"
        case .commitMissing: return "commit-missing"
        }
    }
}
