internal import CGit2
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// The files of one commit, read from the object database rather than the work tree: what a push or a CI
/// range carries, whatever is checked out.
public final class CommitTree {
    private let repository: Repository
    private let tree: OpaquePointer
    /// The commit's full id.
    public let commit: String
    /// The committer's time, in seconds since 1970 (what the committer claims: git does not check it).
    public let committerTime: Int64

    /// The tree of the commit `revision` names (a sha, a ref, `HEAD~2`).
    public init(_ repository: Repository, revision: String) throws {
        var object: OpaquePointer?
        guard git_revparse_single(&object, repository.handle, revision + "^{commit}") == 0, let object else {
            throw RepositoryError.unknownRevision(revision)
        }
        defer { git_object_free(object) }
        commit = String(cString: git_oid_tostr_s(git_object_id(object)))
        committerTime = Int64(git_commit_time(object))
        var tree: OpaquePointer?
        try check(git_commit_tree(&tree, object), "read the tree of \(revision)")
        guard let tree else { throw RepositoryError.unknownRevision(revision) }
        self.repository = repository
        self.tree = tree
    }

    deinit { git_tree_free(tree) }

    /// Names directly inside `directory` ("" is the root); empty when it is absent or not a directory.
    public func names(in directory: String) throws -> [String] {
        guard let subtree = try subtree(directory) else { return [] }
        defer { if subtree != tree { git_tree_free(subtree) } }
        return (0..<git_tree_entrycount(subtree)).compactMap { i in
            git_tree_entry_name(git_tree_entry_byindex(subtree, i)).map { String(cString: $0) }
        }
    }

    /// The bytes of the file at `path`, or nil when the commit has no file there.
    public func contents(of path: String) throws -> [UInt8]? {
        var entry: OpaquePointer?
        guard git_tree_entry_bypath(&entry, tree, path) == 0, let entry else { return nil }
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return nil }
        var blob: OpaquePointer?
        try check(
            git_blob_lookup(&blob, repository.handle, git_tree_entry_id(entry)), "read \(path) at \(commit.prefix(10))")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard size > 0, let raw = git_blob_rawcontent(blob) else { return [] }
        return Array(UnsafeRawBufferPointer(start: raw, count: size))
    }

    /// Files below `prefix` that this commit has and `base` has not, or has with other bytes (base nil: every
    /// file below `prefix`). Only the trees that differ are read, so the cost follows the change, not the history.
    public func filesChanged(since base: CommitTree?, under prefix: String) throws -> [String] {
        try changes(since: base, under: prefix).filter { $0.kind != .deleted }.map(\.path)
    }

    /// How a file differs between two commits.
    public struct Change: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case added, modified, deleted }
        public let path: String
        public let kind: Kind
    }

    /// Every file below `prefix` that was added, modified (bytes or mode, a file turned into a link) or deleted
    /// since `base` (nil: everything below `prefix` is added).
    public func changes(since base: CommitTree?, under prefix: String) throws -> [Change] {
        var options = git_diff_options()
        try check(git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION)), "initialise diff options")
        let pathspec = strdup(prefix)
        defer { free(pathspec) }
        var strings: [UnsafeMutablePointer<CChar>?] = [pathspec]
        var diff: OpaquePointer?
        try strings.withUnsafeMutableBufferPointer { buffer in
            options.pathspec = git_strarray(strings: buffer.baseAddress, count: 1)
            try check(
                git_diff_tree_to_tree(&diff, repository.handle, base?.tree, tree, &options),
                "compare \(base?.commit.prefix(10) ?? "nothing") with \(commit.prefix(10))")
        }
        defer { git_diff_free(diff) }
        var changes: [Change] = []
        for i in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, i) else { continue }
            switch delta.pointee.status {
            case GIT_DELTA_ADDED:
                if let path = delta.pointee.new_file.path {
                    changes.append(Change(path: String(cString: path), kind: .added))
                }
            case GIT_DELTA_DELETED:
                if let path = delta.pointee.old_file.path {
                    changes.append(Change(path: String(cString: path), kind: .deleted))
                }
            case GIT_DELTA_UNMODIFIED: continue
            default:
                // Modified, a type change (file to link), or a rename/copy reported as a pair: the old name is
                // gone and the new one has other bytes.
                if let path = delta.pointee.old_file.path {
                    changes.append(Change(path: String(cString: path), kind: .modified))
                }
            }
        }
        return changes
    }

    /// The git blob id of the file at `path` and whether it is a symbolic link; nil when there is no file there.
    public func entry(at path: String) -> (blob: String, isLink: Bool, isDirectory: Bool)? {
        var entry: OpaquePointer?
        guard git_tree_entry_bypath(&entry, tree, path) == 0, let entry else { return nil }
        defer { git_tree_entry_free(entry) }
        let mode = git_tree_entry_filemode(entry)
        return (
            String(cString: git_oid_tostr_s(git_tree_entry_id(entry))), mode == GIT_FILEMODE_LINK,
            mode == GIT_FILEMODE_TREE
        )
    }

    /// Writes the regular files below `prefix` into `directory` at the same relative paths (links, submodules and
    /// names git would never write are skipped): a scratch copy of part of a commit, to read with file-based code.
    public func extract(under prefix: String, into directory: String) throws {
        guard let start = try subtree(prefix) else { return }
        defer { if start != tree { git_tree_free(start) } }
        try extract(start, into: directory + "/" + prefix)
    }

    /// `mkdir -p`.
    private static func makeDirectories(_ path: String) throws {
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
        guard errno == ENOENT, let slash = path.lastIndex(of: "/"), slash != path.startIndex else {
            throw GitError(-1, operation: "create \(path)")
        }
        try makeDirectories(String(path[..<slash]))
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw GitError(-1, operation: "create \(path)") }
    }

    private func extract(_ node: OpaquePointer, into directory: String) throws {
        try Self.makeDirectories(directory)
        for i in 0..<git_tree_entrycount(node) {
            guard let entry = git_tree_entry_byindex(node, i), let raw = git_tree_entry_name(entry) else { continue }
            let name = String(cString: raw)
            guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { continue }
            let mode = git_tree_entry_filemode(entry)
            if mode == GIT_FILEMODE_TREE {
                var child: OpaquePointer?
                try check(git_tree_lookup(&child, repository.handle, git_tree_entry_id(entry)), "read \(name)")
                guard let child else { continue }
                defer { git_tree_free(child) }
                try extract(child, into: directory + "/" + name)
            } else if mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE {
                var blob: OpaquePointer?
                try check(git_blob_lookup(&blob, repository.handle, git_tree_entry_id(entry)), "read \(name)")
                defer { git_blob_free(blob) }
                let path = directory + "/" + name
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
                guard fd >= 0 else { throw GitError(-1, operation: "write \(path)") }
                defer { close(fd) }
                var offset = 0
                let size = Int(git_blob_rawsize(blob))
                guard let base = git_blob_rawcontent(blob) else { continue }
                while offset < size {
                    let n = write(fd, base + offset, size - offset)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw GitError(-1, operation: "write \(path)") }
                    offset += n
                }
            }
        }
    }

    private func subtree(_ directory: String) throws -> OpaquePointer? {
        if directory.isEmpty { return tree }
        var entry: OpaquePointer?
        guard git_tree_entry_bypath(&entry, tree, directory) == 0, let entry else { return nil }
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_TREE else { return nil }
        var subtree: OpaquePointer?
        try check(git_tree_lookup(&subtree, repository.handle, git_tree_entry_id(entry)), "read \(directory)")
        return subtree
    }
}

extension Repository {
    /// The best common ancestor of two commits, or nil when they share no history.
    public func mergeBase(_ a: String, _ b: String) -> String? {
        var left = git_oid()
        var right = git_oid()
        var base = git_oid()
        guard git_oid_fromstr(&left, a) == 0, git_oid_fromstr(&right, b) == 0,
            git_merge_base(&base, handle, &left, &right) == 0
        else { return nil }
        return String(cString: git_oid_tostr_s(&base))
    }

    /// The commits `refs/remotes/<remote>/*` point to: what the remote had when last fetched or pushed.
    public func remoteTrackingTips(_ remote: String) -> [String] {
        var iterator: OpaquePointer?
        guard git_reference_iterator_glob_new(&iterator, handle, "refs/remotes/\(remote)/*") == 0 else { return [] }
        defer { git_reference_iterator_free(iterator) }
        var tips: [String] = []
        var reference: OpaquePointer?
        while git_reference_next(&reference, iterator) == 0 {
            var resolved: OpaquePointer?
            if git_reference_resolve(&resolved, reference) == 0, let target = git_reference_target(resolved) {
                tips.append(String(cString: git_oid_tostr_s(target)))
            }
            git_reference_free(resolved)
            git_reference_free(reference)
        }
        return tips
    }

    /// The commit a reference (`refs/heads/main`, `HEAD`, `refs/remotes/origin/HEAD`) resolves to, following
    /// symbolic references; nil when it does not exist or names no commit.
    public func resolveReference(_ name: String) -> String? {
        var oid = git_oid()
        guard git_reference_name_to_id(&oid, handle, name) == 0 else { return nil }
        return String(cString: git_oid_tostr_s(&oid))
    }

    /// The full name a symbolic reference points to (`refs/remotes/origin/HEAD` -> `refs/remotes/origin/main`).
    public func symbolicTarget(_ name: String) -> String? {
        var reference: OpaquePointer?
        guard git_reference_lookup(&reference, handle, name) == 0, let reference else { return nil }
        defer { git_reference_free(reference) }
        guard git_reference_type(reference) == GIT_REFERENCE_SYMBOLIC,
            let target = git_reference_symbolic_target(reference)
        else { return nil }
        return String(cString: target)
    }

    /// True when the object named by the 40-hex `id` is in this repository.
    public func hasObject(_ id: String) -> Bool {
        var oid = git_oid()
        guard git_oid_fromstr(&oid, id) == 0 else { return false }
        var odb: OpaquePointer?
        guard git_repository_odb(&odb, handle) == 0 else { return false }
        defer { git_odb_free(odb) }
        return git_odb_exists(odb, &oid) == 1
    }
}
