#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import GitMLBasics
import GitMLStore

/// Progress of long hashing work, for a terminal's progress bar.
public struct HashProgress: Sendable {
    public var bytesDone: Int64
    public var bytesTotal: Int64
    public var filesDone: Int
    public var filesTotal: Int
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
        var text = ""
        for entry in entries {
            let path = entry.path.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
            text += "\(entry.sha256) \(entry.size) \(entry.type) \(path)\n"
        }
        return Array(text.utf8)
    }

    /// Reads a manifest written by `bytes`.
    public static func parse(_ bytes: [UInt8], source: String) throws -> Manifest {
        var entries: [Entry] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, SHA256.isDigest(fields[0]), let size = Int64(fields[1]) else {
                throw InputError.malformed(source: source, detail: "bad manifest line: \(line.prefix(80))")
            }
            var path = ""
            var escaped = false
            for ch in fields[3] {
                if escaped { path.append(ch == "n" ? "\n" : ch); escaped = false } else if ch == "\\" { escaped = true } else { path.append(ch) }
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

    /// Digests of the given repository-relative paths, in the order given.
    public func hash(_ paths: [String]) throws -> [DataPointer] {
        let cache = StatCache(database: try workspace.database.get())
        var pointers: [DataPointer] = []
        var allFound: [[Found]] = []
        var cached: [String: (FileStat, String)] = [:]
        var gone: [String] = []
        for path in paths {
            let found = try walk(path)
            allFound.append(found)
            let entries = try cache.entries(under: path)
            let present = Set(found.map(\.relative))
            gone += entries.keys.filter { !present.contains($0) }
            cached.merge(entries) { a, _ in a }
        }
        var digests: [String: String] = [:]
        var toHash: [Found] = []
        for found in allFound.joined() {
            if found.isLink {
                digests[found.relative] = try SHA256.hex(of: FileSystem.linkTarget(workspace.absolute(found.relative)) ?? "")
            } else if useCache, let (stat, sha256) = cached[found.relative], stat == found.stat {
                digests[found.relative] = sha256
            } else {
                toHash.append(found)
            }
        }
        let hashedAt = Int64(Date().timeIntervalSince1970 * 1e9)
        let fresh = try hashInParallel(toHash)
        var cacheUpdates: [(String, FileStat, String)] = []
        for (found, result) in zip(toHash, fresh) {
            digests[found.relative] = result.sha256
            if result.size == found.stat.size && found.stat.isSafeToCache(hashedAt: hashedAt) {
                cacheUpdates.append((found.relative, found.stat, result.sha256))
            }
        }
        try cache.update(cacheUpdates, forget: gone)
        for (path, found) in zip(paths, allFound) {
            pointers.append(try pointer(for: path, found: found, digests: digests))
        }
        return pointers
    }

    private func pointer(for path: String, found: [Found], digests: [String: String]) throws -> DataPointer {
        let absolute = workspace.absolute(path)
        var pointer: DataPointer
        if FileSystem.isDirectory(absolute) && !(found.count == 1 && found[0].relative == path) {
            let prefix = path.isEmpty ? "" : path + "/"
            let entries = found.sorted { Array($0.relative.utf8).lexicographicallyPrecedes(Array($1.relative.utf8)) }
                .map {
                    Manifest.Entry(
                        path: String($0.relative.dropFirst(prefix.count)), sha256: digests[$0.relative] ?? "",
                        size: $0.stat.size, type: $0.isLink ? "l" : "f")
                }
            let manifest = Manifest(entries: entries)
            let bytes = manifest.bytes
            let sha256 = try SHA256.hex(of: bytes)
            if writeManifests { try AtomicFile.writeIfAbsent(bytes, to: "\(workspace.manifestsDirectory)/\(sha256)") }
            pointer = DataPointer(
                path: path, type: "directory", sha256: sha256, size: entries.reduce(0) { $0 + $1.size },
                files: entries.count, manifest: manifest)
            pointer.lfsPointers = found.filter { !$0.isLink && $0.stat.size < 1024 }.compactMap { file in
                guard var lfs = LFSPointer.read(workspace.absolute(file.relative)) else { return nil }
                lfs["path"] = .string(String(file.relative.dropFirst(prefix.count)))
                return .object(lfs)
            }
        } else {
            let file = found[0]
            pointer = DataPointer(
                path: path, type: file.isLink ? "symlink" : "file", sha256: digests[path] ?? "", size: file.stat.size,
                files: 1)
            if let lfs = LFSPointer.read(absolute) {
                pointer.lfs = .object(lfs)
            } else if try workspace.repository.attribute("filter", for: path) == "lfs" {
                pointer.lfs = .object(["oid": .string("sha256:" + pointer.sha256), "size": .int(file.stat.size), "pointer": .bool(false)])
            }
        }
        pointer.dvc = try DVCPointer.read(for: path, workspace: workspace)
        return pointer
    }

    /// Every regular file and link at or below `path`, never following links and skipping `.git`
    /// and the repository's own `.mlops`.
    private func walk(_ path: String) throws -> [Found] {
        var found: [Found] = []
        var pending = [path]
        while let relative = pending.popLast() {
            let absolute = workspace.absolute(relative)
            var info = stat()
            guard lstat(absolute, &info) == 0 else { throw StoreError("stat", path: relative) }
            switch info.st_mode & S_IFMT {
            case S_IFREG: found.append(Found(relative: relative, stat: FileStat(info), isLink: false))
            case S_IFLNK: found.append(Found(relative: relative, stat: FileStat(info), isLink: true))
            case S_IFDIR:
                for name in FileSystem.list(absolute) {
                    let child = relative.isEmpty ? name : relative + "/" + name
                    if name == ".git" || child == ".mlops" { continue }
                    pending.append(child)
                }
            case S_IFIFO: throw LineageError.unsupportedFile(path: relative, kind: "named pipe")
            case S_IFSOCK: throw LineageError.unsupportedFile(path: relative, kind: "socket")
            default: throw LineageError.unsupportedFile(path: relative, kind: "device file")
            }
        }
        return found
    }

    private final class Work: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var results: [(sha256: String, size: Int64)?]
        var failure: Error?
        var progress: HashProgress
        var lastReport = 0.0
        init(count: Int, bytes: Int64) {
            results = Array(repeating: nil, count: count)
            progress = HashProgress(bytesDone: 0, bytesTotal: bytes, filesDone: 0, filesTotal: count)
        }
    }

    /// Hashes files on every core, largest first so one big file does not finish last alone.
    private func hashInParallel(_ files: [Found]) throws -> [(sha256: String, size: Int64)] {
        guard !files.isEmpty else { return [] }
        let order = files.indices.sorted { files[$0].stat.size > files[$1].stat.size }
        let paths = files.map { workspace.absolute($0.relative) }
        let work = Work(count: files.count, bytes: files.reduce(0) { $0 + $1.stat.size })
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, files.count)
        let progress = self.progress
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let hasher: FileHasher
            do { hasher = try FileHasher() } catch {
                work.lock.withLock { work.failure = work.failure ?? error }
                return
            }
            while true {
                let slot: Int? = work.lock.withLock {
                    guard work.failure == nil, work.next < order.count else { return nil }
                    defer { work.next += 1 }
                    return order[work.next]
                }
                guard let index = slot else { return }
                do {
                    let result = try hasher.hash(path: paths[index]) { bytes in
                        guard let progress else { return }
                        let snapshot: HashProgress? = work.lock.withLock {
                            work.progress.bytesDone += Int64(bytes)
                            let now = Date().timeIntervalSince1970
                            guard now - work.lastReport > 0.1 else { return nil }
                            work.lastReport = now
                            return work.progress
                        }
                        if let snapshot { progress(snapshot) }
                    }
                    work.lock.withLock {
                        work.results[index] = result
                        work.progress.filesDone += 1
                    }
                } catch {
                    work.lock.withLock { work.failure = work.failure ?? error }
                }
            }
        }
        if let failure = work.failure { throw failure }
        if let progress { progress(work.progress) }
        return work.results.map { $0 ?? ("", 0) }
    }
}

/// git-lfs pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
enum LFSPointer {
    /// The oid and size named by a pointer file, or nil when the file is not one.
    static func read(_ path: String) -> [String: JSONValue]? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size < 1024,
            let bytes = try? AtomicFile.read(path, limit: 1024)
        else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("version https://git-lfs.github.com/spec/v1\n") else { return nil }
        var oid: String?
        var size: Int64?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("oid sha256:") { oid = String(line.dropFirst("oid ".count)) }
            if line.hasPrefix("size "), let n = Int64(line.dropFirst("size ".count)) { size = n }
        }
        guard let oid, let size else { return nil }
        return ["oid": .string(oid), "size": .int(size), "pointer": .bool(true)]
    }
}

/// DVC's `.dvc` files, read as DVC writes them (`outs: [{md5|hash, size, nfiles, path}]`).
enum DVCPointer {
    /// The pointer for `path`: `<path>.dvc` beside it, or `path` itself when it is a `.dvc` file.
    static func read(for path: String, workspace: Workspace) throws -> JSONValue? {
        let file = path.hasSuffix(".dvc") ? path : path + ".dvc"
        let absolute = workspace.absolute(file)
        guard FileSystem.exists(absolute) else { return nil }
        let value = try YAMLReader.parse(try AtomicFile.read(absolute, limit: 1 << 20), source: file)
        guard let out = value["outs"]?.array?.first?.object else {
            throw InputError.malformed(source: file, detail: "no outs entry, as DVC writes")
        }
        var pointer: [String: JSONValue] = ["file": .string(file)]
        for key in ["md5", "hash", "size", "nfiles", "path", "etag"] { if let v = out[key] { pointer[key] = v } }
        return .object(pointer)
    }
}
