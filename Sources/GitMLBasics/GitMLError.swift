/// Every error git-ml reports conforms to this: one line of what failed, a hint of what to do next,
/// a stable code for `--json`, and the exit status it means (see docs/exit-codes.md).
public protocol GitMLError: Error, CustomStringConvertible {
    /// What failed, on which object.
    var message: String { get }
    /// What the user can do next; empty when there is nothing useful to say.
    var hint: String { get }
    /// A stable kebab-case identifier, part of the `--json` contract.
    var code: String { get }
    /// 1 for a failed check, 2 for an operational error.
    var exitStatus: Int32 { get }
}

extension GitMLError {
    public var hint: String { "" }
    public var exitStatus: Int32 { ExitStatus.operational }
    public var description: String { hint.isEmpty ? message : "\(message) (\(hint))" }
}

/// The exit statuses shared by every command.
public enum ExitStatus {
    /// Everything asked for was done and every check passed.
    public static let ok: Int32 = 0
    /// A check ran and failed: verify, fsck, a gate.
    public static let checkFailed: Int32 = 1
    /// Bad input, a missing object, not a repository, an I/O failure.
    public static let operational: Int32 = 2
    /// A bad command line (argument-parser's own code).
    public static let usage: Int32 = 64
}

/// Errors from reading structured input files (JSON, YAML, key=value pairs).
public enum InputError: GitMLError {
    case malformed(source: String, detail: String)
    case tooDeep(source: String, limit: Int)
    case tooLarge(source: String, limit: Int)
    case unreadable(source: String, detail: String)

    public var message: String {
        switch self {
        case .malformed(let source, let detail): return "\(source): \(detail)"
        case .tooDeep(let source, let limit): return "\(source): nested deeper than \(limit) levels"
        case .tooLarge(let source, let limit): return "\(source): larger than the limit of \(limit) (values or bytes)"
        case .unreadable(let source, let detail): return "cannot read \(source): \(detail)"
        }
    }
    public var hint: String {
        switch self {
        case .unreadable: return "check the path and its permissions"
        default: return "fix the file and run the command again"
        }
    }
    public var code: String {
        switch self {
        case .malformed: return "malformed-input"
        case .tooDeep: return "input-too-deep"
        case .tooLarge: return "input-too-large"
        case .unreadable: return "unreadable-input"
        }
    }
}
