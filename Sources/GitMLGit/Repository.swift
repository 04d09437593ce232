internal import CGit2
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// libgit2 is set up before any call (read this once where a call may come first).
var libgit2Ready: Bool { libgit2Initialized }

private let libgit2Initialized: Bool = {
    git_libgit2_init()
    return true
}()

/// A git repository with a work tree, opened the way git finds it: from the current directory upward,
/// or from `GIT_DIR` and `GIT_WORK_TREE` when they are set (and `GIT_CEILING_DIRECTORIES` respected).
public final class Repository {
    let handle: OpaquePointer
    /// The work tree's root, without a trailing slash (the git directory itself for a bare repository).
    public let root: String
    /// The git directory (`.git`), without a trailing slash.
    public let gitDirectory: String
    /// True for a repository without a work tree (a server's).
    public let isBare: Bool
    /// The environment git-ml was started with: git's own settings come from it too.
    public let environment: [String: String]
    /// git's configuration as git resolves it, read on first use.
    public private(set) lazy var config: GitConfig = {
        let listing = GitProgram.output(
            ["config", "--list", "-z"], gitDirectory: gitDirectory, workTree: isBare ? nil : root,
            environment: environment)
        return listing.map(GitConfig.init(listing:)) ?? Self.libgit2Config(handle)
    }()

    /// Finds the repository containing `directory`, honouring git's environment variables.
    public init(discoveringFrom directory: String, environment: [String: String]) throws {
        _ = libgit2Initialized
        self.environment = environment
        isBare = false
        var raw: OpaquePointer?
        func absolute(_ path: String) -> String {
            RepositoryPath.normalize(path.hasPrefix("/") ? path : directory + "/" + path)
        }
        if let gitDir = environment["GIT_DIR"], !gitDir.isEmpty {
            let flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue
            guard git_repository_open_ext(&raw, absolute(gitDir), flags, nil) == 0, let raw else {
                throw RepositoryError.notARepository(path: absolute(gitDir))
            }
            handle = raw
        } else {
            let ceilings = environment["GIT_CEILING_DIRECTORIES"]
            guard git_repository_open_ext(&raw, directory, 0, ceilings) == 0, let raw else {
                throw RepositoryError.notARepository(path: directory)
            }
            handle = raw
        }
        gitDirectory = Self.trimmed(String(cString: git_repository_path(handle)))
        if let workTree = environment["GIT_WORK_TREE"], !workTree.isEmpty {
            try check(git_repository_set_workdir(handle, absolute(workTree), 0), "set the work tree")
        } else if environment["GIT_DIR"] != nil, Self.configuredWorkTree(handle) == nil {
            // git's rule: GIT_DIR without GIT_WORK_TREE or core.worktree makes the current directory the top.
            try check(git_repository_set_workdir(handle, directory, 0), "set the work tree")
        }
        guard let workdir = git_repository_workdir(handle) else {
            let path = gitDirectory
            git_repository_free(handle)
            throw RepositoryError.bare(path: path)
        }
        root = Self.trimmed(String(cString: workdir))
    }

    /// Opens the repository a git hook runs in, bare or not, the way git describes it to the hook: `GIT_DIR`,
    /// and the quarantined objects of a push in progress (`GIT_OBJECT_DIRECTORY`, `GIT_ALTERNATE_OBJECT_DIRECTORIES`).
    public init(hookEnvironment environment: [String: String], directory: String) throws {
        _ = libgit2Initialized
        self.environment = environment
        var raw: OpaquePointer?
        let gitDir = environment["GIT_DIR"].map { $0.hasPrefix("/") ? $0 : directory + "/" + $0 } ?? directory
        let status = Self.withEnvironment(environment) {
            git_repository_open_ext(&raw, RepositoryPath.normalize(gitDir), GIT_REPOSITORY_OPEN_FROM_ENV.rawValue, nil)
        }
        guard status == 0, let raw else { throw RepositoryError.notARepository(path: gitDir) }
        handle = raw
        gitDirectory = Self.trimmed(String(cString: git_repository_path(handle)))
        isBare = git_repository_is_bare(handle) == 1
        root =
            isBare
            ? gitDirectory : git_repository_workdir(handle).map { Self.trimmed(String(cString: $0)) } ?? gitDirectory
    }

    /// libgit2 reads GIT_DIR and the object directories from the process environment: set what git gave the hook
    /// for the duration of the call (hooks run git-ml with that environment anyway).
    private static func withEnvironment<T>(_ environment: [String: String], _ body: () -> T) -> T {
        let keys = ["GIT_DIR", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH"]
        for key in keys {
            if let value = environment[key] { setenv(key, value, 1) } else { unsetenv(key) }
        }
        return body()
    }

    /// Configuration from libgit2 alone, when the git program cannot be asked.
    private static func libgit2Config(_ handle: OpaquePointer) -> GitConfig {
        var config: OpaquePointer?
        guard git_repository_config_snapshot(&config, handle) == 0, let config else { return GitConfig(values: [:]) }
        defer { git_config_free(config) }
        var values: [String: [String]] = [:]
        _ = git_config_foreach(
            config,
            { entry, payload in
                guard let entry, let payload, let name = entry.pointee.name, let value = entry.pointee.value else {
                    return 0
                }
                let box = payload.assumingMemoryBound(to: [String: [String]].self)
                box.pointee[GitConfig.canonical(String(cString: name)), default: []].append(String(cString: value))
                return 0
            }, &values)
        return GitConfig(values: values)
    }

    deinit { git_repository_free(handle) }

    private static func trimmed(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    private static func configuredWorkTree(_ handle: OpaquePointer) -> String? {
        configValue(handle, "core.worktree")
    }

    /// A value from git's configuration as git resolves it, or nil when unset.
    public func configValue(_ key: String) -> String? { config.get(key) }

    /// The directory shared by all work trees of the repository (where hooks live by default).
    public var commonDirectory: String { Self.trimmed(String(cString: git_repository_commondir(handle))) }

    private static func configValue(_ handle: OpaquePointer, _ key: String) -> String? {
        var config: OpaquePointer?
        guard git_repository_config_snapshot(&config, handle) == 0, let config else { return nil }
        defer { git_config_free(config) }
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        guard git_config_get_string_buf(&buffer, config, key) == 0, let ptr = buffer.ptr else { return nil }
        return String(cString: ptr)
    }

    /// The commit HEAD points to, or nil on a branch with no commits yet.
    public func headCommit() throws -> String? {
        var oid = git_oid()
        let status = git_reference_name_to_id(&oid, handle, "HEAD")
        if status == GIT_ENOTFOUND.rawValue || git_repository_head_unborn(handle) == 1 { return nil }
        try check(status, "resolve HEAD")
        return String(cString: git_oid_tostr_s(&oid))
    }

    /// The current branch's short name, or nil when HEAD is detached.
    public func currentBranch() throws -> String? {
        var head: OpaquePointer?
        guard git_reference_lookup(&head, handle, "HEAD") == 0, let head else { return nil }
        defer { git_reference_free(head) }
        guard git_reference_type(head) == GIT_REFERENCE_SYMBOLIC, let target = git_reference_symbolic_target(head)
        else { return nil }
        let name = String(cString: target)
        return name.hasPrefix("refs/heads/") ? String(name.dropFirst("refs/heads/".count)) : name
    }

    /// The URL of `origin` (else of the first remote), or nil when there is none.
    public func remoteURL() throws -> String? {
        if let origin = config.get("remote.origin.url") { return origin }
        return config.keys(withPrefix: "remote.").first { $0.hasSuffix(".url") }.flatMap(config.get)
    }

    /// Who is acting, by git's own rules: `GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL`, `EMAIL`, `author.*` and `user.*`
    /// from every configuration file and `git -c`. Nil when git knows no identity (it would refuse to commit).
    public private(set) lazy var identity: GitIdentity? = {
        guard
            let ident = GitProgram.output(
                ["var", "GIT_AUTHOR_IDENT"], gitDirectory: gitDirectory, workTree: isBare ? nil : root,
                environment: environment)
        else { return nil }
        var text = String(decoding: ident, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return GitIdentity(ident: text)
    }()

    /// The paths of the files in the index whose last component satisfies `keep`, relative to the root.
    /// Only the names are turned into Swift strings, so a 100k-file index is scanned in about a millisecond.
    public func indexedPaths(whereFileName keep: (String) -> Bool) throws -> [String] {
        var index: OpaquePointer?
        try check(git_repository_index(&index, handle), "read the index")
        defer { git_index_free(index) }
        var paths: [String] = []
        for i in 0..<git_index_entrycount(index) {
            guard let path = git_index_get_byindex(index, i)?.pointee.path else { continue }
            let name = strrchr(path, 0x2F).map { UnsafePointer($0 + 1) } ?? path
            if keep(String(cString: name)) { paths.append(String(cString: path)) }
        }
        return paths
    }

    /// The value of a gitattribute for `path` (`filter` -> `lfs`), or nil when unset.
    public func attribute(_ name: String, for path: String) throws -> String? {
        var value: UnsafePointer<CChar>?
        try check(git_attr_get(&value, handle, 0, path, name), "read attribute \(name) of \(path)")
        guard git_attr_value(value) == GIT_ATTR_VALUE_STRING, let value else { return nil }
        return String(cString: value)
    }
}
