#if canImport(Glibc)
    import Glibc
#endif
import GitMLStore

/// What `lstat` says of a file: enough to tell, like git's index, that its bytes have not changed.
struct FileStat: Equatable, Sendable {
    var device: Int64
    var inode: Int64
    var size: Int64
    var mtimeNanoseconds: Int64
    var ctimeNanoseconds: Int64

    init(_ info: stat) {
        device = Int64(bitPattern: UInt64(info.st_dev))
        inode = Int64(bitPattern: UInt64(info.st_ino))
        size = Int64(info.st_size)
        mtimeNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        ctimeNanoseconds = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    init(device: Int64, inode: Int64, size: Int64, mtimeNanoseconds: Int64, ctimeNanoseconds: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.ctimeNanoseconds = ctimeNanoseconds
    }

    /// A file changed within this window before it was hashed may change again without its timestamps
    /// moving (coarse file-system clocks), so its digest is not cached: git's "racily clean" rule.
    static let racyWindowNanoseconds: Int64 = 1_000_000_000

    func isSafeToCache(hashedAt now: Int64) -> Bool {
        max(mtimeNanoseconds, ctimeNanoseconds) < now - Self.racyWindowNanoseconds
    }
}

/// The stat cache in the local index: path and stat -> sha256, so unchanged files are not read again.
struct StatCache {
    let database: Database

    /// Cached entries for `path` itself and everything below it.
    func entries(under path: String) throws -> [String: (FileStat, String)] {
        var found: [String: (FileStat, String)] = [:]
        let sql = "SELECT path, device, inode, size, mtime_ns, ctime_ns, sha256 FROM stat_cache WHERE path = ?"
        let below = sql + " OR (path >= ? AND path < ?)"
        let values: [SQLValue] =
            path.isEmpty ? [.text(""), .text(""), .text("\u{10FFFF}")] : [.text(path), .text(path + "/"), .text(path + "0")]
        try database.prepare(below).query(values) { row in
            let stat = FileStat(
                device: row.integer(1), inode: row.integer(2), size: row.integer(3),
                mtimeNanoseconds: row.integer(4), ctimeNanoseconds: row.integer(5))
            found[row.text(0) ?? ""] = (stat, row.text(6) ?? "")
        }
        return found
    }

    /// Stores fresh digests and forgets paths under `prefixes` that no longer exist, in one transaction.
    func update(_ fresh: [(String, FileStat, String)], forget gone: [String]) throws {
        guard !fresh.isEmpty || !gone.isEmpty else { return }
        try database.transaction {
            let insert = try database.prepare(
                "INSERT OR REPLACE INTO stat_cache(path, device, inode, size, mtime_ns, ctime_ns, sha256) VALUES (?,?,?,?,?,?,?)"
            )
            for (path, stat, sha256) in fresh {
                try insert.run([
                    .text(path), .integer(stat.device), .integer(stat.inode), .integer(stat.size),
                    .integer(stat.mtimeNanoseconds), .integer(stat.ctimeNanoseconds), .text(sha256),
                ])
            }
            let delete = try database.prepare("DELETE FROM stat_cache WHERE path = ?")
            for path in gone { try delete.run([.text(path)]) }
        }
    }
}
