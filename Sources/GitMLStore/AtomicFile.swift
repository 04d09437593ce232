import GitMLBasics

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An I/O failure with the system's own words.
public struct StoreError: GitMLError {
    public let operation: String
    public let path: String
    public let errno: Int32

    public init(_ operation: String, path: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var message: String { "cannot \(operation) \(path): \(String(cString: strerror(errno)))" }
    public var hint: String {
        switch errno {
        case ENOSPC: return "free some disk space and run the command again"
        case EACCES, EPERM, EROFS: return "check the permissions of the path"
        default: return "nothing was changed; run the command again once the cause is fixed"
        }
    }
    public var code: String { "io-error" }
}

/// Files written so that a reader, or a crash at any instant, sees either the old state or the whole new file:
/// a temporary file in the same directory, fsync, rename, then fsync of the directory.
public enum AtomicFile {
    /// Writes `bytes` to `path`, replacing any file there. Creates missing parent directories.
    public static func write(_ bytes: some Collection<UInt8>, to path: String, mode: mode_t = 0o644) throws {
        _ = try place(bytes, at: path, mode: mode) { temporary in
            guard rename(temporary, path) == 0 else { throw StoreError("rename into place", path: path) }
            return true
        }
    }

    /// Writes `bytes` to `path` only if no file has that name, atomically even against other processes
    /// (a hard link, which fails when the name exists). Returns false, writing nothing, when it exists.
    public static func create(_ bytes: some Collection<UInt8>, at path: String, mode: mode_t = 0o444) throws -> Bool {
        try place(bytes, at: path, mode: mode) { temporary in
            if link(temporary, path) == 0 { return true }
            if errno == EEXIST { return false }
            throw StoreError("create", path: path)
        }
    }

    /// `write(_:to:)` through an open directory: the temporary file and the rename both happen in `directory`, so no
    /// link can be swapped into the path between checking and writing. `path` names the file in errors.
    public static func write(
        _ bytes: some Collection<UInt8>, in directory: Int32, name: String, mode: mode_t = 0o644, path: String
    ) throws {
        _ = try place(bytes, in: directory, name: name, mode: mode, path: path) { temporary in
            guard renameat(directory, temporary, directory, name) == 0 else {
                throw StoreError("rename into place", path: path)
            }
            return true
        }
    }

    /// `create(_:at:)` through an open directory.
    public static func create(
        _ bytes: some Collection<UInt8>, in directory: Int32, name: String, mode: mode_t = 0o444, path: String
    ) throws -> Bool {
        try place(bytes, in: directory, name: name, mode: mode, path: path) { temporary in
            if linkat(directory, temporary, directory, name, 0) == 0 { return true }
            if errno == EEXIST { return false }
            throw StoreError("create", path: path)
        }
    }

    /// Writes a synced temporary file beside `path`, lets `install` put it in place, then syncs the directory.
    private static func place(
        _ bytes: some Collection<UInt8>, at path: String, mode: mode_t, install: (String) throws -> Bool
    ) throws -> Bool {
        let directory = parent(of: path)
        try makeDirectories(directory)
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("open directory", path: directory) }
        defer { close(fd) }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return try place(bytes, in: fd, name: name, mode: mode, path: path) { temporary in
            try install(directory + "/" + temporary)
        }
    }

    /// Writes a synced temporary file in `directory`, lets `install` (given its name) put it in place, then syncs
    /// the directory.
    private static func place(
        _ bytes: some Collection<UInt8>, in directory: Int32, name: String, mode: mode_t, path: String,
        install: (String) throws -> Bool
    ) throws -> Bool {
        let temporary = ".\(name).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw StoreError("create a temporary file for", path: path) }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlinkat(directory, temporary, 0)
        }
        try writeAll(fd, Array(bytes), path: path)
        guard fsync(fd) == 0 else { throw StoreError("fsync", path: path) }
        closed = true
        guard close(fd) == 0 else { throw StoreError("close", path: path) }
        let installed = try install(temporary)
        if installed { guard fsync(directory) == 0 else { throw StoreError("fsync directory of", path: path) } }
        return installed
    }

    /// Writes a content-addressed file unless a file already has that name (its bytes are then the same).
    /// Returns true when this call created it.
    @discardableResult
    public static func writeIfAbsent(_ bytes: some Collection<UInt8>, to path: String) throws -> Bool {
        if access(path, F_OK) == 0 { return false }
        try write(bytes, to: path, mode: 0o444)
        return true
    }

    /// Takes `path` as a lock file (created exclusively); false when another process holds it. A lock older than
    /// an hour is taken as left behind by a killed process and replaced.
    public static func exclusiveLock(_ path: String) -> Bool {
        for _ in 0..<2 {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 {
                close(fd)
                return true
            }
            var info = stat()
            guard errno == EEXIST, lstat(path, &info) == 0, time(nil) - info.st_mtim.tv_sec > 3600 else { return false }
            unlink(path)
        }
        return false
    }

    /// A unique name beside `path`, hidden, so a crash leaves only an obvious temporary file.
    public static func temporaryName(for path: String) -> String {
        let directory = parent(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? "file"
        return "\(directory)/.\(name).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    }

    /// Writes every byte, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base.advanced(by: offset), raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw StoreError("write", path: path)
            }
            offset += written
        }
    }

    /// Makes the rename of an entry in `directory` durable.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("open directory", path: directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError("fsync directory", path: directory) }
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 { return }
        let up = parent(of: path)
        if up != path && !up.isEmpty { try makeDirectories(up) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw StoreError("create directory", path: path) }
    }

    /// The directory part of a path ("." for a bare name).
    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Reads a whole file to its end (files in /proc report size 0), refusing more than `limit` bytes.
    public static func read(_ path: String, limit: Int = 256 << 20) throws -> [UInt8] {
        // Non-blocking open: a FIFO without a writer is refused below (not a regular file) instead of waiting.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw StoreError("open", path: path) }
        defer { close(fd) }
        return try read(descriptor: fd, path: path, limit: limit)
    }

    /// Reads an open file to its end, refusing anything but a regular file and more than `limit` bytes.
    public static func read(descriptor fd: Int32, path: String, limit: Int = 256 << 20) throws -> [UInt8] {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StoreError("stat", path: path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw InputError.unreadable(source: path, detail: "not a regular file")
        }
        guard Int(info.st_size) <= limit else { throw InputError.tooLarge(source: path, limit: limit) }
        var bytes = [UInt8](repeating: 0, count: max(Int(info.st_size), 4096) + 1)
        var offset = 0
        while true {
            if offset == bytes.count {
                guard offset <= limit else { throw InputError.tooLarge(source: path, limit: limit) }
                bytes += [UInt8](repeating: 0, count: bytes.count)
            }
            let n = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.read(fd, base.advanced(by: offset), raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("read", path: path)
            }
            if n == 0 { break }
            offset += n
        }
        guard offset <= limit else { throw InputError.tooLarge(source: path, limit: limit) }
        return Array(bytes[..<offset])
    }
}
