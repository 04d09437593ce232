import GitMLBasics
import GitMLStore

/// One line of `git ml log`: what queries look at, without the environment's bulk.
public struct RunSummary: Sendable {
    public let id: String
    public let created: String
    /// `{id, created, kind, status, git{commit,branch,dirty}, metrics, params, seed, command, owner}`.
    public let json: JSONValue
}

/// The run index in `.mlops/cache/index.sqlite`: summaries of every record, kept in step with
/// `.mlops/runs` on each read (new files added, vanished ones dropped), so a fresh clone rebuilds it.
public struct RunIndex {
    let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

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
        try database.prepare("INSERT OR REPLACE INTO runs(id, created, summary) VALUES (?, ?, ?)").run([
            .text(id), .text(record["created"]?.string ?? ""),
            .text(JSONWriter.compact(Self.summary(id: id, record: record))),
        ])
    }

    /// Every run's summary, the index first brought in step with the records on disk.
    /// A record that fails its integrity check is left out here; `verify` and `fsck` name it.
    public func summaries() throws -> [RunSummary] {
        let database = try workspace.database.get()
        var indexed: [String: RunSummary] = [:]
        try database.prepare("SELECT id, created, summary FROM runs").query { row in
            let id = row.text(0) ?? ""
            if let json = try? JSONParser.parse(row.text(2) ?? "", source: "index") {
                indexed[id] = RunSummary(id: id, created: row.text(1) ?? "", json: json)
            }
        }
        let onDisk = RunStore(workspace: workspace).ids()
        let present = Set(onDisk)
        let missing = onDisk.filter { indexed[$0] == nil }
        let stale = indexed.keys.filter { !present.contains($0) }
        if !missing.isEmpty || !stale.isEmpty {
            let store = RunStore(workspace: workspace)
            try database.transaction {
                for id in missing {
                    guard let run = try? store.read(id) else { continue }
                    let summary = Self.summary(id: id, record: run.record)
                    try database.prepare("INSERT OR REPLACE INTO runs(id, created, summary) VALUES (?, ?, ?)").run([
                        .text(id), .text(run.created), .text(JSONWriter.compact(summary)),
                    ])
                    indexed[id] = RunSummary(id: id, created: run.created, json: summary)
                }
                for id in stale {
                    try database.prepare("DELETE FROM runs WHERE id = ?").run([.text(id)])
                    indexed[id] = nil
                }
            }
        }
        return Array(indexed.values)
    }
}
