import GitMLStore

/// The schema of `.mlops/cache/index.sqlite`, a cache that can always be deleted and rebuilt.
enum LocalIndex {
    static let version: Int64 = 1

    static func migrate(_ database: Database) throws {
        var current: Int64 = 0
        try database.prepare("PRAGMA user_version").query { current = $0.integer(0) }
        guard current < version else { return }
        try database.transaction {
            try database.execute(
                """
                CREATE TABLE IF NOT EXISTS stat_cache(
                    path TEXT PRIMARY KEY, device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS runs(
                    id TEXT PRIMARY KEY, created TEXT NOT NULL, summary TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS python_facts(
                    fingerprint TEXT PRIMARY KEY, facts TEXT NOT NULL) WITHOUT ROWID;
                PRAGMA user_version = \(version);
                """)
        }
    }
}
