import GitMLBasics

/// Errors of the lineage area: records, runs, data.
public enum LineageError: GitMLError {
    case notInitialized(root: String)
    case runNotFound(prefix: String, suggestions: [String])
    case ambiguousRun(prefix: String, candidates: [String])
    case invalidRecord(file: String, detail: String)
    case noRuns
    case badArgument(String, hint: String)
    case unsupportedFile(path: String, kind: String)
    case commandNotFound(String)
    case prefixTooShort(String)

    public var message: String {
        switch self {
        case .notInitialized(let root): return "\(root) has no .mlops directory"
        case .runNotFound(let prefix, let suggestions):
            let guess = suggestions.isEmpty ? "" : " (did you mean \(suggestions.joined(separator: " or "))?)"
            return "run \(prefix) not found\(guess)"
        case .ambiguousRun(let prefix, let candidates):
            return "run id \(prefix) is ambiguous: \(candidates.joined(separator: ", "))"
        case .invalidRecord(let file, let detail): return "\(file): \(detail)"
        case .noRuns: return "no runs recorded yet"
        case .badArgument(let text, _): return text
        case .unsupportedFile(let path, let kind):
            return "\(path) is a \(kind); only regular files and links are recorded"
        case .commandNotFound(let command): return "command not found: \(command)"
        case .prefixTooShort(let prefix): return "run id \(prefix) is too short: give at least 4 hex digits"
        }
    }

    public var hint: String {
        switch self {
        case .notInitialized: return "run `git ml init` first"
        case .runNotFound: return "list the runs with `git ml log`"
        case .ambiguousRun: return "give more characters of the id"
        case .invalidRecord: return "run `git ml fsck` to check every record"
        case .noRuns: return "record one with `git ml snapshot` or `git ml run -- <command>`"
        case .badArgument(_, let hint): return hint
        case .unsupportedFile: return "leave it out of --data, or name the files beside it"
        case .commandNotFound: return "check the command's spelling and PATH"
        case .prefixTooShort: return "list the runs with `git ml log`"
        }
    }

    public var code: String {
        switch self {
        case .notInitialized: return "not-initialized"
        case .runNotFound: return "run-not-found"
        case .ambiguousRun: return "ambiguous-run"
        case .invalidRecord: return "invalid-record"
        case .noRuns: return "no-runs"
        case .badArgument: return "bad-argument"
        case .unsupportedFile: return "unsupported-file"
        case .commandNotFound: return "command-not-found"
        case .prefixTooShort: return "prefix-too-short"
        }
    }
}
