import GitMLBasics
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// One line of `git ml log`: what queries look at, without the environment's bulk.
public struct RunSummary: Sendable {
    public let id: String
    public let created: String
    /// `{id, created, kind, status, git{commit,branch,dirty}, metrics, params, seed, command, owner}`.
    public let json: JSONValue
}

/// The run index in `.mlops/cache/index.sqlite`: a summary of every record, as JSON SQLite can read. A query's
/// conditions become `json_extract` comparisons, each backed by an index on that expression (made the first time a
/// field is queried), so a query reads the runs it matches rather than every run. Kept in step with `.mlops/runs`
/// on each read (new files added, vanished ones dropped), so a fresh clone rebuilds it; the directory's change
/// time tells when there is nothing to bring in.
public struct RunIndex {
    let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// The record's bulk no summary shows, stepped over when indexing.
    static let notSummarised: Set<String> = ["environment", "data", "artifacts", "profiles", "metric_steps"]

    static func summary(id: String, record: JSONValue) -> JSONValue {
        var object: [String: JSONValue] = ["id": .string(id)]
        for key in ["created", "kind", "status", "metrics", "params", "owner"] { object[key] = record[key] ?? .null }
        object["seed"] = record["seed"]?["value"] ?? .null
        object["git"] = .object([
            "commit": record["git"]?["commit"] ?? .null, "branch": record["git"]?["branch"] ?? .null,
            "dirty": record["git"]?["dirty"] ?? .null,
        ])
        object["command"] = record["command"]?["argv"] ?? .null
        object["exit_status"] = record["command"]?["exit_status"] ?? .null
        return .object(object)
    }

    func add(id: String, record: JSONValue) throws {
        let database = try workspace.database.get()
        let summary = Self.summary(id: id, record: record)
        try database.prepare("INSERT OR REPLACE INTO runs(id, created, summary) VALUES (?, ?, ?)").run([
            .text(id), .text(summary["created"]?.string ?? ""), .text(JSONWriter.compact(summary)),
        ])
    }

    /// The SQLite JSON path of a query field, as `RunQuery.value(of:in:)` reads it (`metrics.eval.f1` is the
    /// metric named `eval.f1`); nil when a name cannot be written as one (it holds a quote).
    static func jsonPath(_ field: String) -> String? {
        var keys: [String]
        if let section = ["metrics.", "params."].first(where: { field.hasPrefix($0) }) {
            keys = [String(section.dropLast()), String(field.dropFirst(section.count))]
        } else {
            keys = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        }
        guard keys.allSatisfy({ !$0.contains("\"") && !$0.contains("'") && !$0.isEmpty }) else { return nil }
        return "$" + keys.map { ".\"\($0)\"" }.joined()
    }

    /// The runs that satisfy `query`: SQLite narrows them by each condition on its field's expression index (a
    /// superset: numbers compared as numbers, others by the field being there), and only those summaries are read
    /// and checked exactly.
    public func runs(matching query: RunQuery) throws -> [RunSummary] {
        let database = try sync()
        var clauses: [String] = []
        var values: [SQLValue] = []
        for condition in query.conditions {
            guard let path = Self.jsonPath(condition.field) else { continue }
            let expression = "json_extract(summary, '\(path)')"
            ensureIndex(database, expression)
            if [">", ">=", "<", "<="].contains(condition.op), let number = condition.value.number, number.isFinite {
                clauses.append(
                    "\(expression) \(condition.op) ? AND json_type(summary, '\(path)') IN ('integer', 'real')")
                values.append(.real(number))
            } else {
                clauses.append("\(expression) IS NOT NULL")
            }
        }
        var sql = "SELECT id, created, summary FROM runs"
        if !clauses.isEmpty { sql += " WHERE " + clauses.joined(separator: " AND ") }
        var matched: [RunSummary] = []
        try database.prepare(sql).query(values) { row in
            let id = row.text(0) ?? ""
            guard let json = try? JSONParser.parse(row.text(2) ?? "", source: "index"), query.matches(json) else {
                return
            }
            matched.append(RunSummary(id: id, created: row.text(1) ?? "", json: json))
        }
        return matched
    }

    /// An index on `expression`, made once per field queried (a cache like the rest: best effort).
    private func ensureIndex(_ database: Database, _ expression: String) {
        let name = "runs_by_" + ((try? SHA256.hex(of: Array(expression.utf8)).prefix(16)).map(String.init) ?? "x")
        try? database.execute("CREATE INDEX IF NOT EXISTS \(name) ON runs(\(expression))")
    }

    /// Every run's summary.
    public func summaries() throws -> [RunSummary] { try runs(matching: try RunQuery(where: nil)) }

    /// The newest run's id, from the index.
    func newest() throws -> String? {
        let database = try sync()
        var id: String?
        try database.prepare("SELECT id FROM runs ORDER BY created DESC, id DESC LIMIT 1").query { id = $0.text(0) }
        return id
    }

    /// Brings the index in step with `.mlops/runs` and returns the database. When the directory has not changed
    /// since the last time (its change time, trusted only once it is a second older than that check, git's rule
    /// for racily clean files), nothing is listed. Missing records are read, checked and summarised on every core.
    private func sync() throws -> Database {
        let database = try workspace.database.get()
        let stamp = directoryStamp()
        var known: String?
        try database.prepare("SELECT value FROM index_state WHERE key = 'runs_directory'").query { known = $0.text(0) }
        if let stamp, known == stamp { return database }

        var indexed = Set<String>()
        try database.prepare("SELECT id FROM runs").query { indexed.insert($0.text(0) ?? "") }
        let onDisk = RunStore(workspace: workspace).ids()
        let present = Set(onDisk)
        let missing = onDisk.filter { !indexed.contains($0) }
        let stale = indexed.filter { !present.contains($0) }
        let files = workspace.files
        // A record that fails its integrity check is left out here; `verify` and `fsck` name it.
        let summaries = try Parallel.map(count: missing.count) { i -> (created: String, text: String)? in
            guard let bytes = try? files.read(".mlops/runs/\(missing[i]).json"),
                let run = try? StoredRun(id: missing[i], bytes: bytes, skipping: Self.notSummarised)
            else { return nil }
            return (run.created, JSONWriter.compact(Self.summary(id: run.id, record: run.record)))
        }
        try database.transaction {
            let insert = try database.prepare("INSERT OR REPLACE INTO runs(id, created, summary) VALUES (?, ?, ?)")
            for (id, summary) in zip(missing, summaries) {
                if let summary { try insert.run([.text(id), .text(summary.created), .text(summary.text)]) }
            }
            for id in stale { try database.prepare("DELETE FROM runs WHERE id = ?").run([.text(id)]) }
            if let stamp, summaries.allSatisfy({ $0 != nil }) {
                try database.prepare("INSERT OR REPLACE INTO index_state(key, value) VALUES ('runs_directory', ?)")
                    .run([.text(stamp)])
            }
        }
        return database
    }

    /// `.mlops/runs`' change time and inode, or nil when it changed within the last second (not to be trusted yet).
    private func directoryStamp() -> String? {
        var info = stat()
        guard lstat(workspace.runsDirectory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard now.tv_sec - info.st_mtim.tv_sec > 1, now.tv_sec - info.st_ctim.tv_sec > 1 else { return nil }
        return
            "\(info.st_dev):\(info.st_ino):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }
}
