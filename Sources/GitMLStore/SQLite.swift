internal import CSQLite
import GitMLBasics

/// A failed SQLite call, in SQLite's own words.
public struct SQLiteError: GitMLError {
    public let resultCode: Int32
    public let detail: String
    public let sql: String
    public let path: String

    public var message: String { "SQLite failed on \(path): \(detail)" }
    public var hint: String {
        "the database is a rebuildable cache: delete \(path) and run the command again if this persists"
    }
    public var code: String { "sqlite-error" }
}

private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One SQLite connection in WAL mode with a busy timeout, so concurrent git-ml processes wait instead of failing.
public final class Database {
    private let handle: OpaquePointer
    /// The file's path, for messages.
    public let path: String
    private var statements: [String: Statement] = [:]

    /// Opens (creating if needed) the database at `path`.
    public init(path: String, busyTimeoutMilliseconds: Int32 = 30_000) throws {
        var connection: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &connection, flags, nil)
        guard status == SQLITE_OK, let connection else {
            let detail = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(connection)
            throw SQLiteError(resultCode: status, detail: detail, sql: "", path: path)
        }
        handle = connection
        self.path = path
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        try enableWriteAheadLog(timeoutMilliseconds: busyTimeoutMilliseconds)
        try execute("PRAGMA synchronous=NORMAL")
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Switching to WAL takes an exclusive lock that the busy handler does not always wait for: retry it.
    private func enableWriteAheadLog(timeoutMilliseconds: Int32) throws {
        var waited: Int32 = 0
        while true {
            do {
                try execute("PRAGMA journal_mode=WAL")
                return
            } catch let error as SQLiteError where error.resultCode == SQLITE_BUSY && waited < timeoutMilliseconds {
                sqlite3_sleep(10)
                waited += 10
            }
        }
    }

    func failure(_ status: Int32, sql: String) -> SQLiteError {
        SQLiteError(resultCode: status, detail: String(cString: sqlite3_errmsg(handle)), sql: sql, path: path)
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws {
        let status = sqlite3_exec(handle, sql, nil, nil, nil)
        guard status == SQLITE_OK else { throw failure(status, sql: sql) }
    }

    /// A prepared statement, cached by its text and reset for reuse.
    public func prepare(_ sql: String) throws -> Statement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        var raw: OpaquePointer?
        let status = sqlite3_prepare_v2(handle, sql, -1, &raw, nil)
        guard status == SQLITE_OK, let raw else { throw failure(status, sql: sql) }
        let statement = Statement(raw, database: self, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` in one write transaction (BEGIN IMMEDIATE, so the write lock is taken up front and
    /// waited for under the busy timeout); rolls back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// A prepared statement owned by its `Database`.
public final class Statement {
    private let handle: OpaquePointer
    private unowned let database: Database
    private let sql: String

    init(_ handle: OpaquePointer, database: Database, sql: String) {
        self.handle = handle
        self.database = database
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Binds values to `?` placeholders in order.
    @discardableResult
    public func bind(_ values: [SQLValue]) throws -> Statement {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(handle, index)
            case .integer(let i): status = sqlite3_bind_int64(handle, index, i)
            case .real(let d): status = sqlite3_bind_double(handle, index, d)
            case .text(let s): status = sqlite3_bind_text(handle, index, s, -1, transient)
            case .blob(let b):
                status = b.withUnsafeBytes {
                    sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), transient)
                }
            }
            guard status == SQLITE_OK else { throw database.failure(status, sql: sql) }
        }
        return self
    }

    /// Runs a statement that returns no rows.
    public func run(_ values: [SQLValue] = []) throws {
        if !values.isEmpty { try bind(values) }
        let status = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        guard status == SQLITE_DONE || status == SQLITE_ROW else { throw database.failure(status, sql: sql) }
    }

    /// Runs a query and hands each row to `body`.
    public func query(_ values: [SQLValue] = [], _ body: (Row) throws -> Void) throws {
        if !values.isEmpty { try bind(values) }
        defer { sqlite3_reset(handle) }
        while true {
            let status = sqlite3_step(handle)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw database.failure(status, sql: sql) }
            try body(Row(handle: handle))
        }
    }
}

/// The current row of a query; valid only inside the `query` callback.
public struct Row {
    fileprivate let handle: OpaquePointer

    /// Column `index` as an integer (0 for NULL).
    public func integer(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
    /// Column `index` as a double.
    public func real(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }
    /// Column `index` as text, nil for NULL.
    public func text(_ index: Int32) -> String? {
        guard let raw = sqlite3_column_text(handle, index) else { return nil }
        return String(cString: raw)
    }
    /// Column `index`'s text bytes without copying them (empty for NULL); valid only inside `body`.
    public func withText<T>(_ index: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        // SQLite's rule: ask for the text first, then its length.
        guard let raw = sqlite3_column_text(handle, index) else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: raw, count: Int(sqlite3_column_bytes(handle, index))))
    }
    /// True when column `index` is NULL.
    public func isNull(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
    /// Column `index` as bytes.
    public func blob(_ index: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let raw = sqlite3_column_blob(handle, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: raw, count: count))
    }
}
