import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive advisory lock (`flock`) on a file, held until `release()` or the end of the process, so a killed
/// process never leaves it taken. Serialises read-decide-write sequences between processes on one machine.
public final class FileLock {
    private var fd: Int32

    /// Waits for the lock on `path` (created when missing, with its directory).
    public init(_ path: String) throws {
        try AtomicFile.makeDirectories(AtomicFile.parent(of: path))
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw StoreError("open the lock", path: path) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                close(fd)
                throw StoreError("lock", path: path)
            }
        }
    }

    /// Releases the lock (also done when the lock is freed).
    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
