import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLStore

/// Where registry files are read from: the work tree (every command), or one commit's tree (the pre-push hook
/// and `verify --range`, which judge what is pushed, not what is checked out). Paths are repository-relative.
public protocol RegistrySource {
    /// Names directly inside `directory`; empty when it does not exist.
    func names(in directory: String) throws -> [String]
    /// A file's bytes, or nil when there is none.
    func contents(of path: String) throws -> [UInt8]?
}

/// The work tree as it is now.
public struct WorkTreeSource: RegistrySource {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    public func names(in directory: String) throws -> [String] {
        try workspace.files.list(directory).sorted()
    }

    public func contents(of path: String) throws -> [UInt8]? {
        try workspace.files.exists(path) ? try workspace.files.read(path, limit: 64 << 20) : nil
    }
}

extension CommitTree: RegistrySource {}
