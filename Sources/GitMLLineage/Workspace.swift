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
        // A link at .mlops itself is refused here, by the resolver.
        let initialized = try files.isDirectory(".mlops")
        if requireInitialized && !initialized { throw LineageError.notInitialized(root: root) }
        if initialized { try Self.refuseLinks(in: mlops, relative: ".mlops") }
    }

    /// Opens repository-relative paths beneath the work tree, never through a link under `.mlops` nor out of the
    /// tree anywhere (the one resolver every area uses for paths that come from the repository).
    public var files: Beneath { Beneath(root: root) }

    /// git-ml writes no symbolic link under `.mlops`, so one there was planted: refuse the repository before any
    /// command reads or writes through it. Reads directory entries only (their type comes with the name).
    private static func refuseLinks(in directory: String, relative: String) throws {
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            // Regular files (nearly every entry: records, objects) are passed over without making their name.
            let type = Int32(entry.pointee.d_type)
            if type == Int32(DT_REG) { continue }
            let name = CText.string(fixed: entry.pointee.d_name)
            guard name != "." && name != ".." else { continue }
            switch type {
            case Int32(DT_LNK):
                let path = relative + "/" + name
                throw PathError.symlinkInMLOps(
                    path: path, target: FileSystem.linkTarget(directory + "/" + name) ?? "?")
            case Int32(DT_DIR):
                try refuseLinks(in: directory + "/" + name, relative: relative + "/" + name)
            case Int32(DT_UNKNOWN):
                var info = stat()
                guard lstat(directory + "/" + name, &info) == 0 else { continue }
                if (info.st_mode & S_IFMT) == S_IFLNK {
                    throw PathError.symlinkInMLOps(
                        path: relative + "/" + name, target: FileSystem.linkTarget(directory + "/" + name) ?? "?")
                }
                if (info.st_mode & S_IFMT) == S_IFDIR {
                    try refuseLinks(in: directory + "/" + name, relative: relative + "/" + name)
                }
            default: continue
            }
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
    public lazy var config: Result<Config, Error> = Result { [files] in
        try files.exists(".mlops/config.yaml")
            ? try Config.parse(try files.read(".mlops/config.yaml", limit: 1 << 20)) : Config()
    }

    /// Resolves a user's path argument to a repository-relative path, refusing anything outside the tree.
    public func resolve(_ userPath: String) throws -> String {
        try RepositoryPath.resolve(userPath, root: root, currentDirectory: currentDirectory)
    }

    /// The absolute path of a repository-relative path.
    public func absolute(_ relative: String) -> String { relative.isEmpty ? root : root + "/" + relative }

    /// A path a command will record into lineage and may not exist yet (`--artifact` before the run makes it):
    /// inside the work tree, reached through no link that leads out of it.
    public func resolveRecordable(_ userPath: String) throws -> String {
        if let resolved = try? resolve(userPath) { return resolved }
        let absolute = RepositoryPath.normalize(userPath.hasPrefix("/") ? userPath : currentDirectory + "/" + userPath)
        let realRoot = RepositoryPath.real(root) ?? root
        let parent = AtomicFile.parent(of: absolute)
        let realParent = RepositoryPath.real(parent) ?? parent
        guard
            let relativeParent = RepositoryPath.relativePath(realParent, under: realRoot)
                ?? RepositoryPath.relativePath(parent, under: root)
        else { throw PathError.escapesRepository(path: userPath) }
        let name = absolute.split(separator: "/").last.map(String.init) ?? ""
        let relative = relativeParent.isEmpty ? name : relativeParent + "/" + name
        var info = stat()
        if lstat(absolute, &info) == 0 {
            // It exists but resolve refused it: a link leading outside.
            throw PathError.symlinkLeavesRepository(path: userPath, target: FileSystem.linkTarget(absolute) ?? "?")
        }
        _ = try files.checked(relative)
        return relative
    }

    /// Writes a file the user named on the command line (`-o`, `--report`), atomically (a temporary file beside it,
    /// then a rename, so a link planted at the target is replaced, never written through). Outside the work tree it
    /// may be anywhere the user can write, as with `git format-patch -o`; inside it, the path is resolved beneath the
    /// root, so a committed link leading out is refused. Returns the path to show.
    @discardableResult
    public func writeOutput(_ bytes: [UInt8], to userPath: String) throws -> String {
        let absolute = RepositoryPath.normalize(userPath.hasPrefix("/") ? userPath : currentDirectory + "/" + userPath)
        if let relative = RepositoryPath.relativePath(absolute, under: root), !relative.isEmpty {
            try files.write(bytes, to: relative)
            return relative
        }
        try AtomicFile.write(bytes, to: absolute)
        return absolute
    }

    /// A path the user named for reading (`--current`, `--reference`): anywhere they can read, as typed.
    public func inputPath(_ userPath: String) -> String {
        RepositoryPath.normalize(userPath.hasPrefix("/") ? userPath : currentDirectory + "/" + userPath)
    }
}
