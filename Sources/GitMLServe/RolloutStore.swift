import GitMLBasics
import GitMLLineage
import GitMLRollout
import GitMLStore

/// A rollout's operational state (`.mlops/cache/rollouts.sqlite`, beside the prediction log): the step and weight
/// in force and every interval's measurements and verdict. Never committed; it lets a restarted gateway resume
/// where it was and `rollout status` show the numbers.
public struct RolloutStore: Sendable {
    public static let relativePath = ".mlops/cache/rollouts.sqlite"
    static let schema = """
        CREATE TABLE IF NOT EXISTS rollout_state (
            model TEXT PRIMARY KEY, rollout TEXT NOT NULL, step INTEGER NOT NULL, weight INTEGER NOT NULL,
            step_started REAL NOT NULL, started REAL NOT NULL, switched REAL, updated REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS rollout_intervals (
            id INTEGER PRIMARY KEY, model TEXT NOT NULL, rollout TEXT NOT NULL, time REAL NOT NULL,
            decision TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS rollout_intervals_rollout ON rollout_intervals (rollout, time);
        CREATE TABLE IF NOT EXISTS rollout_ended (rollout TEXT PRIMARY KEY, why TEXT NOT NULL, time REAL NOT NULL);
        """

    /// Where a running rollout stands.
    public struct State: Sendable, Equatable {
        public var rollout: String
        public var step: Int
        /// The candidate's share in percent.
        public var weight: Int
        public var stepStarted: Double
        public var started: Double
        /// Blue-green: when the candidate took all traffic.
        public var switched: Double?

        public var json: JSONValue {
            .object([
                "rollout": .string(rollout), "step": .int(Int64(step)), "weight": .int(Int64(weight)),
                "step_started": .string(Timestamp.format(seconds: stepStarted)),
                "started": .string(Timestamp.format(seconds: started)),
                "switched": switched.map { .string(Timestamp.format(seconds: $0)) } ?? .null,
            ])
        }
    }

    let path: String

    public init(root: String) throws {
        let files = Beneath(root: root)
        try files.makeDirectories(".mlops/cache")
        path = try files.checked(Self.relativePath)
    }

    /// True once a gateway has written anything (reading never creates the file).
    public var exists: Bool { FileSystem.exists(path) }

    private func open() throws -> Database {
        let database = try Database(path: path, busyTimeoutMilliseconds: 5000)
        try database.execute(Self.schema)
        return database
    }

    public func save(model: String, _ state: State) throws {
        try open().prepare(
            "INSERT OR REPLACE INTO rollout_state (model, rollout, step, weight, step_started, started, switched, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ).run([
            .text(model), .text(state.rollout), .integer(Int64(state.step)), .integer(Int64(state.weight)),
            .real(state.stepStarted), .real(state.started), state.switched.map(SQLValue.real) ?? .null,
            .real(Timestamp.nowSeconds()),
        ])
    }

    /// The state a gateway left for `model`, when it is of rollout `id`.
    public func state(model: String, rollout id: String) throws -> State? {
        guard exists else { return nil }
        var found: State?
        try open().prepare(
            "SELECT step, weight, step_started, started, switched FROM rollout_state WHERE model = ? AND rollout = ?"
        ).query([.text(model), .text(id)]) { row in
            found = State(
                rollout: id, step: Int(clamping: row.integer(0)), weight: Int(clamping: row.integer(1)),
                stepStarted: row.real(2), started: row.real(3), switched: row.isNull(4) ? nil : row.real(4))
        }
        return found
    }

    /// Marks a rollout ended by a gateway's own decision (an abort, a shadow's end): never started again here,
    /// even when its file could not say so (no identity to record it with).
    public func markEnded(rollout id: String, why: String) throws {
        try open().prepare("INSERT OR REPLACE INTO rollout_ended (rollout, why, time) VALUES (?, ?, ?)").run([
            .text(id), .text(why), .real(Timestamp.nowSeconds()),
        ])
    }

    public func hasEnded(rollout id: String) throws -> Bool {
        guard exists else { return false }
        var found = false
        try open().prepare("SELECT 1 FROM rollout_ended WHERE rollout = ?").query([.text(id)]) { _ in found = true }
        return found
    }

    /// Records an interval's decision.
    public func append(model: String, rollout id: String, _ decision: Decision) throws {
        try open().prepare("INSERT INTO rollout_intervals (model, rollout, time, decision) VALUES (?, ?, ?, ?)").run([
            .text(model), .text(id), .real(Timestamp.nowSeconds()), .text(JSONWriter.compact(decision.json)),
        ])
    }

    /// The last `limit` decisions of rollout `id`, oldest first, each with its time.
    public func intervals(rollout id: String, limit: Int = 50) throws -> [JSONValue] {
        guard exists else { return [] }
        var rows: [JSONValue] = []
        try open().prepare(
            "SELECT time, decision FROM rollout_intervals WHERE rollout = ? ORDER BY time DESC, id DESC LIMIT ?"
        ).query([.text(id), .integer(Int64(limit))]) { row in
            guard let text = row.text(1), var decision = try? JSONParser.parse(text, source: Self.relativePath),
                case .object(var members) = decision
            else { return }
            members["time"] = .string(Timestamp.format(seconds: row.real(0)))
            decision = .object(members)
            rows.append(decision)
        }
        return rows.reversed()
    }
}
