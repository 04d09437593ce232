import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// A private temporary directory, removed with everything in it when released.
public final class ScratchDirectory: @unchecked Sendable {
    /// The directory.
    public let path: String

    /// Makes a new directory under TMPDIR (else /tmp), readable only by this user.
    public init() throws {
        let base = ProcessEnvironment.temporaryDirectory
        var template = Array("\(base)/git-ml-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw StoreError("create a temporary directory in", path: base) }
        path = String(cString: made)
    }

    deinit { Self.remove(path) }

    /// Removes a directory tree without following links.
    public static func remove(_ path: String) {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = CText.string(fixed: entry.pointee.d_name)
                guard name != "." && name != ".." else { continue }
                let child = path + "/" + name
                var info = stat()
                if lstat(child, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
                    remove(child)
                } else {
                    unlink(child)
                }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

/// The process's own environment, for the few places that need it without Foundation.
enum ProcessEnvironment {
    static var temporaryDirectory: String {
        if let value = getenv("TMPDIR"), let text = String(validatingCString: value), !text.isEmpty { return text }
        return "/tmp"
    }
}
