import GitMLBasics
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

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

/// The stat cache in the local index: path and stat -> sha256 (and the git-lfs pointer a small file is), so
/// unchanged files are not read again.
struct StatCache {
    let database: Database

    /// One cached row, read in place.
    struct Entry {
        fileprivate let row: Row
        var stat: FileStat {
            FileStat(
                device: row.integer(1), inode: row.integer(2), size: row.integer(3),
                mtimeNanoseconds: row.integer(4), ctimeNanoseconds: row.integer(5))
        }
        func sha256() -> String { row.text(6) ?? "" }
        func lfs() -> LFSPointer.Fields? {
            row.isNull(7) ? nil : LFSPointer.Fields(oid: row.text(7) ?? "", size: row.integer(8))
        }
    }

    /// A fresh digest to remember.
    struct Update {
        var path: String
        var stat: FileStat
        var sha256: String
        var lfs: LFSPointer.Fields?
    }

    /// A directory's digest, remembered with the fingerprint of the stats it was computed from.
    struct Directory {
        var path: String
        var fingerprint: String
        var sha256: String
        var size: Int64
        var files: Int
        var lfsPointers: [JSONValue]
    }

    /// The directory digest remembered for `path`, when it was computed from exactly these stats.
    func directory(_ path: String, fingerprint: String) throws -> Directory? {
        var found: Directory?
        try database.prepare(
            "SELECT sha256, size, files, lfs_pointers FROM tree_cache WHERE path = ? AND fingerprint = ?"
        )
        .query([.text(path), .text(fingerprint)]) { row in
            let pointers = try? JSONParser.parse(row.text(3) ?? "[]", source: "the tree cache")
            found = Directory(
                path: path, fingerprint: fingerprint, sha256: row.text(0) ?? "", size: row.integer(1),
                files: Int(row.integer(2)), lfsPointers: pointers?.array ?? [])
        }
        return found
    }

    /// Calls `body` with each cached path (its bytes) at or below `path`, in byte order of the path.
    func scan(under path: String, _ body: (UnsafeRawBufferPointer, Entry) throws -> Void) throws {
        let sql = """
            SELECT path, device, inode, size, mtime_ns, ctime_ns, sha256, lfs_oid, lfs_size FROM stat_cache
            WHERE path = ? OR (path >= ? AND path < ?) ORDER BY path
            """
        // "0" is the byte after "/": the range holds exactly the paths below `path/`.
        let values: [SQLValue] =
            path.isEmpty
            ? [.text(""), .text(""), .text("\u{10FFFF}")] : [.text(path), .text(path + "/"), .text(path + "0")]
        try database.prepare(sql).query(values) { row in
            try row.withText(0) { try body($0, Entry(row: row)) }
        }
    }

    /// Stores fresh file and directory digests and forgets paths that no longer exist, in one transaction.
    func update(_ fresh: [Update], directories: [Directory], forget gone: [String]) throws {
        guard !fresh.isEmpty || !directories.isEmpty || !gone.isEmpty else { return }
        try database.transaction {
            let insert = try database.prepare(
                """
                INSERT OR REPLACE INTO stat_cache(path, device, inode, size, mtime_ns, ctime_ns, sha256, lfs_oid, lfs_size)
                VALUES (?,?,?,?,?,?,?,?,?)
                """)
            for update in fresh {
                try insert.run([
                    .text(update.path), .integer(update.stat.device), .integer(update.stat.inode),
                    .integer(update.stat.size), .integer(update.stat.mtimeNanoseconds),
                    .integer(update.stat.ctimeNanoseconds), .text(update.sha256),
                    update.lfs.map { .text($0.oid) } ?? .null, update.lfs.map { .integer($0.size) } ?? .null,
                ])
            }
            let remember = try database.prepare(
                "INSERT OR REPLACE INTO tree_cache(path, fingerprint, sha256, size, files, lfs_pointers) VALUES (?,?,?,?,?,?)"
            )
            for directory in directories {
                try remember.run([
                    .text(directory.path), .text(directory.fingerprint), .text(directory.sha256),
                    .integer(directory.size), .integer(Int64(directory.files)),
                    .text(JSONWriter.compact(.array(directory.lfsPointers))),
                ])
            }
            let delete = try database.prepare("DELETE FROM stat_cache WHERE path = ?")
            for path in gone { try delete.run([.text(path)]) }
        }
    }
}
