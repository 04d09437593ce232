#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Errors about paths named by the user.
public enum PathError: GitMLError {
    case escapesRepository(path: String)
    case symlinkLeavesRepository(path: String, target: String)
    case symlinkInMLOps(path: String, target: String)
    case notFound(path: String)

    public var message: String {
        switch self {
        case .escapesRepository(let path): return "\(path) is outside the repository"
        case .symlinkLeavesRepository(let path, let target):
            return "\(path) is a symbolic link to \(target), outside the repository"
        case .symlinkInMLOps(let path, let target):
            return "\(path) is a symbolic link (to \(target)); git-ml follows no link under .mlops"
        case .notFound(let path): return "\(path) does not exist"
        }
    }
    public var hint: String {
        switch self {
        case .escapesRepository, .symlinkLeavesRepository:
            return "git ml only records files inside the work tree; copy or move the data into the repository"
        case .symlinkInMLOps(let path, _):
            return "replace it with a directory of its own (git rm \(path), then run the command again)"
        case .notFound: return "check the path, relative to the current directory"
        }
    }
    public var code: String {
        switch self {
        case .escapesRepository: return "path-outside-repository"
        case .symlinkLeavesRepository: return "symlink-outside-repository"
        case .symlinkInMLOps: return "symlink-in-mlops"
        case .notFound: return "path-not-found"
        }
    }
}

/// Paths inside a work tree, always held relative to its root with `/` separators and no `.` or `..`.
public enum RepositoryPath {
    /// Removes `.` and empty components and applies `..` lexically; the result is absolute when the input is.
    public static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
                continue
            }
            if part == ".." && absolute { continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : joined
    }

    /// The canonical absolute path with every symbolic link resolved, or nil when it does not exist.
    public static func real(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Resolves `userPath` (relative to `currentDirectory`) to a path relative to `root`, refusing anything
    /// that leaves the work tree through `..`, an absolute path or a symbolic link. The path must exist; the
    /// result names it with every link resolved, so a record holds where the bytes really are.
    public static func resolve(_ userPath: String, root: String, currentDirectory: String) throws -> String {
        let absolute = normalize(userPath.hasPrefix("/") ? userPath : currentDirectory + "/" + userPath)
        let realRoot = real(root) ?? normalize(root)
        let lexicalRoot = normalize(root)
        guard let relative = relativePath(absolute, under: lexicalRoot) ?? relativePath(absolute, under: realRoot)
        else { throw PathError.escapesRepository(path: userPath) }
        let inRoot = relative.isEmpty ? realRoot : realRoot + "/" + relative
        guard let target = real(inRoot) else { throw PathError.notFound(path: userPath) }
        guard let realRelative = relativePath(target, under: realRoot) else {
            throw PathError.symlinkLeavesRepository(path: userPath, target: target)
        }
        return realRelative
    }

    /// `path` relative to `base` when it lies inside it ("" for `base` itself), else nil.
    public static func relativePath(_ path: String, under base: String) -> String? {
        if path == base { return "" }
        let prefix = base.hasSuffix("/") ? base : base + "/"
        guard path.hasPrefix(prefix) else { return nil }
        return String(path.dropFirst(prefix.count))
    }
}
