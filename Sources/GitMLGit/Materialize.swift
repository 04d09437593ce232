internal import CGit2
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

extension Repository {
    /// Makes an empty repository with a work tree at `directory` (which may exist) and opens it.
    public static func create(at directory: String) throws -> Repository {
        _ = libgit2Ready
        var created: OpaquePointer?
        try check(git_repository_init(&created, directory, 0), "create a repository in \(directory)")
        git_repository_free(created)
        return try Repository(discoveringFrom: directory, environment: [:])
    }

    /// Checks `commit` out into `directory` as a repository of its own that borrows this one's objects (an
    /// alternates file): nothing of this repository changes, not its HEAD, its index, its work tree, its refs or
    /// its worktree list. Returns the new repository, HEAD detached at the commit.
    public func materialize(_ commit: String, into directory: String) throws -> Repository {
        guard hasObject(commit) else { throw RepositoryError.unknownRevision(commit) }
        var created: OpaquePointer?
        try check(git_repository_init(&created, directory, 0), "create a repository in \(directory)")
        git_repository_free(created)
        let alternates = directory + "/.git/objects/info/alternates"
        let line = Array((commonDirectory + "/objects\n").utf8)
        let fd = open(alternates, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RepositoryError.unknownRevision(commit) }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        // Reopened, so the alternates are read.
        let copy = try Repository(discoveringFrom: directory, environment: [:])
        var oid = git_oid()
        try check(git_oid_fromstr(&oid, commit), "read commit id \(commit)")
        try check(git_repository_set_head_detached(copy.handle, &oid), "detach HEAD at \(commit.prefix(10))")
        var options = git_checkout_options()
        try check(
            git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "initialise checkout options")
        options.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue
        try check(git_checkout_head(copy.handle, &options), "check out \(commit.prefix(10)) into \(directory)")
        return copy
    }

    /// Puts the work tree back to exactly HEAD's tree: changed files restored, every untracked and ignored file
    /// removed (`git checkout -f && git clean -fdx`). Only what differs is written, so it costs a scan.
    public func resetWorkTree() throws {
        var options = git_checkout_options()
        try check(
            git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "initialise checkout options")
        options.checkout_strategy =
            GIT_CHECKOUT_FORCE.rawValue | GIT_CHECKOUT_REMOVE_UNTRACKED.rawValue
            | GIT_CHECKOUT_REMOVE_IGNORED.rawValue
        try check(git_checkout_head(handle, &options), "reset the work tree of \(root)")
    }

    /// Applies a patch (as `git diff --binary` writes it) to the work tree, as `git apply` does, after `confine` has
    /// accepted every path it names (it throws to refuse, and then nothing is written).
    public func apply(patch: [UInt8], confine: (String) throws -> Void) throws {
        guard !patch.isEmpty else { return }
        var diff: OpaquePointer?
        try patch.withUnsafeBytes { raw in
            try check(
                git_diff_from_buffer(&diff, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count),
                "read the recorded patch")
        }
        defer { git_diff_free(diff) }
        // Every file the patch touches is checked before anything is written (libgit2 would follow a link).
        for i in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, i) else { continue }
            for path in [delta.pointee.old_file.path, delta.pointee.new_file.path] {
                if let path { try confine(String(cString: path)) }
            }
        }
        try check(git_apply(handle, diff, GIT_APPLY_LOCATION_WORKDIR, nil), "apply the recorded patch")
    }
}
