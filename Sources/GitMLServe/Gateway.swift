import AsyncHTTPClient
import Dispatch
import GitMLBasics
import GitMLGates
import GitMLLineage
import GitMLRegistry
import GitMLStore
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one line of the gateway's log to standard error.
func serveLog(_ text: String) {
    let line = Array(("git ml serve: " + text + "\n").utf8)
    line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
}

/// One version being served: verified artifacts, a healthy backend, and what each request needs at hand.
final class ServedVersion: Sendable {
    let verified: VerifiedVersion
    let settings: ServeConfig.ModelSettings
    let backend: Backend
    let metrics: GatewayMetrics.VersionMetrics
    let batcher: Batcher?
    let cache: ResponseCache?
    let versionLabel: String
    /// Requests still being answered by this version, so a replaced version is stopped only once they finish.
    let inflight = Synchronization.Atomic<Int>(0)

    init(verified: VerifiedVersion, settings: ServeConfig.ModelSettings, backend: Backend, metrics: GatewayMetrics) {
        self.verified = verified
        self.settings = settings
        self.backend = backend
        versionLabel = String(verified.version)
        let perVersion = metrics.version(model: verified.model, version: versionLabel)
        self.metrics = perVersion
        cache = settings.cache ? ResponseCache(capacity: settings.cacheEntries) : nil
        if let batch = settings.batch {
            let queue = metrics.queueDepth
            batcher = Batcher(
                maxSize: batch.maxSize, maxLatencyMilliseconds: batch.maxLatencyMilliseconds,
                depth: { queue.increment(by: Double($0)) },
                send: { [backend, model = verified.model] instances in
                    await Proxy.predictBatch(backend: backend, model: model, instances: instances)
                })
        } else {
            batcher = nil
        }
    }
}

/// What a model's routes answer now.
enum SlotState: Sendable {
    case starting
    case serving(ServedVersion)
    case refused(code: String, message: String, hint: String)
}

/// One configured model: its settings, what it serves, and the last version it tried to load.
final class Slot: Sendable {
    let name: String
    let state = Synchronization.Mutex<SlotState>(.starting)
    /// The version and version-file digest last loaded or refused, so a poll retries only on a change.
    let attempted = Synchronization.Mutex<(version: Int, digest: String)?>(nil)
    let settings: Synchronization.Mutex<ServeConfig.ModelSettings>
    /// The rollout under way, if any: a candidate beside what `state` serves.
    let rollout = Synchronization.Mutex<ActiveRollout?>(nil)
    /// A candidate is being verified and started.
    let rolloutStarting = Synchronization.Mutex<Bool>(false)
    /// The rollout whose candidate could not be started (tried again on SIGHUP).
    let failedRollout = Synchronization.Mutex<String?>(nil)
    /// The last problem said about the rollout file, so it is logged once.
    let planProblem = Synchronization.Mutex<String?>(nil)

    init(settings: ServeConfig.ModelSettings) {
        name = settings.name
        self.settings = Mutex(settings)
    }

    var serving: ServedVersion? {
        state.withLock { if case .serving(let version) = $0 { return version } else { return nil } }
    }
}

/// The gateway: which version each model serves, how it got there, and how it changes (reload).
public final class Gateway: Sendable {
    let loader: VersionLoader
    let configuration: Synchronization.Mutex<ServeConfig>
    let slots = Synchronization.Mutex<[String: Slot]>([:])
    let metrics = GatewayMetrics()
    let log: PredictionLogWriter?
    let token: [UInt8]?
    let allowedHosts: Set<String>
    let environment: [String: String]
    let configPath: String
    private let generation = Synchronization.Atomic<Int>(0)
    /// Versions replaced or ended and waiting for their requests to finish, so a drain stops them too.
    let retiring = Synchronization.Mutex<[ObjectIdentifier: ServedVersion]>([:])
    /// Passes over the rollout files, one at a time (two would judge one interval twice).
    let follows = SingleFlight()
    /// Set when the drain ends: no candidate is started or installed any more.
    let stopping = Synchronization.Atomic<Bool>(false)
    /// Registry passes, one at a time.
    private let reloads = SingleFlight()

    /// Settings the command line gives.
    public struct Options: Sendable {
        public var root: String
        public var configPath: String
        public var host: String?
        public var port: Int?
        public var token: String?
        public var environment: [String: String]
        public var cardExaminer: GateRunner.CardExaminer?

        public init(
            root: String, configPath: String, host: String?, port: Int?, token: String?, environment: [String: String],
            cardExaminer: GateRunner.CardExaminer?
        ) {
            self.root = root
            self.configPath = configPath
            self.host = host
            self.port = port
            self.token = token
            self.environment = environment
            self.cardExaminer = cardExaminer
        }
    }

    init(options: Options, config: ServeConfig) throws {
        loader = VersionLoader(root: options.root, environment: options.environment, cardExaminer: options.cardExaminer)
        configuration = Mutex(config)
        configPath = options.configPath
        environment = options.environment
        token = options.token.map { Array($0.utf8) }
        // Names a browser may reach the gateway by; IP literals and localhost always pass (DNS rebinding needs a name).
        var hosts = Set(config.allowedHosts.map { $0.lowercased() })
        if config.host != "0.0.0.0" && config.host != "::" { hosts.insert(config.host.lowercased()) }
        allowedHosts = hosts
        if config.log.enabled {
            let metrics = self.metrics
            log = try PredictionLogWriter(
                path: try Beneath(root: options.root).checked(PredictionLog.relativePath), capacity: config.log.queue,
                dropped: { metrics.logDropped.increment() })
        } else {
            log = nil
        }
        slots.withLock { table in
            for (name, settings) in config.models { table[name] = Slot(settings: settings) }
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.")
    }

    // MARK: - Loading and reloading

    /// Brings every model to the version the registry names. `force` retries versions that were refused before
    /// (SIGHUP); a poll retries only when the registry names another version.
    func reconcile(force: Bool) async {
        await reloads.run(force: force) { force in
            if force { reloadConfiguration() }
            // Every model at once: a backend that is slow to start holds up no other model.
            await withTaskGroup(of: Void.self) { group in
                for slot in slots.withLock({ Array($0.values) }) {
                    group.addTask { await self.reconcile(slot, force: force) }
                }
            }
        }
    }

    /// Re-reads serve.yaml on SIGHUP: changed model settings take effect through the next load, added models are
    /// loaded, removed ones stop. A malformed file changes nothing.
    private func reloadConfiguration() {
        let config: ServeConfig
        do {
            config = try ServeConfig.parse(try Beneath(root: loader.root).read(configPath, limit: 1 << 20))
        } catch let error as GitMLError {
            serveLog("\(configPath) not reloaded: \(error.message)")
            return
        } catch {
            serveLog("\(configPath) not reloaded: \(error)")
            return
        }
        var removed: [Slot] = []
        slots.withLock { table in
            for (name, slot) in table where config.models[name] == nil {
                removed.append(slot)
                table[name] = nil
            }
            for (name, settings) in config.models {
                if let slot = table[name] {
                    let changed = slot.settings.withLock { old -> Bool in
                        defer { old = settings }
                        return old != settings
                    }
                    if changed { slot.attempted.withLock { $0 = nil } }
                } else {
                    table[name] = Slot(settings: settings)
                }
            }
        }
        let restart = configuration.withLock { current -> [String] in
            var needed: [String] = []
            if (current.host, current.port) != (config.host, config.port) { needed.append("listen") }
            if current.allowedHosts != config.allowedHosts { needed.append("allowed_hosts") }
            if current.log.enabled != config.log.enabled || current.log.queue != config.log.queue {
                needed.append("log.enabled, log.queue")
            }
            let (host, port, hosts, enabled, queue) = (
                current.host, current.port, current.allowedHosts, current.log.enabled, current.log.queue
            )
            current = config
            (current.host, current.port, current.allowedHosts, current.log.enabled, current.log.queue) = (
                host, port, hosts, enabled, queue
            )
            return needed
        }
        if !restart.isEmpty {
            serveLog("\(configPath): changes to \(restart.joined(separator: ", ")) take effect on a restart")
        }
        for slot in removed {
            if let rollout = slot.rollout.withLock({ $0 }) { end(slot, rollout, why: "the model left serve.yaml") }
            if let old = slot.serving { retire(old) }
        }
    }

    private func reconcile(_ slot: Slot, force: Bool) async {
        let settings = slot.settings.withLock { $0 }
        let wanted: (version: Int, digest: String)
        do {
            wanted = try loader.current(settings)
        } catch let error as ServeError {
            // The registry names nothing for this stage any more (archived, demoted): stop serving it.
            if let old = slot.serving {
                serveLog(
                    "\(settings.name)@\(old.verified.version) is no longer in \(settings.reference); stopped serving it"
                )
                retire(old)
            }
            slot.attempted.withLock { $0 = nil }
            refuse(slot, error)
            return
        } catch {
            // The registry could not be read (a half-written checkout): keep what serves, and say so.
            if slot.serving == nil {
                refuse(slot, error)
            } else {
                serveLog("\(settings.name): registry not read: \(Self.describe(error))")
            }
            return
        }
        // A rollout that made its candidate production moves it into the slot itself (no second backend).
        if let rollout = slot.rollout.withLock({ $0 }), rollout.candidate.verified.version == wanted.version {
            return
        }
        let previous = slot.attempted.withLock { $0 }
        if !force, let previous, previous.version == wanted.version, previous.digest == wanted.digest { return }
        if let current = slot.serving, current.verified.version == wanted.version,
            current.verified.digest == wanted.digest, current.settings == settings
        {
            slot.attempted.withLock { $0 = wanted }
            return
        }
        slot.attempted.withLock { $0 = wanted }
        let started = ContinuousClock.now
        do {
            let next = try await prepare(settings)
            let old = slot.state.withLock { state -> ServedVersion? in
                defer { state = .serving(next) }
                if case .serving(let old) = state { return old }
                return nil
            }
            serveLog(
                "\(settings.name)@\(next.verified.version) (\(next.verified.stage), run \(next.verified.run.prefix(12))) "
                    + "verified and healthy in \(Self.seconds(since: started)) s; serving it at \(next.backend.base)")
            if let old { retire(old) }
        } catch {
            if let error = error as? ServeError {
                switch error {
                case .lineageMismatch, .objectMissing: metrics.lineageRefusals.increment()
                default: break
                }
            }
            if let current = slot.serving {
                serveLog(
                    "\(settings.name)@\(wanted.version) refused; still serving version \(current.verified.version): "
                        + Self.describe(error))
            } else {
                refuse(slot, error)
            }
        }
    }

    private func refuse(_ slot: Slot, _ error: Error) {
        let (code, message, hint) = Self.parts(of: error)
        let changed = slot.state.withLock { state -> Bool in
            if case .refused(_, let previous, _) = state, previous == message { return false }
            state = .refused(code: code, message: message, hint: hint)
            return true
        }
        if changed { serveLog("\(slot.name) refused: \(message)") }
    }

    /// Verifies a version, starts its backend and waits until it is healthy. `pin` names another version than the
    /// slot's (a rollout's candidate, a probed version), served with the slot's settings; `gatesFor` has that
    /// stage's gates evaluated for it again.
    func prepare(_ settings: ServeConfig.ModelSettings, pin: Int? = nil, gatesFor: Stage? = nil) async throws
        -> ServedVersion
    {
        let instance = "\(generation.add(1, ordering: .relaxed).newValue).\(getpid())"
        let loader = self.loader
        var target = settings
        if let pin { target.version = pin }
        let verified = try await Self.offload { [target] in
            try loader.load(target, instance: instance, gatesFor: gatesFor)
        }
        let backend: Backend
        let metrics = self.metrics
        let perVersion = metrics.version(model: settings.name, version: String(verified.version))
        do {
            switch settings.backend {
            case .url(let url, let health):
                backend = Backend(
                    model: settings.name, version: verified.version, base: url, health: health, launch: nil,
                    timeoutMilliseconds: settings.timeoutMilliseconds, onRestart: {},
                    onHealth: { perVersion.up.set(Double($0 ? 1 : 0)) })
            case .managed(let command, let health):
                let port = try freeLoopbackPort()
                let arguments = try Placeholders.substitute(command, verified: verified, port: port)
                backend = Backend(
                    model: settings.name, version: verified.version, base: "http://127.0.0.1:\(port)", health: health,
                    launch: try launch(arguments, verified: verified),
                    timeoutMilliseconds: settings.timeoutMilliseconds,
                    reverify: { try VersionLoader.reverify(verified) },
                    onRefusal: { _ in metrics.lineageRefusals.increment() },
                    onRestart: { metrics.restarts.increment() },
                    onHealth: { perVersion.up.set(Double($0 ? 1 : 0)) })
            }
        } catch {
            ScratchDirectory.remove(verified.directory)
            throw error
        }
        do {
            try await backend.start(within: settings.startupSeconds)
            // The gates' golden probes, replayed now that the backend answers: a version that drifts gets nothing.
            var drift: [String] = []
            for (golden, probes) in verified.goldenProbes {
                drift += await Self.replay(probes, on: backend, settings: settings).problems.map {
                    "probe \(golden): \($0)"
                }
            }
            if !drift.isEmpty {
                throw ServeError.promotionUnverified(
                    model: settings.name, version: verified.version, stage: verified.gatedStage, reasons: drift)
            }
        } catch {
            await backend.stop(grace: 1)
            ScratchDirectory.remove(verified.directory)
            throw error
        }
        return ServedVersion(verified: verified, settings: settings, backend: backend, metrics: metrics)
    }

    private func launch(_ arguments: [String], verified: VerifiedVersion) throws -> Backend.Launch {
        let name = arguments[0]
        let executable: String
        if name.contains("/") {
            executable = name.hasPrefix("/") ? name : loader.root + "/" + name
        } else {
            guard let found = Executable.find(name, path: environment["PATH"]) else {
                throw ProcessError.notFound(name)
            }
            executable = found
        }
        var childEnvironment = environment
        childEnvironment["GIT_ML_SERVE_TOKEN"] = nil
        childEnvironment["GIT_ML_MODEL"] = verified.model
        childEnvironment["GIT_ML_VERSION"] = String(verified.version)
        childEnvironment["GIT_ML_RUN"] = verified.run
        childEnvironment["GIT_ML_ARTIFACTS"] = verified.directory
        return Backend.Launch(
            executable: executable, arguments: arguments, environment: childEnvironment, directory: loader.root)
    }

    /// Stops a replaced version once its in-flight requests finish (at most the drain time).
    func retire(_ old: ServedVersion) {
        let drain = configuration.withLock { $0.drainSeconds }
        retiring.withLock { $0[ObjectIdentifier(old)] = old }
        Task {
            let deadline = ContinuousClock.now + .milliseconds(Int64(drain * 1000))
            while old.inflight.load(ordering: .acquiring) > 0 && ContinuousClock.now < deadline
                && !stopping.load(ordering: .relaxed)
            {
                try? await Task.sleep(for: .milliseconds(10))
            }
            // The drain stops it instead (and waits for that), when it began meanwhile.
            guard retiring.withLock({ $0.removeValue(forKey: ObjectIdentifier(old)) }) != nil else { return }
            await old.backend.stop()
            ScratchDirectory.remove(old.verified.directory)
        }
    }

    /// Stops every backend and the log writer: the end of a drain.
    func shutdown() async {
        stopping.store(true, ordering: .sequentiallyConsistent)
        // A candidate being started is either installed (and stopped below) or stopped by its own start.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline,
            slots.withLock({ $0.values.contains { $0.rolloutStarting.withLock { $0 } } })
        {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for old in retiring.withLock({ table in
            defer { table.removeAll() }; return Array(table.values)
        }) {
            await old.backend.stop()
            ScratchDirectory.remove(old.verified.directory)
        }
        let all = slots.withLock { Array($0.values) }
        for slot in all {
            if let rollout = slot.rollout.withLock({ current in
                defer { current = nil }; return current
            }) {
                rollout.mirror?.stop()
                await rollout.candidate.backend.stop()
                ScratchDirectory.remove(rollout.candidate.verified.directory)
            }
            if let served = slot.serving {
                await served.backend.stop()
                ScratchDirectory.remove(served.verified.directory)
            }
        }
        log?.close()
    }

    /// True when every configured model serves a version whose backend is up.
    func readiness() -> (ready: Bool, models: [String: JSONValue]) {
        var ready = true
        var models: [String: JSONValue] = [:]
        for slot in slots.withLock({ Array($0.values) }) {
            switch slot.state.withLock({ $0 }) {
            case .starting:
                ready = false
                models[slot.name] = .object(["state": .string("starting")])
            case .refused(let code, let message, _):
                ready = false
                models[slot.name] = .object([
                    "state": .string("refused"), "code": .string(code), "message": .string(message),
                ])
            case .serving(let served):
                let up = served.backend.isUp
                if !up { ready = false }
                models[slot.name] = .object([
                    "state": .string(up ? "ready" : "backend-down"), "version": .int(Int64(served.verified.version)),
                ])
            }
        }
        return (ready, models)
    }

    // MARK: - Helpers

    static func parts(of error: Error) -> (String, String, String) {
        if let error = error as? GitMLError { return (error.code, error.message, error.hint) }
        return ("internal-error", "\(error)", "")
    }

    static func describe(_ error: Error) -> String {
        let (_, message, hint) = parts(of: error)
        return hint.isEmpty ? message : "\(message) (\(hint))"
    }

    static func seconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        return JSONWriter.format((elapsed.seconds * 100).rounded() / 100)
    }

    /// Runs blocking work (hashing, the registry's files) off the cooperative pool.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}

/// Runs a pass at a time: a request while one runs (a SIGHUP's forced one, say) runs once more when it ends,
/// forced if any request was.
final class SingleFlight: Sendable {
    private let state = Synchronization.Mutex<(busy: Bool, pending: Bool?)>((false, nil))

    func run(force: Bool, _ pass: (Bool) async -> Void) async {
        let busy = state.withLock { state -> Bool in
            if state.busy {
                state.pending = (state.pending ?? false) || force
                return true
            }
            state.busy = true
            return false
        }
        if busy { return }
        var force = force
        while true {
            await pass(force)
            let next = state.withLock { state -> Bool? in
                defer { state.pending = nil }
                if state.pending == nil { state.busy = false }
                return state.pending
            }
            guard let next else { return }
            force = next
        }
    }
}

/// `{port}`, `{artifact}`, `{artifact:<recorded path>}`, `{artifacts}`, `{model}` and `{version}` in a backend's
/// command.
enum Placeholders {
    static func substitute(_ words: [String], verified: VerifiedVersion, port: Int) throws -> [String] {
        try words.map { word in
            var result = ""
            var rest = Substring(word)
            while let open = rest.firstIndex(of: "{") {
                result += rest[..<open]
                guard let close = rest[open...].firstIndex(of: "}") else {
                    result += rest[open...]
                    rest = ""
                    break
                }
                let name = String(rest[rest.index(after: open)..<close])
                rest = rest[rest.index(after: close)...]
                switch name {
                case "port": result += String(port)
                case "model": result += verified.model
                case "version": result += String(verified.version)
                case "artifacts": result += verified.directory
                case "artifact":
                    guard verified.artifacts.count == 1, let only = verified.artifacts.first else {
                        throw ServeError.badPlaceholder(
                            model: verified.model,
                            placeholder:
                                "{artifact} (version \(verified.version) has \(verified.artifacts.count) artifacts: name one with {artifact:<path>})"
                        )
                    }
                    result += verified.file(only.path)
                case _ where name.hasPrefix("artifact:"):
                    let path = String(name.dropFirst("artifact:".count))
                    guard verified.artifacts.contains(where: { $0.path == path }) else {
                        throw ServeError.badPlaceholder(
                            model: verified.model,
                            placeholder: "{\(name)} (version \(verified.version) records no artifact \(path))")
                    }
                    result += verified.file(path)
                case _ where name.allSatisfy({ $0.isLetter || $0 == "_" }) && !name.isEmpty:
                    throw ServeError.badPlaceholder(model: verified.model, placeholder: "{\(name)}")
                default:
                    result += "{\(name)}"
                }
            }
            return result + rest
        }
    }
}

extension Duration {
    /// The duration in seconds, as the log and the metrics report it.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
