internal import CGit2
import GitMLBasics

/// A failed libgit2 call, carrying libgit2's own message read right after the call.
public struct GitError: GitMLError {
    public let status: Int32
    public let klass: Int32
    public let detail: String
    public let operation: String

    init(_ status: Int32, operation: String) {
        self.status = status
        self.operation = operation
        if let last = git_error_last() {
            klass = last.pointee.klass
            detail = String(cString: last.pointee.message)
        } else {
            klass = 0
            detail = "error \(status)"
        }
    }

    public var message: String { "git: \(operation) failed: \(detail)" }
    public var hint: String {
        detail.contains("safe.directory")
            ? "the repository is owned by another user; run `git config --global --add safe.directory <path>`"
            : ""
    }
    public var code: String { "git-error" }
}

/// Errors about the repository itself, before any git operation fails.
public enum RepositoryError: GitMLError {
    case notARepository(path: String)
    case bare(path: String)
    case unknownRevision(String)

    public var message: String {
        switch self {
        case .notARepository(let path): return "not a git repository (or any parent up to /): \(path)"
        case .bare(let path): return "\(path) is a bare repository, which has no work tree to record"
        case .unknownRevision(let revision): return "\(revision) is not a commit in this repository"
        }
    }
    public var hint: String {
        switch self {
        case .notARepository: return "run git ml inside a git work tree, or `git init` one first"
        case .bare: return "run git ml in a clone with a work tree"
        case .unknownRevision: return "fetch it first (git fetch), or name a branch, tag or commit that exists here"
        }
    }
    public var code: String {
        switch self {
        case .notARepository: return "not-a-repository"
        case .bare: return "bare-repository"
        case .unknownRevision: return "unknown-revision"
        }
    }
}

@inline(__always)
func check(_ status: Int32, _ operation: @autoclosure () -> String) throws {
    if status < 0 { throw GitError(status, operation: operation()) }
}
