internal import CSystemShims
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// Copies of files and trees that never follow a symbolic link: a link is copied as a link.
public enum FileCopy {
    /// Copies a regular file through a temporary name and renames it into place; `durable` fsyncs the file and its
    /// directory (the object store), a scratch copy skips that.
    public static func file(from source: String, to target: String, mode: mode_t = 0o644, durable: Bool = true) throws {
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw StoreError("open", path: source) }
        defer { close(input) }
        let temporary = AtomicFile.temporaryName(for: target)
        let output = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard output >= 0 else { throw StoreError("create", path: temporary) }
        var finished = false
        defer {
            if !finished {
                close(output)
                unlink(temporary)
            }
        }
        try copyContents(input, output, source: source, temporary: temporary)
        if durable { guard fsync(output) == 0 else { throw StoreError("fsync", path: temporary) } }
        finished = true
        close(output)
        guard rename(temporary, target) == 0 else {
            unlink(temporary)
            throw StoreError("rename into place", path: target)
        }
        if durable { try AtomicFile.syncDirectory(AtomicFile.parent(of: target)) }
    }

    /// A reflink where the file system shares blocks (btrfs, XFS: instant, no space), else a kernel-side copy
    /// (`copy_file_range`), else reading and writing.
    private static func copyContents(_ input: Int32, _ output: Int32, source: String, temporary: String) throws {
        if gitml_clone_file(output, input) == 0 { return }
        while true {
            let n = gitml_copy_file_range(input, output, 1 << 30)
            if n == 0 { return }
            if n > 0 { continue }
            if errno == EINTR { continue }
            // Not supported between these file systems (EXDEV, ENOSYS, EINVAL): copy by reading, from where it stopped.
            return try copyByReading(input, output, source: source, temporary: temporary)
        }
    }

    private static func copyByReading(_ input: Int32, _ output: Int32, source: String, temporary: String) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = read(input, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("read", path: source)
            }
            if n == 0 { return }
            try AtomicFile.writeAll(output, Array(buffer[0..<n]), path: temporary)
        }
    }

    /// Copies a file, a link or a whole directory (scratch copies: not fsynced), keeping modes and link targets.
    public static func tree(from source: String, to target: String) throws {
        var info = stat()
        guard lstat(source, &info) == 0 else { throw StoreError("stat", path: source) }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(source, &buffer, buffer.count - 1)
            guard n >= 0 else { throw StoreError("read link", path: source) }
            try AtomicFile.makeDirectories(AtomicFile.parent(of: target))
            guard symlink(String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self), target) == 0
            else {
                throw StoreError("create link", path: target)
            }
        case S_IFDIR:
            try AtomicFile.makeDirectories(target)
            guard let directory = opendir(source) else { throw StoreError("read directory", path: source) }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = CText.string(fixed: entry.pointee.d_name)
                if name == "." || name == ".." { continue }
                try tree(from: source + "/" + name, to: target + "/" + name)
            }
        case S_IFREG:
            try AtomicFile.makeDirectories(AtomicFile.parent(of: target))
            try file(from: source, to: target, mode: info.st_mode & 0o777, durable: false)
        default:
            throw StoreError("copy (not a file, link or directory)", path: source, errno: EINVAL)
        }
    }
}
