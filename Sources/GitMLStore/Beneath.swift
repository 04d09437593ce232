internal import CSystemShims
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// The one place where a path that comes from the repository (a record, a template, anything under `.mlops`) is
/// turned into an open file: resolved beneath the work tree, component by component, by the kernel
/// (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`; on kernels before 5.6, a walk of
/// `openat(O_NOFOLLOW)` that refuses every link). Under `.mlops` no symbolic link is followed at all
/// (`RESOLVE_NO_SYMLINKS`): git-ml writes plain directories there, so a link is always planted. Elsewhere a link
/// may be followed only while it stays inside the work tree. Writes are atomic and happen through the parent
/// directory's descriptor, so nothing that resolution checked can be swapped for a link before the write.
public struct Beneath: Sendable {
    /// The work tree's root.
    public let root: String

    public init(root: String) { self.root = root }

    /// True for `.mlops` and everything below it, where no link is followed.
    static func isStrict(_ relative: String) -> Bool { relative == ".mlops" || relative.hasPrefix(".mlops/") }

    // MARK: - Reading

    /// The bytes of the regular file at `relative` (at most `limit`).
    public func read(_ relative: String, limit: Int = 256 << 20) throws -> [UInt8] {
        let fd = try open(relative, flags: O_RDONLY)
        defer { close(fd) }
        return try AtomicFile.read(descriptor: fd, path: relative, limit: limit)
    }

    /// True when something is at `relative` and it is reachable without leaving the tree. A link planted where a
    /// git-ml directory belongs is an error, not a "no".
    public func exists(_ relative: String) throws -> Bool {
        let fd = openRaw(relative, flags: GITML_O_PATH | (Self.isStrict(relative) ? O_NOFOLLOW : 0))
        if fd >= 0 {
            close(fd)
            return true
        }
        if errno == ENOENT || errno == ENOTDIR { return false }
        throw refusal(relative, errno: errno)
    }

    /// True when `relative` is a directory reached without leaving the tree.
    public func isDirectory(_ relative: String) throws -> Bool {
        let fd = openRaw(relative, flags: GITML_O_PATH | O_DIRECTORY | (Self.isStrict(relative) ? O_NOFOLLOW : 0))
        if fd >= 0 {
            close(fd)
            return true
        }
        if errno == ENOENT || errno == ENOTDIR { return false }
        throw refusal(relative, errno: errno)
    }

    /// The names inside the directory `relative` (empty when it does not exist), without `.` and `..`.
    public func list(_ relative: String) throws -> [String] {
        let fd = openRaw(relative, flags: O_RDONLY | O_DIRECTORY | (Self.isStrict(relative) ? O_NOFOLLOW : 0))
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw refusal(relative, errno: errno)
        }
        guard let directory = fdopendir(fd) else {
            close(fd)
            throw StoreError("read directory", path: relative)
        }
        defer { closedir(directory) }
        return CText.entryNames(directory)
    }

    // MARK: - Writing

    /// Writes `bytes` to `relative` atomically (a temporary file beside it, then a rename), replacing a file there;
    /// missing directories are made, each beneath the last.
    public func write(_ bytes: some Collection<UInt8>, to relative: String, mode: Glibc.mode_t = 0o644) throws {
        let (directory, name) = try parentDirectory(of: relative, create: true)
        defer { close(directory) }
        try AtomicFile.write(bytes, in: directory, name: name, mode: mode, path: relative)
    }

    /// Writes `bytes` to `relative` only if nothing has that name (false, writing nothing, when something does).
    public func create(_ bytes: some Collection<UInt8>, at relative: String, mode: Glibc.mode_t = 0o444) throws -> Bool
    {
        let (directory, name) = try parentDirectory(of: relative, create: true)
        defer { close(directory) }
        return try AtomicFile.create(bytes, in: directory, name: name, mode: mode, path: relative)
    }

    /// Writes a content-addressed file (named by its digest) unless it is already there. True when this call made it.
    @discardableResult
    public func writeIfAbsent(_ bytes: some Collection<UInt8>, to relative: String) throws -> Bool {
        try create(bytes, at: relative, mode: 0o444)
    }

    /// Makes the directory `relative` and any missing parents, each beneath the last.
    public func makeDirectories(_ relative: String) throws {
        close(try directory(relative, create: true))
    }

    /// The absolute path of `relative` once its every directory has been checked to resolve beneath the root (and
    /// the final component too, unless it is missing or a link that git-ml will record as a link rather than
    /// follow). For the few consumers that need a path (SQLite, libgit2, the data walk, which opens it with
    /// `O_NOFOLLOW`).
    public func checked(_ relative: String) throws -> String {
        let directory: Int32
        let name: String
        do {
            (directory, name) = try parentDirectory(of: relative, create: false)
        } catch PathError.notFound {
            // The parent does not exist yet: what exists of the path must still resolve beneath the root.
            let parent = relative.split(separator: "/").dropLast().joined(separator: "/")
            _ = try checked(parent)
            return root + "/" + relative
        }
        defer { close(directory) }
        if !name.isEmpty {
            var info = stat()
            if fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFLNK,
                Self.isStrict(relative)
            {
                throw refusal(relative, errno: ELOOP)
            }
        }
        return relative.isEmpty ? root : root + "/" + relative
    }

    /// `checked` for a directory that git-ml writes into (made when missing).
    public func checkedDirectory(_ relative: String) throws -> String {
        try makeDirectories(relative)
        return relative.isEmpty ? root : root + "/" + relative
    }

    // MARK: - Resolution

    /// Opens `relative` beneath the root, or throws the refusal naming the link that would lead out.
    public func open(_ relative: String, flags: Int32, mode: Glibc.mode_t = 0) throws -> Int32 {
        let fd = openRaw(relative, flags: flags | (Self.isStrict(relative) ? O_NOFOLLOW : 0), mode: mode)
        guard fd >= 0 else {
            if errno == ENOENT { throw PathError.notFound(path: relative) }
            throw refusal(relative, errno: errno)
        }
        return fd
    }

    /// The parent directory of `relative` opened beneath the root (made when `create`), and the last name.
    private func parentDirectory(of relative: String, create: Bool) throws -> (Int32, String) {
        let parts = relative.split(separator: "/").map(String.init)
        guard let name = parts.last else { return (try directory("", create: create), "") }
        guard name != "..", name != "." else { throw PathError.escapesRepository(path: relative) }
        let parent = parts.dropLast().joined(separator: "/")
        return (try directory(parent, create: create), name)
    }

    /// The directory `relative` opened beneath the root, made (one component at a time) when `create`.
    private func directory(_ relative: String, create: Bool) throws -> Int32 {
        let strict = Self.isStrict(relative)
        let flags = O_RDONLY | O_DIRECTORY | (strict ? O_NOFOLLOW : 0)
        var fd = openRaw(relative, flags: flags)
        if fd >= 0 { return fd }
        guard create, errno == ENOENT else {
            if errno == ENOENT { throw PathError.notFound(path: relative) }
            throw refusal(relative, errno: errno)
        }
        var made = ""
        for part in relative.split(separator: "/") {
            made = made.isEmpty ? String(part) : made + "/" + part
            let parent = made.split(separator: "/").dropLast().joined(separator: "/")
            let parentFD = openRaw(parent, flags: O_RDONLY | O_DIRECTORY | (Self.isStrict(parent) ? O_NOFOLLOW : 0))
            guard parentFD >= 0 else { throw refusal(parent, errno: errno) }
            let status = mkdirat(parentFD, String(part), 0o755)
            let error = errno
            close(parentFD)
            if status != 0 && error != EEXIST { throw StoreError("create directory", path: made, errno: error) }
        }
        fd = openRaw(relative, flags: flags)
        guard fd >= 0 else { throw refusal(relative, errno: errno) }
        return fd
    }

    /// openat2 beneath the root; -1 with errno on failure.
    private func openRaw(_ relative: String, flags: Int32, mode: Glibc.mode_t = 0) -> Int32 {
        let rootFD = Glibc.open(root, GITML_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { return -1 }
        defer {
            let saved = errno
            close(rootFD)
            errno = saved
        }
        let path = relative.isEmpty ? "." : relative
        var resolve = GITML_RESOLVE_BENEATH | GITML_RESOLVE_NO_MAGICLINKS
        if Self.isStrict(relative) { resolve |= GITML_RESOLVE_NO_SYMLINKS }
        let fd = gitml_openat2(rootFD, path, flags | O_CLOEXEC, UInt32(mode), resolve)
        if fd >= 0 || errno != ENOSYS { return fd }
        return walk(rootFD, path, flags: flags | O_CLOEXEC, mode: mode)
    }

    /// Kernels without openat2: one `openat(O_NOFOLLOW)` per component, refusing every link (stricter than
    /// RESOLVE_BENEATH, never looser).
    private func walk(_ rootFD: Int32, _ path: String, flags: Int32, mode: Glibc.mode_t) -> Int32 {
        let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !parts.contains("..") else {
            errno = EXDEV
            return -1
        }
        var current = dup(rootFD)
        for part in parts.dropLast() {
            let next = openat(current, part, GITML_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let saved = errno
            close(current)
            guard next >= 0 else {
                errno = saved
                return -1
            }
            current = next
        }
        defer { close(current) }
        return openat(current, parts.last ?? ".", flags | O_NOFOLLOW, mode)
    }

    /// The error for a resolution the kernel refused: which component is a link, and where it points.
    private func refusal(_ relative: String, errno code: Int32) -> GitMLError {
        guard code == EXDEV || code == ELOOP || code == ENOTDIR else {
            return StoreError("open", path: relative, errno: code)
        }
        var prefix = ""
        for part in relative.split(separator: "/") {
            prefix = prefix.isEmpty ? String(part) : prefix + "/" + part
            var info = stat()
            if lstat(root + "/" + prefix, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
                let target = FileLink.target(root + "/" + prefix) ?? "?"
                return Self.isStrict(prefix)
                    ? PathError.symlinkInMLOps(path: prefix, target: target)
                    : PathError.symlinkLeavesRepository(path: prefix, target: target)
            }
        }
        return PathError.escapesRepository(path: relative)
    }
}

/// Reading a symbolic link's target.
enum FileLink {
    static func target(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
