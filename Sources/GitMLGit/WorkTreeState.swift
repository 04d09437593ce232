internal import CGit2
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// Whether the work tree differs from HEAD, and the difference as a patch that `git apply` restores.
public struct WorkTreeState: Sendable {
    /// Paths (relative to the root) that differ from HEAD: modified, staged, deleted or untracked.
    public let changedPaths: [String]
    /// The diff from HEAD's tree to the work tree, untracked files and binary content included; empty when clean.
    public let patch: [UInt8]
    /// Untracked files larger than `untrackedPatchLimit`: counted as changes but left out of the patch.
    public let omitted: [String]

    /// Largest untracked file whose content goes into the patch (code, not data: data belongs in --data).
    public static let untrackedPatchLimit: Int64 = 1 << 20

    /// True when any path differs.
    public var isDirty: Bool { !changedPaths.isEmpty }
}

extension Repository {
    /// Compares the work tree (through the index) with HEAD, leaving out every path for which `excluded`
    /// answers true (git-ml's own `.mlops/`, the data and artifacts a record names by digest).
    public func workTreeState(excluding excluded: (String) -> Bool) throws -> WorkTreeState {
        var options = git_diff_options()
        try check(git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION)), "initialise diff options")
        options.flags =
            GIT_DIFF_INCLUDE_UNTRACKED.rawValue | GIT_DIFF_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_DIFF_SHOW_UNTRACKED_CONTENT.rawValue | GIT_DIFF_SHOW_BINARY.rawValue
            | GIT_DIFF_INCLUDE_TYPECHANGE.rawValue
        var tree: OpaquePointer?
        defer { git_tree_free(tree) }
        if try headCommit() != nil {
            var object: OpaquePointer?
            try check(git_revparse_single(&object, handle, "HEAD^{tree}"), "read HEAD's tree")
            tree = object
        }
        var diff: OpaquePointer?
        try check(git_diff_tree_to_workdir_with_index(&diff, handle, tree, &options), "diff HEAD with the work tree")
        defer { git_diff_free(diff) }
        var changed: [String] = []
        var omitted: [String] = []
        var patch: [UInt8] = []
        for i in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, i) else { continue }
            let newPath = delta.pointee.new_file.path.map { String(cString: $0) } ?? ""
            let oldPath = delta.pointee.old_file.path.map { String(cString: $0) } ?? newPath
            if excluded(newPath) && excluded(oldPath) { continue }
            changed.append(newPath)
            if delta.pointee.status == GIT_DELTA_UNTRACKED {
                var info = stat()
                if stat(root + "/" + newPath, &info) == 0, Int64(info.st_size) > WorkTreeState.untrackedPatchLimit {
                    omitted.append(newPath)
                    continue
                }
            }
            var single: OpaquePointer?
            try check(git_patch_from_diff(&single, diff, i), "format the patch of \(newPath)")
            defer { git_patch_free(single) }
            guard let single else { continue }
            var buffer = git_buf()
            defer { git_buf_dispose(&buffer) }
            try check(git_patch_to_buf(&buffer, single), "format the patch of \(newPath)")
            if let ptr = buffer.ptr {
                patch.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: buffer.size))
            }
        }
        return WorkTreeState(changedPaths: changed.sorted(), patch: patch, omitted: omitted.sorted())
    }
}
