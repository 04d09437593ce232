import Dispatch
import GitMLBasics
import GitMLLineage
import GitMLStore
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

extension Gateway {
    /// Serves until SIGTERM or SIGINT, then drains: stops accepting, lets in-flight requests finish (at most
    /// `drain_seconds`), stops the backends and returns 0. Blocks the calling thread.
    public static func serve(_ options: Options) throws -> Int32 {
        let files = Beneath(root: options.root)
        guard try files.exists(options.configPath) else {
            throw LineageError.badArgument(
                "no \(options.configPath) in \(options.root)",
                hint: "write one naming the models to serve (docs/format.md#serve-yaml, Examples/serving)")
        }
        var config = try ServeConfig.parse(
            try files.read(options.configPath, limit: 1 << 20), source: options.configPath)
        // The repository may not choose to expose the gateway: beyond loopback only when the command line says so.
        if options.host == nil && !isLoopback(config.host) {
            throw LineageError.badArgument(
                "\(options.configPath) asks to listen on \(config.host), beyond this machine",
                hint: "confirm it on the command line: git ml serve --host \(config.host)")
        }
        if let host = options.host { config.host = host }
        if let port = options.port { config.port = port }
        let gateway = try Gateway(options: options, config: config)
        if !isLoopback(config.host) && options.token == nil {
            serveLog(
                "warning: listening on \(config.host) with no token: anyone who can reach it may call the models (set GIT_ML_SERVE_TOKEN)"
            )
        }
        // Tasks run on the event loops' own threads, so a request is not handed between a thread pool and the loop
        // that owns its sockets (two cores: each hand-off is a context switch). Must come before the first task.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let result = Synchronization.Mutex<Result<Int32, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let outcome: Result<Int32, Error>
            do {
                try await gateway.run(config)
                outcome = .success(0)
            } catch {
                outcome = .failure(error)
            }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0 }?.get() ?? 0
    }

    private func run(_ config: ServeConfig) async throws {
        loader.sweep()
        var logger = Logger(label: "git-ml-serve")
        logger.logLevel = .error
        let address = "\(config.host):\(config.port)"
        let app = Application(
            responder: GatewayResponder(gateway: self),
            // An idle keep-alive connection is closed after 75 s (nginx's keepalive_timeout), so idle clients
            // cannot hold sockets open for ever.
            server: .http1(configuration: .init(idleTimeout: .seconds(75))),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? config.port
                let host = config.host.contains(":") ? "[\(config.host)]" : config.host
                serveLog("listening on http://\(host):\(port) (pid \(getpid()))")
            },
            logger: logger)
        var group = ServiceGroupConfiguration(
            services: [.init(service: Reloader(gateway: self, interval: config.reloadSeconds)), .init(service: app)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .milliseconds(Int64(config.drainSeconds * 1000))
        group.maximumCancellationDuration = .seconds(5)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch let error as IOError {
            await shutdown()
            let detail: String
            switch error.errnoCode {
            case EADDRINUSE: detail = "the address is already in use"
            case EADDRNOTAVAIL: detail = "that is not an address of this machine"
            case EACCES: detail = "permission denied (ports below 1024 need privileges)"
            default: detail = String(cString: strerror(error.errnoCode))
            }
            throw ServeError.cannotListen(address: address, detail: detail)
        } catch {
            await shutdown()
            let text = "\(error)"
            if text.lowercased().contains("timedout") {
                serveLog(
                    "drain took longer than \(JSONWriter.format(config.drainSeconds)) s; what was left was cancelled")
                return
            }
            throw ServeError.cannotListen(address: address, detail: text)
        }
        let unfinished = slots.withLock { $0.values.compactMap(\.serving) }.reduce(0) {
            $0 + $1.inflight.load(ordering: .relaxed)
        }
        serveLog(
            unfinished == 0
                ? "drained; stopping the backends"
                : "drain_seconds (\(JSONWriter.format(config.drainSeconds))) passed with \(unfinished) request(s) unfinished; stopping"
        )
        await shutdown()
    }
}

/// Loads the models once the server is up, then follows the registry: every `interval` seconds, and at once on
/// SIGHUP (which also re-reads serve.yaml and retries refused versions).
struct Reloader: Service {
    let gateway: Gateway
    let interval: Double

    func run() async throws {
        let gateway = self.gateway
        let interval = self.interval
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await gateway.reconcile(force: false) }
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        serveLog("SIGHUP: reloading serve.yaml, the registry and the rollout files")
                        await gateway.reconcile(force: true)
                        await gateway.followRollouts(force: true)
                    }
                }
                // Rollout files are read four times a second: a pause, abort or rollback takes effect within one.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(250))
                        await gateway.followRollouts()
                    }
                }
                group.addTask {
                    var waited = 0.0
                    let step = interval > 0 ? min(interval, 1) : 1
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(Int64(step * 1000)))
                        let now = Int64(Timestamp.nowSeconds())
                        for version in gateway.metrics.allVersions() { version.tick(now: now) }
                        waited += step
                        if interval > 0 && waited >= interval {
                            waited = 0
                            await gateway.reconcile(force: false)
                        }
                    }
                }
                await group.waitForAll()
            }
        }
    }
}
