import GitMLBasics
import GitMLRegistry

/// `.mlops/serve.yaml`: what the gateway serves and how. Repository content, so every key is known, every number
/// is range-checked and a duplicate key is an error (the YAML reader refuses one).
public struct ServeConfig: Sendable, Equatable {
    public static let path = ".mlops/serve.yaml"

    /// Where the gateway listens (`host:port`); loopback unless the file or the command line says otherwise.
    public var host = "127.0.0.1"
    public var port = 8080
    /// Hosts a request's `Host` header may name when the gateway listens beyond loopback (DNS rebinding).
    public var allowedHosts: [String] = []
    /// The largest request body accepted (413 above it).
    public var maxBodyBytes = 16 << 20
    /// How long SIGTERM waits for in-flight requests before it cancels them.
    public var drainSeconds = 30.0
    /// How often the registry is read again for a change of a served stage (0: only on SIGHUP).
    public var reloadSeconds = 2.0
    /// The prediction log.
    public var log = LogSettings()
    /// The models served, by name.
    public var models: [String: ModelSettings] = [:]

    /// The prediction log's settings (`log:`).
    public struct LogSettings: Sendable, Equatable {
        /// The share of requests whose inputs and outputs are kept (every request's time, status and latency is).
        public var sample = 1.0
        /// The most bytes of a request or response body kept per entry.
        public var maxBytes = 64 << 10
        /// Entries waiting for the writer; a full queue drops entries and counts them.
        public var queue = 10_000
        public var enabled = true
    }

    /// One served model (`models.<name>:`).
    public struct ModelSettings: Sendable, Equatable {
        public var name: String
        /// A stage (default production) or, when `version` is set, that version.
        public var stage = Stage.production
        public var version: Int?
        public var backend: BackendSettings
        public var timeoutMilliseconds = 5000
        public var cache = false
        public var cacheEntries = 1024
        public var batch: BatchSettings?
        public var price: Price?
        /// How long a managed backend has to answer its health check.
        public var startupSeconds = 60.0

        /// The registry reference this model follows: `3` or `production`.
        public var reference: String { version.map(String.init) ?? stage.rawValue }
    }

    /// A backend: a process the gateway starts, or a server that is already running.
    public enum BackendSettings: Sendable, Equatable {
        case managed(command: [String], health: String?)
        case url(String, health: String?)

        public var health: String? {
            switch self {
            case .managed(_, let health), .url(_, let health): return health
            }
        }
    }

    /// Micro-batching of KServe v1 `instances`.
    public struct BatchSettings: Sendable, Equatable {
        public var maxSize: Int
        public var maxLatencyMilliseconds: Int
    }

    /// Prices per 1,000 tokens, for `git_ml_cost_total`.
    public struct Price: Sendable, Equatable {
        public var inputPer1k: Double
        public var outputPer1k: Double
    }

    public init() {}

    /// Reads serve.yaml's bytes.
    public static func parse(_ bytes: [UInt8], source: String = path) throws -> ServeConfig {
        let value = try YAMLReader.parse(bytes, source: source)
        var config = ServeConfig()
        let reader = KeyReader(source: source)
        let top = try reader.mapping(value, "the top level")
        try reader.only(
            top, ["listen", "allowed_hosts", "max_body_bytes", "drain_seconds", "reload_seconds", "log", "models"],
            at: "")
        if let listen = top["listen"], listen != .null {
            guard let text = listen.string, let (host, port) = parseListen(text) else {
                throw reader.bad("listen must be host:port, for example 127.0.0.1:8080")
            }
            config.host = host
            config.port = port
        }
        config.allowedHosts = try reader.strings(top["allowed_hosts"], "allowed_hosts")
        config.maxBodyBytes =
            try reader.int(top["max_body_bytes"], "max_body_bytes", 1...(1 << 30)) ?? config.maxBodyBytes
        config.drainSeconds = try reader.number(top["drain_seconds"], "drain_seconds", 0...3600) ?? config.drainSeconds
        config.reloadSeconds =
            try reader.number(top["reload_seconds"], "reload_seconds", 0...3600) ?? config.reloadSeconds
        if config.reloadSeconds > 0 && config.reloadSeconds < 0.5 {
            throw reader.bad("reload_seconds must be 0 (only on SIGHUP) or from 0.5 to 3600")
        }
        if let log = top["log"], log != .null {
            let members = try reader.mapping(log, "log")
            try reader.only(members, ["sample", "max_bytes", "queue", "enabled"], at: "log.")
            config.log.sample = try reader.number(members["sample"], "log.sample", 0...1) ?? config.log.sample
            config.log.maxBytes =
                try reader.int(members["max_bytes"], "log.max_bytes", 0...(16 << 20)) ?? config.log.maxBytes
            config.log.queue = try reader.int(members["queue"], "log.queue", 1...1_000_000) ?? config.log.queue
            config.log.enabled = try reader.bool(members["enabled"], "log.enabled") ?? true
        }
        let models = try reader.mapping(top["models"] ?? .null, "models")
        guard !models.isEmpty else { throw reader.bad("models: name at least one model to serve") }
        for (name, settings) in models {
            do { try Registry.validate(name: name) } catch { throw reader.bad("models.\(name): not a model name") }
            config.models[name] = try model(name, settings, reader)
        }
        return config
    }

    private static func model(_ name: String, _ value: JSONValue, _ reader: KeyReader) throws -> ModelSettings {
        let at = "models.\(name)"
        let members = try reader.mapping(value, at)
        try reader.only(
            members,
            [
                "stage", "version", "backend", "timeout_ms", "cache", "cache_entries", "batch", "price",
                "startup_seconds",
            ],
            at: at + ".")
        let backend = try backend(members["backend"] ?? .null, at: at + ".backend", reader)
        var model = ModelSettings(name: name, backend: backend)
        if let stage = members["stage"], stage != .null {
            guard let text = stage.string, let parsed = Stage(rawValue: text) else {
                throw reader.bad("\(at).stage must be one of \(Stage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            model.stage = parsed
        }
        model.version = try reader.int(members["version"], "\(at).version", ModelVersion.numbers)
        if model.version != nil && members["stage"] != nil && members["stage"] != .null {
            throw reader.bad("\(at): give stage or version, not both")
        }
        model.timeoutMilliseconds = try reader.int(members["timeout_ms"], "\(at).timeout_ms", 1...3_600_000) ?? 5000
        model.cache = try reader.bool(members["cache"], "\(at).cache") ?? false
        model.cacheEntries = try reader.int(members["cache_entries"], "\(at).cache_entries", 1...1_000_000) ?? 1024
        model.startupSeconds = try reader.number(members["startup_seconds"], "\(at).startup_seconds", 0.1...3600) ?? 60
        if let batch = members["batch"], batch != .null {
            let settings = try reader.mapping(batch, "\(at).batch")
            try reader.only(settings, ["max_size", "max_latency_ms"], at: "\(at).batch.")
            model.batch = BatchSettings(
                maxSize: try reader.int(settings["max_size"], "\(at).batch.max_size", 1...100_000) ?? 32,
                maxLatencyMilliseconds: try reader.int(
                    settings["max_latency_ms"], "\(at).batch.max_latency_ms", 0...60_000) ?? 5)
        }
        if let price = members["price"], price != .null {
            let settings = try reader.mapping(price, "\(at).price")
            try reader.only(settings, ["input_per_1k_tokens", "output_per_1k_tokens"], at: "\(at).price.")
            model.price = Price(
                inputPer1k: try reader.number(
                    settings["input_per_1k_tokens"], "\(at).price.input_per_1k_tokens", 0...1e6) ?? 0,
                outputPer1k: try reader.number(
                    settings["output_per_1k_tokens"], "\(at).price.output_per_1k_tokens", 0...1e6) ?? 0)
        }
        return model
    }

    private static func backend(_ value: JSONValue, at: String, _ reader: KeyReader) throws -> BackendSettings {
        let members = try reader.mapping(value, at)
        try reader.only(members, ["command", "url", "health"], at: at + ".")
        var health: String?
        if let value = members["health"], value != .null {
            guard let text = value.string, text.hasPrefix("/"), text.count < 1024,
                text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else { throw reader.bad("\(at).health must be a path such as /healthz") }
            health = text
        }
        switch (members["command"], members["url"]) {
        case (.some(let command), nil):
            let words = try reader.strings(command, "\(at).command")
            guard !words.isEmpty, !words[0].isEmpty else {
                throw reader.bad(
                    "\(at).command must be a list such as [python3, serving/backend.py, --port, \"{port}\"]")
            }
            guard words.contains(where: { $0.contains("{port}") }) else {
                throw reader.bad("\(at).command must pass the gateway's choice of port: add \"{port}\" to it")
            }
            return .managed(command: words, health: health)
        case (nil, .some(let url)):
            guard let text = url.string, let parsed = BackendURL(text) else {
                throw reader.bad("\(at).url must be http://host:port (a server that is already running)")
            }
            return .url(parsed.text, health: health)
        default:
            throw reader.bad("\(at) needs either command: [...] (a process the gateway starts) or url: http://...")
        }
    }

    /// `host:port`, `[v6]:port` or `:port`.
    public static func parseListen(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "127.0.0.1" }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else { return nil }
        return (host, port)
    }
}

/// An `http://host:port[/prefix]` base URL for an existing backend.
struct BackendURL {
    let text: String

    init?(_ text: String) {
        guard text.hasPrefix("http://"), text.count < 2048,
            text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), !text.contains("@"), !text.contains("?"),
            !text.contains("#")
        else { return nil }
        let rest = text.dropFirst("http://".count)
        guard let host = rest.split(separator: "/", maxSplits: 1).first, !host.isEmpty else { return nil }
        self.text = text.hasSuffix("/") ? String(text.dropLast()) : text
    }
}
