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
    /// Each changed file's own patch, in path order (what `patch` joins), for callers that filter it.
    public let files: [FilePatch]

    /// One changed file and its piece of the patch.
    public struct FilePatch: Sendable {
        public let path: String
        public let patch: [UInt8]
        /// Not in the index: a new file the user has not added.
        public let untracked: Bool
        /// git judged its content binary (the patch carries it as a base85 literal).
        public let binary: Bool
        /// Left out of the patch for its size (`untrackedPatchLimit`).
        public let omitted: Bool
    }

    /// Largest untracked file whose content goes into the patch (code, not data: data belongs in --data).
    public static let untrackedPatchLimit: Int64 = 1 << 20

    /// True when any path differs.
    public var isDirty: Bool { !changedPaths.isEmpty }

    static let clean = WorkTreeState(changedPaths: [], patch: [], omitted: [], files: [])
}

extension Repository {
    /// Compares the work tree (through the index) with HEAD, leaving out the `excluded` paths (repository-relative
    /// files or directories: git-ml's own `.mlops`, the data and artifacts a record names by digest; "" is the
    /// whole tree).
    ///
    /// Excluded directories are never scanned: libgit2 is handed the paths around them as a literal path list.
    /// What remains is split into slices of about equal index size, diffed on every core at once, each slice
    /// with its own repository handle (libgit2 handles are not shared between threads), the way git's
    /// preload-index spreads its `lstat` calls.
    public func workTreeState(excluding excluded: [String]) throws -> WorkTreeState {
        let excluded = excluded.map { RepositoryPath.normalize($0) }
        if excluded.contains("") { return .clean }
        var index: OpaquePointer?
        try check(git_repository_index(&index, handle), "read the index")
        defer { git_index_free(index) }
        var tree: OpaquePointer?
        defer { git_tree_free(tree) }
        if try headCommit() != nil {
            var object: OpaquePointer?
            try check(git_revparse_single(&object, handle, "HEAD^{tree}"), "read HEAD's tree")
            tree = object
        }
        let outline = TreeOutline(repository: handle, root: root, index: index, tree: tree)
        let cover = outline.cover(excluding: excluded)
        if cover.isEmpty { return .clean }
        let slices = outline.partition(cover, into: Self.diffWorkers)
        let isExcluded: @Sendable (String) -> Bool = { path in
            excluded.contains { path == $0 || (path.hasPrefix($0) && path.utf8.dropFirst($0.utf8.count).first == 0x2F) }
        }

        // The first slice runs on this handle, whose index is already read; the others open their own.
        let (gitDirectory, root) = (gitDirectory, root)
        let mine = UncheckedHandle(handle)
        let results = try Parallel.map(count: slices.count) { i in
            try PerformanceTrace.measure("diff slice \(i + 1)/\(slices.count): \(slices[i].count) paths") {
                if i == 0 { return try diffSlice(mine.handle, paths: slices[i], excluded: isExcluded) }
                return try Repository.diffSliceWithOwnHandle(
                    gitDirectory: gitDirectory, root: root, paths: slices[i], excluded: isExcluded)
            }
        }
        var changes: [SliceChange] = []
        for result in results { changes += result }
        changes.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        return WorkTreeState(
            changedPaths: changes.map(\.path),
            patch: Array(changes.map(\.patch).joined()),
            omitted: changes.filter(\.omitted).map(\.path),
            files: changes.map {
                WorkTreeState.FilePatch(
                    path: $0.path, patch: $0.patch, untracked: $0.untracked, binary: $0.binary, omitted: $0.omitted)
            })
    }

    /// Threads for the work-tree scan: every core, when libgit2 was built thread-safe.
    private static let diffWorkers: Int = {
        guard git_libgit2_features() & Int32(GIT_FEATURE_THREADS.rawValue) != 0 else { return 1 }
        return min(8, Parallel.cores)
    }()

    private static func diffSliceWithOwnHandle(
        gitDirectory: String, root: String, paths: [String], excluded: (String) -> Bool
    ) throws -> [SliceChange] {
        var handle: OpaquePointer?
        try check(
            git_repository_open_ext(&handle, gitDirectory, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil),
            "open \(gitDirectory)")
        defer { git_repository_free(handle) }
        try check(git_repository_set_workdir(handle, root, 0), "set the work tree")
        guard let handle else { throw RepositoryError.notARepository(path: gitDirectory) }
        return try diffSlice(handle, paths: paths, excluded: excluded)
    }
}

/// One changed path: its patch, or `omitted` when it is a large untracked file left out of the patch.
private struct SliceChange: Sendable {
    var path: String
    var patch: [UInt8]
    var omitted: Bool
    var untracked = false
    var binary = false
}

/// The caller's repository handle, used by exactly one slice while the caller waits.
private struct UncheckedHandle: @unchecked Sendable {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
}

/// Diffs HEAD's tree against the work tree (through the index) for the literal `paths` only.
private func diffSlice(_ handle: OpaquePointer, paths: [String], excluded: (String) -> Bool) throws -> [SliceChange] {
    var options = git_diff_options()
    try check(git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION)), "initialise diff options")
    options.flags =
        GIT_DIFF_INCLUDE_UNTRACKED.rawValue | GIT_DIFF_RECURSE_UNTRACKED_DIRS.rawValue
        | GIT_DIFF_SHOW_UNTRACKED_CONTENT.rawValue | GIT_DIFF_SHOW_BINARY.rawValue
        | GIT_DIFF_INCLUDE_TYPECHANGE.rawValue | GIT_DIFF_DISABLE_PATHSPEC_MATCH.rawValue
    let strings = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: max(1, paths.count))
    for (i, path) in paths.enumerated() { strings[i] = strdup(path) }
    defer {
        for i in paths.indices { free(strings[i]) }
        strings.deallocate()
    }
    options.pathspec = git_strarray(strings: strings, count: paths.count)

    var tree: OpaquePointer?
    defer { git_tree_free(tree) }
    if git_repository_head_unborn(handle) != 1 {
        var object: OpaquePointer?
        try check(git_revparse_single(&object, handle, "HEAD^{tree}"), "read HEAD's tree")
        tree = object
    }
    var diff: OpaquePointer?
    try check(git_diff_tree_to_workdir_with_index(&diff, handle, tree, &options), "diff HEAD with the work tree")
    defer { git_diff_free(diff) }
    let root = String(cString: git_repository_workdir(handle))
    var changes: [SliceChange] = []
    for i in 0..<git_diff_num_deltas(diff) {
        guard let delta = git_diff_get_delta(diff, i) else { continue }
        let newPath = delta.pointee.new_file.path.map { String(cString: $0) } ?? ""
        let oldPath = delta.pointee.old_file.path.map { String(cString: $0) } ?? newPath
        if excluded(newPath) && excluded(oldPath) { continue }
        let untracked = delta.pointee.status == GIT_DELTA_UNTRACKED
        if untracked {
            var info = stat()
            if stat(root + newPath, &info) == 0, Int64(info.st_size) > WorkTreeState.untrackedPatchLimit {
                changes.append(SliceChange(path: newPath, patch: [], omitted: true, untracked: true))
                continue
            }
        }
        var single: OpaquePointer?
        try check(git_patch_from_diff(&single, diff, i), "format the patch of \(newPath)")
        defer { git_patch_free(single) }
        var patch: [UInt8] = []
        var binary = false
        if let single {
            var buffer = git_buf()
            defer { git_buf_dispose(&buffer) }
            try check(git_patch_to_buf(&buffer, single), "format the patch of \(newPath)")
            if let ptr = buffer.ptr { patch = Array(UnsafeRawBufferPointer(start: ptr, count: buffer.size)) }
            if let loaded = git_patch_get_delta(single) {
                binary = loaded.pointee.flags & GIT_DIFF_FLAG_BINARY.rawValue != 0
            }
        }
        changes.append(
            SliceChange(path: newPath, patch: patch, omitted: false, untracked: untracked, binary: binary))
    }
    return changes
}

/// The names the work tree, the index and HEAD's tree hold at each directory level: enough to list the paths
/// around an excluded one, and to weigh slices of the tree by how many index entries they hold.
private struct TreeOutline {
    let repository: OpaquePointer
    let root: String
    let index: OpaquePointer?
    let tree: OpaquePointer?

    /// Paths whose union holds every path of the tree except the excluded ones (and perhaps a few excluded
    /// ones too, where a file stands in the way of a directory: the caller filters those out).
    func cover(excluding excluded: [String]) -> [String] {
        var cover: [String] = []
        func visit(_ directory: String, _ below: [String]) {
            guard let names = children(of: directory) else {
                cover.append(directory)
                return
            }
            var deeper: [String: [String]] = [:]
            var leaves = Set<String>()
            for path in below {
                if let slash = path.firstIndex(of: "/") {
                    deeper[String(path[..<slash]), default: []].append(String(path[path.index(after: slash)...]))
                } else {
                    leaves.insert(path)
                }
            }
            for name in names where !leaves.contains(name) {
                let child = directory.isEmpty ? name : directory + "/" + name
                if let inner = deeper[name] { visit(child, inner) } else { cover.append(child) }
            }
        }
        visit("", excluded)
        return cover.filter { !$0.isEmpty }
    }

    /// Splits `cover` into at most `workers` lists of about equal weight (index entries), opening up
    /// directories that alone would outweigh a fair share.
    func partition(_ cover: [String], into workers: Int) -> [[String]] {
        var items = cover.map { (path: $0, weight: weight(of: $0)) }
        let total = items.reduce(0) { $0 + $1.weight }
        guard workers > 1, total >= 4096 else { return [cover] }
        let share = max(1, total / (workers * 4))
        for _ in 0..<64 {
            guard let heaviest = items.indices.max(by: { items[$0].weight < items[$1].weight }),
                items[heaviest].weight > share, let names = children(of: items[heaviest].path), !names.isEmpty
            else { break }
            let parent = items.remove(at: heaviest).path
            items += names.map { (path: parent + "/" + $0, weight: weight(of: parent + "/" + $0)) }
        }
        var slices = [[String]](repeating: [], count: workers)
        var loads = [Int](repeating: 0, count: workers)
        for item in items.sorted(by: { $0.weight > $1.weight }) {
            let lightest = loads.indices.min { loads[$0] < loads[$1] } ?? 0
            slices[lightest].append(item.path)
            loads[lightest] += item.weight + 1
        }
        return slices.filter { !$0.isEmpty }.map { $0.sorted() }
    }

    /// The entry names directly inside `directory` in the work tree, the index and HEAD's tree; nil when
    /// `directory` is not a directory in all three (a file, or a type change), so it must be taken whole.
    func children(of directory: String) -> [String]? {
        var names = Set<String>()
        let absolute = directory.isEmpty ? root : root + "/" + directory
        var info = stat()
        if lstat(absolute, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
            if let dir = opendir(absolute) {
                while let entry = readdir(dir) {
                    let name = CText.string(fixed: entry.pointee.d_name)
                    if name != "." && name != ".." { names.insert(name) }
                }
                closedir(dir)
            }
        }
        if !directory.isEmpty, git_index_get_bypath(index, directory, 0) != nil { return nil }
        forEachIndexEntry(under: directory) { rest in
            let length = strchr(rest, 0x2F).map { UnsafePointer($0) - rest } ?? strlen(rest)
            return UnsafeRawBufferPointer(start: rest, count: length)
        } name: {
            names.insert(String(decoding: $0, as: UTF8.self))
        }
        if let tree {
            var subtree: OpaquePointer?
            if directory.isEmpty {
                git_tree_dup(&subtree, tree)
            } else {
                var entry: OpaquePointer?
                if git_tree_entry_bypath(&entry, tree, directory) == 0 {
                    defer { git_tree_entry_free(entry) }
                    guard git_tree_entry_type(entry) == GIT_OBJECT_TREE else { return nil }
                    git_tree_lookup(&subtree, repository, git_tree_entry_id(entry))
                }
            }
            if let subtree {
                for i in 0..<git_tree_entrycount(subtree) {
                    if let name = git_tree_entry_name(git_tree_entry_byindex(subtree, i)) {
                        names.insert(String(cString: name))
                    }
                }
                git_tree_free(subtree)
            }
        }
        names.remove(".git")
        return names.sorted()
    }

    /// How many index entries `path` is, or holds when it is a directory.
    func weight(of path: String) -> Int {
        var count = git_index_get_bypath(index, path, 0) != nil ? 1 : 0
        forEachIndexEntry(under: path) { _ in
            nil
        } name: { _ in
            count += 1
        }
        return count
    }

    /// Calls `name` for each index entry below `directory` ("" is the root) with the bytes `component` picks
    /// from the rest of its path, skipping runs that pick the same bytes (or every entry when it picks nil).
    private func forEachIndexEntry(
        under directory: String, component: (UnsafePointer<CChar>) -> UnsafeRawBufferPointer?,
        name: (UnsafeRawBufferPointer) -> Void
    ) {
        let prefix = directory.isEmpty ? "" : directory + "/"
        let prefixLength = prefix.utf8.count
        var position = 0
        if !prefix.isEmpty && git_index_find_prefix(&position, index, prefix) != 0 { return }
        var previous: UnsafeRawBufferPointer?
        for i in position..<git_index_entrycount(index) {
            guard let path = git_index_get_byindex(index, i)?.pointee.path else { continue }
            if prefixLength > 0 && strncmp(path, prefix, prefixLength) != 0 { break }
            guard let picked = component(path + prefixLength) else {
                name(UnsafeRawBufferPointer(start: nil, count: 0))
                continue
            }
            if let previous, previous.elementsEqual(picked) {
                continue
            }
            previous = picked
            name(picked)
        }
    }
}
