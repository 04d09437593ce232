import Dispatch
import GitMLBasics
import GitMLLineage
import GitMLStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One answered request, as the prediction log keeps it.
struct PredictionEntry: Sendable {
    var time: Double
    var model: String
    var version: Int
    var run: String
    var route: String
    var status: Int
    var latencyMilliseconds: Double
    /// The request and response bodies, when this request was sampled (cut at the configured size).
    var input: [UInt8]?
    var output: [UInt8]?
}

/// The prediction log (`.mlops/cache/serve.sqlite`, WAL): requests wait in a bounded queue and one thread writes
/// them in batches, so a slow disk never holds up a request. A full queue drops the entry and counts it.
final class PredictionLogWriter: Sendable {
    static let schema = """
        CREATE TABLE IF NOT EXISTS predictions (
            id INTEGER PRIMARY KEY, time REAL NOT NULL, model TEXT NOT NULL, version INTEGER NOT NULL,
            run TEXT NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL, latency_ms REAL NOT NULL,
            input BLOB, output BLOB);
        CREATE INDEX IF NOT EXISTS predictions_model_time ON predictions (model, time);
        """

    private let queue = Synchronization.Mutex<(entries: [PredictionEntry], closed: Bool)>(([], false))
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let capacity: Int
    private let dropped: @Sendable () -> Void
    let path: String

    /// Opens (creating) the log and starts its writer thread.
    init(path: String, capacity: Int, dropped: @escaping @Sendable () -> Void) throws {
        self.path = path
        self.capacity = capacity
        self.dropped = dropped
        let database = try Database(path: path)
        try database.execute(Self.schema)
        let box = UncheckedBox(database)
        DispatchQueue(label: "git-ml.prediction-log").async { [self] in self.drain(box.value) }
    }

    /// Queues an entry; never blocks.
    func append(_ entry: PredictionEntry) {
        // The writer wakes on its own every 100 ms; it is woken early only when a batch is worth writing, so a
        // request never costs a thread switch.
        let (accepted, count) = queue.withLock { state -> (Bool, Int) in
            guard !state.closed, state.entries.count < capacity else { return (false, 0) }
            state.entries.append(entry)
            return (true, state.entries.count)
        }
        if !accepted { dropped() } else if count == 512 { wake.signal() }
    }

    /// Writes what is queued and stops the writer.
    func close() {
        queue.withLock { $0.closed = true }
        wake.signal()
        finished.wait()
    }

    private func drain(_ database: Database) {
        defer { finished.signal() }
        guard
            let insert = try? database.prepare(
                "INSERT INTO predictions (time, model, version, run, route, status, latency_ms, input, output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
        else { return }
        while true {
            _ = wake.wait(timeout: .now() + .milliseconds(100))
            let (batch, closed) = queue.withLock { state -> ([PredictionEntry], Bool) in
                let taken = state.entries
                state.entries.removeAll(keepingCapacity: true)
                return (taken, state.closed)
            }
            if !batch.isEmpty {
                do {
                    try database.transaction {
                        for entry in batch {
                            try insert.run([
                                .real(entry.time), .text(entry.model), .integer(Int64(entry.version)), .text(entry.run),
                                .text(entry.route), .integer(Int64(entry.status)), .real(entry.latencyMilliseconds),
                                entry.input.map(SQLValue.blob) ?? .null, entry.output.map(SQLValue.blob) ?? .null,
                            ])
                        }
                    }
                } catch {
                    for _ in batch { dropped() }
                }
            }
            if closed { return }
        }
    }
}

/// A value handed to one thread and used only there.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Reads the prediction log back: for train-serve skew (`git ml drift --from-log`).
public enum PredictionLog {
    /// The log's place in a work tree.
    public static let relativePath = ".mlops/cache/serve.sqlite"

    /// The KServe v1 `instances` logged for `model` since `since` (unix seconds), newest last, as rows: each
    /// instance is an array (the profile's column order) or an object (by column name). At most `limit` rows.
    public static func instances(path: String, model: String, version: Int?, since: Double, limit: Int = 5_000_000)
        throws -> (rows: [JSONValue], requests: Int)
    {
        guard access(path, F_OK) == 0 else {
            throw LineageError.badArgument(
                "no prediction log at \(relativePath)", hint: "serve the model with git ml serve first")
        }
        let database = try Database(path: path)
        var rows: [JSONValue] = []
        var requests = 0
        let sql =
            "SELECT input FROM predictions WHERE model = ? AND time >= ? AND status = 200 AND input IS NOT NULL"
            + (version == nil ? "" : " AND version = ?") + " ORDER BY time"
        var values: [SQLValue] = [.text(model), .real(since)]
        if let version { values.append(.integer(Int64(version))) }
        try database.prepare(sql).query(values) { row in
            guard rows.count < limit else { return }
            // A cut or unparsable body was still logged; it holds no rows to compare.
            guard let body = try? JSONParser.parse(row.blob(0), source: "the prediction log"),
                let instances = body["instances"]?.array
            else { return }
            requests += 1
            rows.append(contentsOf: instances.prefix(limit - rows.count))
        }
        return (rows, requests)
    }

    /// Writes the logged instances as a JSON-lines table (one object per row) for the profile reader: an array
    /// instance is named by `columns` in order (the training profile's), an object by its own keys. Returns the
    /// rows and requests read and the columns that appeared.
    public static func export(
        path: String, model: String, version: Int?, since: Double, columns: [String], to output: String
    ) throws -> (rows: Int, requests: Int, columns: Set<String>) {
        let (instances, requests) = try instances(path: path, model: model, version: version, since: since)
        var seen = Set<String>()
        var text: [UInt8] = []
        text.reserveCapacity(instances.count * 64)
        for instance in instances {
            var row: [String: JSONValue] = [:]
            switch instance {
            case .array(let values):
                for (name, value) in zip(columns, values) { row[name] = value }
            case .object(let members):
                row = members
            default:
                continue
            }
            seen.formUnion(row.keys)
            text.append(contentsOf: JSONWriter.compact(.object(row)).utf8)
            text.append(UInt8(ascii: "\n"))
        }
        try AtomicFile.write(text, to: output)
        return (instances.count, requests, seen)
    }
}
