import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// Bytes addressed by their SHA-256 (`objects/<64 hex>`), the same digests OCI registries use for blobs.
/// Objects are read-only; a file's bytes are only ever added, never changed, under its digest.
public struct ObjectStore: Sendable {
    /// The `objects` directory.
    public let directory: String

    /// A store rooted at `directory` (created on first write).
    public init(directory: String) {
        self.directory = directory
    }

    /// Where the object with `sha256` lives, whether or not it exists.
    public func path(for sha256: String) -> String { "\(directory)/\(sha256)" }

    /// True when an object with that digest is present.
    public func contains(_ sha256: String) -> Bool { access(path(for: sha256), F_OK) == 0 }

    /// How an object came to be stored.
    public enum Placement: String, Sendable {
        case alreadyPresent = "already stored"
        case hardLinked = "hard-linked"
        case copied = "copied"
    }

    /// Stores the file at `source`, whose digest the caller has just computed: by copy (a reflink where the file
    /// system shares blocks), so rewriting the work tree's file never changes the stored bytes; by hard link only
    /// when `hardLink` (config.yaml's `artifact_store: hardlink`, for disks too small for copies), and then the
    /// shared inode is made read-only and `verify` re-hashes the stored copy too. Never follows a symbolic link.
    @discardableResult
    public func put(file source: String, sha256: String, hardLink: Bool = false) throws -> Placement {
        let target = path(for: sha256)
        if contains(sha256) { return .alreadyPresent }
        try AtomicFile.makeDirectories(directory)
        guard hardLink else {
            try copy(source, to: target)
            return .copied
        }
        if link(source, target) == 0 {
            chmod(target, 0o444)
            try AtomicFile.syncDirectory(directory)
            return .hardLinked
        }
        if errno == EEXIST { return .alreadyPresent }
        try copy(source, to: target)
        return .copied
    }

    /// Stores `bytes` (a log, a patch) under their digest and returns it.
    @discardableResult
    public func put(bytes: [UInt8]) throws -> String {
        let sha256 = try SHA256.hex(of: bytes)
        if !contains(sha256) { try AtomicFile.write(bytes, to: path(for: sha256), mode: 0o444) }
        return sha256
    }

    /// When `path` is a hard link to a stored object, replaces it with a private writable copy, so the
    /// program about to run can rewrite it without touching the store. Returns true when it did.
    @discardableResult
    public func detach(_ path: String) throws -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink > 1 else { return false }
        guard isStoredInode(device: info.st_dev, inode: info.st_ino) else { return false }
        let temporary = AtomicFile.temporaryName(for: path)
        try copy(path, to: temporary, mode: (info.st_mode & 0o777) | 0o200)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw StoreError("replace", path: path)
        }
        return true
    }

    /// Deletes the temporary files (`.<digest>.tmp-<pid>-<n>`) of writers that are gone: a pull killed midway
    /// leaves its partial blob under such a name, never under a digest.
    public func removeAbandonedTemporaries() {
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        var abandoned: [String] = []
        while let entry = readdir(dir) {
            let name = CText.string(fixed: entry.pointee.d_name)
            guard name.hasPrefix("."), let marker = name.range(of: ".tmp-") else { continue }
            let pid = name[marker.upperBound...].prefix { $0.isNumber }
            guard let process = Int32(pid), process > 0, kill(process, 0) != 0, errno == ESRCH else { continue }
            abandoned.append(name)
        }
        for name in abandoned { unlink("\(directory)/\(name)") }
    }

    private func isStoredInode(device: dev_t, inode: ino_t) -> Bool {
        guard let dir = opendir(directory) else { return false }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            var info = stat()
            let name = CText.string(fixed: entry.pointee.d_name)
            if SHA256.isDigest(name), lstat(path(for: name), &info) == 0, info.st_dev == device, info.st_ino == inode {
                return true
            }
        }
        return false
    }

    /// Copies to a temporary name, fsyncs, and renames into place.
    private func copy(_ source: String, to target: String, mode: mode_t = 0o444) throws {
        try FileCopy.file(from: source, to: target, mode: mode)
    }
}
