import GitMLBasics
import GitMLGit
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// A git work tree with git-ml initialised in it: where every `.mlops` file lives.
public final class Workspace {
    /// The repository (libgit2).
    public let repository: Repository
    /// The work tree root.
    public let root: String
    /// The directory the command was started from (absolute).
    public let currentDirectory: String
    /// The environment the command was started with.
    public let environment: [String: String]

    /// Opens the repository containing `currentDirectory` and checks that `.mlops` exists there.
    public init(currentDirectory: String, environment: [String: String], requireInitialized: Bool = true) throws {
        repository = try Repository(discoveringFrom: currentDirectory, environment: environment)
        root = repository.root
        self.currentDirectory = currentDirectory
        self.environment = environment
        if requireInitialized && !FileSystem.isDirectory(mlops) {
            throw LineageError.notInitialized(root: root)
        }
    }

    /// `.mlops`
    public var mlops: String { root + "/.mlops" }
    /// `.mlops/runs`
    public var runsDirectory: String { mlops + "/runs" }
    /// `.mlops/manifests`: the file lists behind directory digests.
    public var manifestsDirectory: String { mlops + "/manifests" }
    /// `.mlops/profiles`: data profiles for drift, by digest.
    public var profilesDirectory: String { mlops + "/profiles" }
    /// `.mlops/patches`: uncommitted changes of dirty work trees, by digest.
    public var patchesDirectory: String { mlops + "/patches" }
    /// `.mlops/cache`: local only, never committed.
    public var cacheDirectory: String { mlops + "/cache" }
    /// The artifact and log store.
    public var objects: ObjectStore { ObjectStore(directory: cacheDirectory + "/objects") }
    /// The record of run `id`.
    public func recordPath(_ id: String) -> String { "\(runsDirectory)/\(id).json" }

    /// The local index and stat cache, opened on first use.
    public lazy var database: Result<Database, Error> = Result {
        try AtomicFile.makeDirectories(cacheDirectory)
        let database = try Database(path: cacheDirectory + "/index.sqlite")
        try LocalIndex.migrate(database)
        return database
    }

    /// The repository's configuration (`.mlops/config.yaml`), defaults when absent.
    public lazy var config: Result<Config, Error> = Result { try Config.load(from: mlops + "/config.yaml") }

    /// Resolves a user's path argument to a repository-relative path, refusing anything outside the tree.
    public func resolve(_ userPath: String) throws -> String {
        try RepositoryPath.resolve(userPath, root: root, currentDirectory: currentDirectory)
    }

    /// The absolute path of a repository-relative path.
    public func absolute(_ relative: String) -> String { relative.isEmpty ? root : root + "/" + relative }

    /// A path to write: it may not exist yet (a command makes it), but it must stay inside the work tree, through
    /// no link that leads outside.
    public func resolveOutput(_ userPath: String) throws -> String {
        if let resolved = try? resolve(userPath) { return resolved }
        let absolute = RepositoryPath.normalize(
            userPath.hasPrefix("/") ? userPath : currentDirectory + "/" + userPath)
        let realRoot = RepositoryPath.real(root) ?? root
        let parent = AtomicFile.parent(of: absolute)
        let realParent = RepositoryPath.real(parent) ?? parent
        guard
            let relativeParent = RepositoryPath.relativePath(realParent, under: realRoot)
                ?? RepositoryPath.relativePath(parent, under: root)
        else { throw PathError.escapesRepository(path: userPath) }
        var info = stat()
        if lstat(absolute, &info) == 0 {
            // It exists but resolve refused it: a link leading outside.
            throw PathError.symlinkLeavesRepository(path: userPath, target: FileSystem.linkTarget(absolute) ?? "?")
        }
        let name = absolute.split(separator: "/").last.map(String.init) ?? ""
        return relativeParent.isEmpty ? name : relativeParent + "/" + name
    }
}
