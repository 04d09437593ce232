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

    /// The tree of the commit `revision` names (a sha, a ref, `HEAD~2`).
    public init(_ repository: Repository, revision: String) throws {
        var object: OpaquePointer?
        guard git_revparse_single(&object, repository.handle, revision + "^{commit}") == 0, let object else {
            throw RepositoryError.unknownRevision(revision)
        }
        defer { git_object_free(object) }
        commit = String(cString: git_oid_tostr_s(git_object_id(object)))
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
        var paths: [String] = []
        for i in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, i),
                delta.pointee.status == GIT_DELTA_ADDED || delta.pointee.status == GIT_DELTA_MODIFIED,
                let path = delta.pointee.new_file.path
            else { continue }
            paths.append(String(cString: path))
        }
        return paths
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
