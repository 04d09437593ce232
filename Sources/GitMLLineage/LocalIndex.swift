import GitMLStore

/// The schema of `.mlops/cache/index.sqlite`, a cache that can always be deleted and rebuilt.
enum LocalIndex {
    /// 2: the stat cache remembers the git-lfs pointer a small file is (`lfs_oid`, `lfs_size`), and
    /// `tree_cache` remembers directory digests by the fingerprint of their files' stats.
    /// 3: queries read `runs` through expression indexes on its JSON summaries; `index_state` remembers when
    /// `.mlops/runs` was last seen.
    static let version: Int64 = 3

    static func migrate(_ database: Database) throws {
        guard try userVersion(database) < version else { return }
        try database.transaction {
            // Another process may have migrated while this one waited for the write lock.
            let current = try userVersion(database)
            guard current < version else { return }
            // Version 1's stat cache lacks the LFS columns; a cache is rebuilt rather than converted.
            if current < 2 { try database.execute("DROP TABLE IF EXISTS stat_cache") }
            // Version 2's run index has no field table: rebuilt from the records.
            if current < 3 { try database.execute("DROP TABLE IF EXISTS runs") }
            try database.execute(
                """
                CREATE TABLE IF NOT EXISTS stat_cache(
                    path TEXT PRIMARY KEY, device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
                    lfs_oid TEXT, lfs_size INTEGER) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS tree_cache(
                    path TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
                    files INTEGER NOT NULL, lfs_pointers TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS runs(
                    id TEXT PRIMARY KEY, created TEXT NOT NULL, summary TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS index_state(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS python_facts(
                    fingerprint TEXT PRIMARY KEY, facts TEXT NOT NULL) WITHOUT ROWID;
                PRAGMA user_version = \(version);
                """)
        }
    }

    private static func userVersion(_ database: Database) throws -> Int64 {
        var current: Int64 = 0
        try database.prepare("PRAGMA user_version").query { current = $0.integer(0) }
        return current
    }
}
