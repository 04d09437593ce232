import Foundation
import GitMLBasics
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// Progress of long hashing work, for a terminal's progress bar.
public struct HashProgress: Sendable {
    public var bytesDone: Int64
    public var bytesTotal: Int64
    public var filesDone: Int
    public var filesTotal: Int
    /// What is being done to the bytes: hashing, pushing, pulling.
    public var verb = "hashing"

    public init(bytesDone: Int64, bytesTotal: Int64, filesDone: Int, filesTotal: Int, verb: String = "hashing") {
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.filesDone = filesDone
        self.filesTotal = filesTotal
        self.verb = verb
    }
}

/// Progress shared by worker threads (hashing files, moving blobs), reported at most ten times a second and once
/// more at the end, when nobody listens not at all.
public final class ProgressTracker: @unchecked Sendable {
    private let mutex = Mutex()
    private var state: HashProgress
    private var lastReport = 0.0
    private let report: (@Sendable (HashProgress) -> Void)?

    public init(files: Int, bytes: Int64, verb: String = "hashing", report: (@Sendable (HashProgress) -> Void)?) {
        state = HashProgress(bytesDone: 0, bytesTotal: bytes, filesDone: 0, filesTotal: files, verb: verb)
        self.report = report
    }

    /// `bytes` more are done, and with `fileDone` one more file.
    public func add(bytes: Int64, fileDone: Bool = false) {
        guard let report else { return }
        let snapshot: HashProgress? = mutex.locked {
            state.bytesDone += bytes
            if fileDone { state.filesDone += 1 }
            let now = PerformanceTrace.now()
            guard now - lastReport > 0.1 else { return nil }
            lastReport = now
            return state
        }
        if let snapshot { report(snapshot) }
    }

    /// Reports where the work ended.
    public func finish() {
        guard let report else { return }
        report(mutex.locked { state })
    }
}

/// One recorded path: a file, or a directory digested as a Merkle manifest of its sorted entries.
public struct DataPointer: Sendable, Equatable {
    /// Relative to the repository root.
    public var path: String
    /// "file" or "directory".
    public var type: String
    /// The file's SHA-256, or for a directory the SHA-256 of its manifest.
    public var sha256: String
    /// Bytes, summed over files for a directory.
    public var size: Int64
    /// Files (and links) counted.
    public var files: Int
    /// The DVC pointer (`<path>.dvc`) when the path is tracked by DVC.
    public var dvc: JSONValue?
    /// The git-lfs pointer: the oid a pointer file names, or the oid of a smudged file tracked by LFS.
    public var lfs: JSONValue?
    /// LFS pointer files found inside a directory.
    public var lfsPointers: [JSONValue] = []
    /// Per-file lines of a directory (not written into the record; stored as `.mlops/manifests/<sha256>`).
    var manifest: Manifest?

    /// The pointer as it appears in a record.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "path": .string(path), "type": .string(type), "sha256": .string(sha256),
            "size": .int(size), "files": .int(Int64(files)),
        ]
        if let dvc { object["dvc"] = dvc }
        if let lfs { object["lfs"] = lfs }
        if !lfsPointers.isEmpty { object["lfs_pointers"] = .array(lfsPointers) }
        return .object(object)
    }
}

/// A directory's content list: one line per file, sorted by path, `<sha256> <size> <type> <path>`.
/// Its SHA-256 is the directory's digest (a Merkle digest: a hash over the entries' hashes).
public struct Manifest: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var size: Int64
        /// "f" for a regular file, "l" for a symbolic link (digest of its target text; never followed).
        public var type: String
    }
    public var entries: [Entry]

    /// The manifest's bytes; paths escape `\` and newline so every entry stays on one line.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.count * 100)
        for entry in entries {
            out += entry.sha256.utf8
            out.append(0x20)
            out += String(entry.size).utf8
            out.append(0x20)
            out += entry.type.utf8
            out.append(0x20)
            for byte in entry.path.utf8 {
                switch byte {
                case 0x5C: out += [0x5C, 0x5C]
                case 0x0A: out += [0x5C, 0x6E]
                default: out.append(byte)
                }
            }
            out.append(0x0A)
        }
        return out
    }

    /// Reads a manifest written by `bytes`.
    /// The manifest stored as `.mlops/manifests/<sha256>`, read beneath the work tree; its bytes must hash to its
    /// name (a hand-made one cannot stand in for the real list).
    public static func stored(_ sha256: String, in workspace: Workspace) throws -> Manifest {
        let file = ".mlops/manifests/\(sha256)"
        guard SHA256.isDigest(sha256) else { throw InputError.malformed(source: file, detail: "not a sha256") }
        let bytes = try workspace.files.read(file)
        guard try SHA256.hex(of: bytes) == sha256 else {
            throw LineageError.invalidRecord(
                file: file, detail: "content does not match its name: the manifest was modified")
        }
        return try parse(bytes, source: file)
    }

    public static func parse(_ bytes: [UInt8], source: String) throws -> Manifest {
        var entries: [Entry] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, SHA256.isDigest(fields[0]), let size = Int64(fields[1]), size >= 0,
                fields[2] == "f" || fields[2] == "l"
            else {
                throw InputError.malformed(source: source, detail: "bad manifest line: \(line.prefix(80))")
            }
            var path = ""
            var escaped = false
            for ch in fields[3] {
                if escaped {
                    path.append(ch == "n" ? "\n" : ch); escaped = false
                } else if ch == "\\" {
                    escaped = true
                } else {
                    path.append(ch)
                }
            }
            // A path below the folder: a hand-written manifest cannot name a file elsewhere.
            guard !path.isEmpty, !path.hasPrefix("/"),
                !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }),
                !path.contains("\u{0}")
            else {
                throw InputError.malformed(
                    source: source, detail: "manifest names a path outside its folder: \(path.prefix(80))")
            }
            entries.append(Entry(path: path, sha256: String(fields[0]), size: size, type: String(fields[2])))
        }
        return Manifest(entries: entries)
    }
}

/// Hashes data paths with every core, reusing the stat cache for files whose stat has not changed.
public final class DataHasher {
    private let workspace: Workspace
    private let useCache: Bool
    private let writeManifests: Bool
    private let progress: (@Sendable (HashProgress) -> Void)?

    /// `useCache: false` re-reads every byte (verify); digests are still written back to the cache.
    /// `writeManifests: false` leaves `.mlops/manifests` untouched (a check must not add files).
    public init(
        workspace: Workspace, useCache: Bool = true, writeManifests: Bool = true,
        progress: (@Sendable (HashProgress) -> Void)? = nil
    ) {
        self.workspace = workspace
        self.useCache = useCache
        self.writeManifests = writeManifests
        self.progress = progress
    }

    private struct Found {
        var relative: String
        var stat: FileStat
        var isLink: Bool
    }

    /// What is known of one found file: its digest, and the git-lfs pointer it is, if it is one.
    private struct Known {
        var sha256: String
        var lfs: LFSPointer.Fields?
    }

    /// Digests of the given repository-relative paths, in the order given.
    public func hash(_ paths: [String]) throws -> [DataPointer] {
        // Paths come from records as well as from the user: each must be reached beneath the work tree.
        for path in paths { _ = try workspace.files.checked(path) }
        let cache = StatCache(database: try workspace.database.get())
        var allFound: [[Found]] = []
        var allKnown: [[Known?]] = []
        var fingerprints: [String?] = []
        var unchanged: [StatCache.Directory?] = []
        var gone: [String] = []
        var toHash: [(path: Int, file: Int)] = []
        for (p, path) in paths.enumerated() {
            let found = try PerformanceTrace.measure("walk \(path)") { try walk(path) }
            let isDirectory = !(found.count == 1 && found[0].relative == path)
            let fingerprint = isDirectory ? try Self.fingerprint(found) : nil
            var known = [Known?](repeating: nil, count: found.count)
            // A directory whose every stat is as it was when it was last digested has that same digest.
            if useCache, let fingerprint, let directory = try cache.directory(path, fingerprint: fingerprint),
                FileSystem.exists("\(workspace.manifestsDirectory)/\(directory.sha256)")
            {
                allFound.append([])
                allKnown.append([])
                fingerprints.append(nil)
                unchanged.append(directory)
                continue
            }
            if useCache {
                // Both lists are in byte order of the path, so one merge pass pairs them.
                var i = 0
                try PerformanceTrace.measure("stat cache \(path)") {
                    try cache.scan(under: path) { cachedPath, entry in
                        while i < found.count, Self.compare(found[i].relative, cachedPath) < 0 { i += 1 }
                        if i < found.count, Self.compare(found[i].relative, cachedPath) == 0 {
                            if !found[i].isLink && entry.stat == found[i].stat {
                                known[i] = Known(sha256: entry.sha256(), lfs: entry.lfs())
                            }
                        } else {
                            gone.append(String(decoding: cachedPath, as: UTF8.self))
                        }
                    }
                }
            }
            for (i, file) in found.enumerated() where known[i] == nil {
                if file.isLink {
                    let target = FileSystem.linkTarget(workspace.absolute(file.relative)) ?? ""
                    known[i] = Known(sha256: try SHA256.hex(of: target), lfs: nil)
                } else {
                    toHash.append((p, i))
                }
            }
            allFound.append(found)
            allKnown.append(known)
            fingerprints.append(fingerprint)
            unchanged.append(nil)
        }
        let hashedAt = Int64(Date().timeIntervalSince1970 * 1e9)
        let files = toHash.map { allFound[$0.path][$0.file] }
        let fresh = try PerformanceTrace.measure("hash \(files.count) files") { try hashInParallel(files) }
        var cacheUpdates: [StatCache.Update] = []
        for ((p, i), result) in zip(toHash, fresh) {
            let file = allFound[p][i]
            let lfs = file.stat.size < LFSPointer.maximumSize ? LFSPointer.read(workspace.absolute(file.relative)) : nil
            allKnown[p][i] = Known(sha256: result.sha256, lfs: lfs)
            if result.size == file.stat.size && file.stat.isSafeToCache(hashedAt: hashedAt) {
                cacheUpdates.append(
                    StatCache.Update(path: file.relative, stat: file.stat, sha256: result.sha256, lfs: lfs))
            }
        }
        var pointers: [DataPointer] = []
        var directories: [StatCache.Directory] = []
        for (p, path) in paths.enumerated() {
            if let directory = unchanged[p] {
                var pointer = DataPointer(
                    path: path, type: "directory", sha256: directory.sha256, size: directory.size,
                    files: directory.files)
                pointer.lfsPointers = directory.lfsPointers
                pointer.dvc = try DVCPointer.read(for: path, workspace: workspace)
                pointers.append(pointer)
                continue
            }
            let found = allFound[p]
            let pointer = try PerformanceTrace.measure("pointer \(path)") {
                let known = allKnown[p].compactMap { $0 }
                guard known.count == found.count else { throw StoreError("hash every file of", path: path, errno: EIO) }
                return try self.pointer(for: path, found: found, known: known)
            }
            pointers.append(pointer)
            if let fingerprint = fingerprints[p], writeManifests,
                found.allSatisfy({ $0.stat.isSafeToCache(hashedAt: hashedAt) })
            {
                directories.append(
                    StatCache.Directory(
                        path: path, fingerprint: fingerprint, sha256: pointer.sha256, size: pointer.size,
                        files: pointer.files, lfsPointers: pointer.lfsPointers))
            }
        }
        try cache.update(cacheUpdates, directories: directories, forget: gone)
        return pointers
    }

    /// A directory pointer's manifest: the one just built, else the stored `.mlops/manifests/<sha256>` (a
    /// directory found unchanged by its fingerprint is not listed again).
    func manifest(of pointer: DataPointer) throws -> Manifest {
        if let manifest = pointer.manifest { return manifest }
        return try Manifest.stored(pointer.sha256, in: workspace)
    }

    /// The SHA-256 of every found path and its stat, in order: equal only when no file was added, removed,
    /// renamed or touched (the racily-clean rule applies as for single files).
    private static func fingerprint(_ found: [Found]) throws -> String {
        let hasher = try SHA256()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        for file in found {
            buffer += file.relative.utf8
            buffer.append(file.isLink ? 1 : 0)
            for field in [
                file.stat.device, file.stat.inode, file.stat.size, file.stat.mtimeNanoseconds,
                file.stat.ctimeNanoseconds,
            ] {
                withUnsafeBytes(of: field.littleEndian) { buffer += $0 }
            }
            if buffer.count > 60000 {
                hasher.update(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        hasher.update(buffer)
        return hasher.finalizeHex()
    }

    /// Byte order of two paths, the way SQLite's BINARY collation orders the stat cache.
    private static func compare(_ path: String, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        path.utf8.withContiguousStorageIfAvailable { mine in
            let n = min(mine.count, bytes.count)
            guard n > 0, let left = mine.baseAddress, let right = bytes.baseAddress else {
                return mine.count == bytes.count ? 0 : (mine.count < bytes.count ? -1 : 1)
            }
            let order = memcmp(left, right, n)
            if order != 0 { return order }
            return mine.count == bytes.count ? 0 : (mine.count < bytes.count ? -1 : 1)
        }
            ?? {
                var copy = path
                copy.makeContiguousUTF8()
                return compare(copy, bytes)
            }()
    }

    private func pointer(for path: String, found: [Found], known: [Known]) throws -> DataPointer {
        let absolute = workspace.absolute(path)
        var pointer: DataPointer
        if FileSystem.isDirectory(absolute) && !(found.count == 1 && found[0].relative == path) {
            let prefix = path.isEmpty ? 0 : path.utf8.count + 1
            let entries = zip(found, known).map { file, known in
                Manifest.Entry(
                    path: String(decoding: file.relative.utf8.dropFirst(prefix), as: UTF8.self), sha256: known.sha256,
                    size: file.stat.size, type: file.isLink ? "l" : "f")
            }
            let manifest = Manifest(entries: entries)
            let bytes = manifest.bytes
            let sha256 = try SHA256.hex(of: bytes)
            if writeManifests { try workspace.files.writeIfAbsent(bytes, to: ".mlops/manifests/\(sha256)") }
            pointer = DataPointer(
                path: path, type: "directory", sha256: sha256, size: entries.reduce(0) { $0 + $1.size },
                files: entries.count, manifest: manifest)
            pointer.lfsPointers = zip(entries, known).compactMap { entry, known in
                guard var lfs = known.lfs?.json else { return nil }
                lfs["path"] = .string(entry.path)
                return .object(lfs)
            }
        } else {
            let file = found[0]
            pointer = DataPointer(
                path: path, type: file.isLink ? "symlink" : "file", sha256: known[0].sha256, size: file.stat.size,
                files: 1)
            if let lfs = file.isLink ? nil : known[0].lfs {
                pointer.lfs = .object(lfs.json)
            } else if try workspace.repository.attribute("filter", for: path) == "lfs" {
                pointer.lfs = .object([
                    "oid": .string("sha256:" + pointer.sha256), "size": .int(file.stat.size), "pointer": .bool(false),
                ])
            }
        }
        pointer.dvc = try DVCPointer.read(for: path, workspace: workspace)
        return pointer
    }

    /// Every regular file and link at or below `path`, never following links and skipping `.git` and the
    /// repository's own `.mlops`, in manifest order: by the bytes of the path, as git sorts its index.
    /// The directories of each level are read on every core, each through its descriptor (`fstatat` on one
    /// name, not a path walk per file); the listings are then joined in order.
    private func walk(_ path: String) throws -> [Found] {
        var info = stat()
        guard lstat(workspace.absolute(path), &info) == 0 else { throw StoreError("stat", path: path) }
        if let single = try found(path, FileStat(info), mode: info.st_mode) { return [single] }
        var listings: [String: Listing] = [:]
        var level = [path]
        while !level.isEmpty {
            let read = try readDirectories(level)
            level = []
            for listing in read {
                listings[listing.relative] = listing
                level += listing.entries.filter(\.isDirectory).map { listing.child($0.name) }
            }
        }
        var found: [Found] = []
        func flatten(_ listing: Listing) throws {
            for entry in listing.entries {
                let child = listing.child(entry.name)
                if let file = try self.found(child, entry.stat, mode: entry.mode) {
                    found.append(file)
                } else if let inner = listings[child] {
                    try flatten(inner)
                }
            }
        }
        if let top = listings[path] { try flatten(top) }
        return found
    }

    /// One directory as read: its entries in manifest order.
    private struct Listing: Sendable {
        struct Entry: Sendable {
            var name: String
            var isDirectory: Bool
            var stat: FileStat
            var mode: mode_t
        }
        var relative: String
        var entries: [Entry]
        func child(_ name: String) -> String { relative.isEmpty ? name : relative + "/" + name }
    }

    /// Reads the given directories on every core.
    private func readDirectories(_ paths: [String]) throws -> [Listing] {
        let absolutes = paths.map { workspace.absolute($0) }
        return try Parallel.map(count: paths.count) { try Self.readDirectory(absolutes[$0], relative: paths[$0]) }
    }

    private static func readDirectory(_ absolute: String, relative: String) throws -> Listing {
        let descriptor = open(absolute, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0, let directory = fdopendir(descriptor) else {
            if descriptor >= 0 { close(descriptor) }
            throw StoreError("read directory", path: relative)
        }
        defer { closedir(directory) }
        var entries: [Listing.Entry] = []
        var allASCII = true
        errno = 0
        while let entry = readdir(directory) {
            let name = CText.string(fixed: entry.pointee.d_name)
            if name == "." || name == ".." || name == ".git" || (relative.isEmpty && name == ".mlops") {
                errno = 0
                continue
            }
            var info = stat()
            guard fstatat(dirfd(directory), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw StoreError("stat", path: relative.isEmpty ? name : relative + "/" + name)
            }
            allASCII = allASCII && name.utf8.allSatisfy { $0 < 0x80 }
            entries.append(
                Listing.Entry(
                    name: name, isDirectory: (info.st_mode & S_IFMT) == S_IFDIR, stat: FileStat(info),
                    mode: info.st_mode))
            errno = 0
        }
        guard errno == 0 else { throw StoreError("read directory", path: relative) }
        // Git's order: a directory sorts as if its name ended in "/", so whole paths end up in byte order.
        // ASCII names compare as bytes under String's own (fast) ordering; others go byte by byte.
        if allASCII {
            let keys = entries.map { $0.isDirectory ? $0.name + "/" : $0.name }
            let order = keys.indices.sorted { keys[$0] < keys[$1] }
            entries = order.map { entries[$0] }
        } else {
            entries.sort { precedes($0.name, isDirectory: $0.isDirectory, $1.name, isDirectory: $1.isDirectory) }
        }
        return Listing(relative: relative, entries: entries)
    }

    /// A file or link as found, nil for a directory; other kinds are refused.
    private func found(_ relative: String, _ stat: FileStat, mode: mode_t) throws -> Found? {
        switch mode & S_IFMT {
        case S_IFREG: return Found(relative: relative, stat: stat, isLink: false)
        case S_IFLNK: return Found(relative: relative, stat: stat, isLink: true)
        case S_IFDIR: return nil
        case S_IFIFO: throw LineageError.unsupportedFile(path: relative, kind: "named pipe")
        case S_IFSOCK: throw LineageError.unsupportedFile(path: relative, kind: "socket")
        default: throw LineageError.unsupportedFile(path: relative, kind: "device file")
        }
    }

    /// Byte order of `a` and `b`, a directory's name read as if it ended in "/".
    static func precedes(_ a: String, isDirectory aIsDirectory: Bool, _ b: String, isDirectory bIsDirectory: Bool)
        -> Bool
    {
        let order = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y -> Bool in
                let n = min(x.count, y.count)
                if n > 0, let left = x.baseAddress, let right = y.baseAddress {
                    let order = memcmp(left, right, n)
                    if order != 0 { return order < 0 }
                }
                // One name is a prefix of the other: what follows is the next byte, "/" for a directory, or nothing.
                let left = x.count > n ? Int(x[n]) : (aIsDirectory ? 0x2F : -1)
                let right = y.count > n ? Int(y[n]) : (bIsDirectory ? 0x2F : -1)
                return left < right
            }
        }
        if let order = order ?? nil { return order }
        let left: [UInt8] = Array(a.utf8) + (aIsDirectory ? [0x2F] : [])
        let right: [UInt8] = Array(b.utf8) + (bIsDirectory ? [0x2F] : [])
        return left.lexicographicallyPrecedes(right)
    }

    /// Hashes files on every core, largest first so one big file does not finish last alone.
    private func hashInParallel(_ files: [Found]) throws -> [(sha256: String, size: Int64)] {
        let order = files.indices.sorted { files[$0].stat.size > files[$1].stat.size }
        let paths = files.map { workspace.absolute($0.relative) }
        let tracker = ProgressTracker(
            files: files.count, bytes: files.reduce(0) { $0 + $1.stat.size }, report: progress)
        let results = try Parallel.map(count: files.count, order: order, state: { try FileHasher() }) { hasher, index in
            let result = try hasher.hash(path: paths[index]) { tracker.add(bytes: Int64($0)) }
            tracker.add(bytes: 0, fileDone: true)
            return result
        }
        if !files.isEmpty { tracker.finish() }
        return results
    }
}

/// git-lfs pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
public enum LFSPointer {
    /// The spec caps a pointer file below this size, so larger files are never read as pointers.
    public static let maximumSize: Int64 = 1024

    /// What a pointer file names.
    public struct Fields: Equatable, Sendable {
        /// `sha256:<hex>`: the SHA-256 of the file the pointer stands for.
        public var oid: String
        public var size: Int64
        var json: [String: JSONValue] { ["oid": .string(oid), "size": .int(size), "pointer": .bool(true)] }
    }

    /// The oid and size named by a pointer file, or nil when the file is not one.
    static func read(_ path: String) -> Fields? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int64(info.st_size) < maximumSize,
            let bytes = try? AtomicFile.read(path, limit: Int(maximumSize))
        else { return nil }
        return parse(bytes)
    }

    /// The oid and size named by a pointer file's bytes, or nil when they are not a pointer.
    public static func parse(_ bytes: [UInt8]) -> Fields? {
        guard bytes.count < maximumSize else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("version https://git-lfs.github.com/spec/v1\n") else { return nil }
        var oid: String?
        var size: Int64?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("oid sha256:") { oid = String(line.dropFirst("oid ".count)) }
            if line.hasPrefix("size "), let n = Int64(line.dropFirst("size ".count)) { size = n }
        }
        guard let oid, let size else { return nil }
        return Fields(oid: oid, size: size)
    }
}

/// DVC's `.dvc` files, read as DVC writes them (`outs: [{md5|hash, size, nfiles, path}]`).
enum DVCPointer {
    /// The pointer for `path`: `<path>.dvc` beside it, or `path` itself when it is a `.dvc` file.
    static func read(for path: String, workspace: Workspace) throws -> JSONValue? {
        // `<path>.dvc` beside it, or the path itself when it is a .dvc file (a folder named .dvc, DVC's own, is
        // data like any other).
        let isPointer = path.hasSuffix(".dvc") && !FileSystem.isDirectory(workspace.absolute(path))
        let file = isPointer ? path : path + ".dvc"
        let absolute = workspace.absolute(file)
        guard FileSystem.exists(absolute), !FileSystem.isDirectory(absolute) else { return nil }
        let value = try YAMLReader.parse(try AtomicFile.read(absolute, limit: 1 << 20), source: file)
        guard let out = value["outs"]?.array?.first?.object else {
            throw InputError.malformed(source: file, detail: "no outs entry, as DVC writes")
        }
        var pointer: [String: JSONValue] = ["file": .string(file)]
        for key in ["md5", "hash", "size", "nfiles", "path", "etag"] { if let v = out[key] { pointer[key] = v } }
        return .object(pointer)
    }
}
