import AsyncHTTPClient
import Dispatch
import GitMLBasics
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The server behind one served version: a process the gateway started (restarted with backoff when it exits),
/// or a server that was already running. It owns the HTTP client its requests go through.
final class Backend: Sendable {
    let model: String
    let version: Int
    /// `http://127.0.0.1:<port>` (managed) or the configured URL, without a trailing slash.
    let base: String
    let health: String?
    let client: HTTPClient
    /// A request's time to its answer.
    let timeoutMilliseconds: Int
    private let launch: Launch?
    /// Checks the version's files again before a restart; a failure stops the restarts.
    private let reverify: (@Sendable () throws -> Void)?
    private let onRefusal: @Sendable (Error) -> Void
    private let state = Synchronization.Mutex<State>(State())
    private let onRestart: @Sendable () -> Void
    private let onHealth: @Sendable (Bool) -> Void

    struct Launch: Sendable {
        let executable: String
        let arguments: [String]
        let environment: [String: String]
        let directory: String
    }

    private struct State {
        var pid: Int32 = 0
        var stopping = false
        var up = false
        var restarts = 0
        var restarting = false
        var refusal: ServeError?
    }

    /// Why the backend will not be restarted (its files no longer verify), if so.
    var refusal: ServeError? { state.withLock { $0.refusal } }

    /// Whether requests may go to it now.
    var isUp: Bool { state.withLock { $0.up } }

    init(
        model: String, version: Int, base: String, health: String?, launch: Launch?, timeoutMilliseconds: Int,
        reverify: (@Sendable () throws -> Void)? = nil, onRefusal: @escaping @Sendable (Error) -> Void = { _ in },
        onRestart: @escaping @Sendable () -> Void, onHealth: @escaping @Sendable (Bool) -> Void
    ) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.reverify = reverify
        self.onRefusal = onRefusal
        self.model = model
        self.version = version
        self.base = base
        self.health = health
        self.launch = launch
        self.onRestart = onRestart
        self.onHealth = onHealth
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .seconds(2), read: .milliseconds(Int64(timeoutMilliseconds)),
                write: .milliseconds(Int64(timeoutMilliseconds))),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256),
            proxy: nil, ignoreUncleanSSLShutdown: false, decompression: .disabled)
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }

    /// Starts the process (if managed) and waits until the health path answers 200 (or, with no health path, until
    /// the port accepts a connection), for at most `seconds`.
    func start(within seconds: Double) async throws {
        if launch != nil { try spawn() }
        try await waitHealthy(within: seconds)
        setUp(true)
    }

    /// Stops the process group: SIGTERM, then SIGKILL after `grace` seconds; and closes the client.
    func stop(grace: Double = 5) async {
        let pid = state.withLock { state -> Int32 in
            state.stopping = true
            state.up = false
            return state.pid
        }
        onHealth(false)
        if pid > 0 {
            ChildProcess.signalGroup(pid, SIGTERM)
            let deadline = ContinuousClock.now + .milliseconds(Int64(grace * 1000))
            while ContinuousClock.now < deadline, state.withLock({ $0.pid == pid }) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if state.withLock({ $0.pid == pid }) { ChildProcess.signalGroup(pid, SIGKILL) }
        }
        try? await client.shutdown()
    }

    private func setUp(_ up: Bool) {
        state.withLock { $0.up = up }
        onHealth(up)
    }

    private func spawn() throws {
        guard let launch else { return }
        let pid = try ChildProcess.spawn(
            executable: launch.executable, arguments: launch.arguments, environment: launch.environment,
            directory: launch.directory)
        state.withLock { $0.pid = pid }
        // One thread per backend waits for it to exit; an exit nobody asked for is a crash to restart.
        DispatchQueue.global().async { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let restart = state.withLock { state -> Bool in
                if state.pid == pid { state.pid = 0 }
                state.up = false
                // One restart loop at a time: a failed restart's own process exits here too.
                guard !state.stopping && !state.restarting else { return false }
                state.restarting = true
                return true
            }
            onHealth(false)
            if restart { Task { await self.restartWithBackoff() } }
        }
    }

    /// Restarts a crashed managed backend: 0.25 s, then doubling up to 30 s between tries.
    private func restartWithBackoff() async {
        defer { state.withLock { $0.restarting = false } }
        var delay = 0.25
        while !state.withLock({ $0.stopping }) {
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            if state.withLock({ $0.stopping }) { return }
            do {
                if let reverify { try await Gateway.offload(reverify) }
            } catch {
                let refusal = error as? ServeError
                state.withLock { $0.refusal = refusal }
                serveLog("\(model)@\(version): not restarted: \(Gateway.describe(error))")
                onRefusal(error)
                return
            }
            onRestart()
            state.withLock { $0.restarts += 1 }
            do {
                try spawn()
                try await waitHealthy(within: 60)
                setUp(true)
                return
            } catch {
                serveLog("\(model)@\(version): the backend did not come back: \(Gateway.describe(error))")
                let pid = state.withLock { $0.pid }
                if pid > 0 { ChildProcess.signalGroup(pid, SIGKILL) }
                // Wait for the exit thread to see the kill before the next spawn.
                while state.withLock({ $0.pid == pid && pid > 0 }) { try? await Task.sleep(for: .milliseconds(20)) }
                delay = min(delay * 2, 30)
            }
        }
    }

    /// Polls the health path every 50 ms.
    func waitHealthy(within seconds: Double) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var last = "no answer"
        while ContinuousClock.now < deadline {
            if launch != nil && state.withLock({ $0.pid == 0 }) {
                throw ServeError.backendUnhealthy(model: model, version: version, detail: "the process exited")
            }
            if state.withLock({ $0.stopping }) {
                throw ServeError.backendUnhealthy(model: model, version: version, detail: "stopped")
            }
            do {
                var request = HTTPClientRequest(url: base + (health ?? "/"))
                request.method = .GET
                let response = try await client.execute(request, timeout: .seconds(2))
                _ = try? await response.body.collect(upTo: 1 << 20)
                if health == nil || response.status == .ok { return }
                last = "\(health ?? "/") answered \(response.status.code)"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServeError.backendUnhealthy(
            model: model, version: version,
            detail: "\(health ?? "its port") did not answer 200 in \(JSONWriter.format(seconds)) s (\(last))")
    }
}

/// A free port on loopback, for a managed backend.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
        throw ServeError.cannotListen(address: "127.0.0.1:0", detail: String(cString: strerror(errno)))
    }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else { throw ServeError.cannotListen(address: "127.0.0.1:0", detail: String(cString: strerror(errno))) }
    return Int(UInt16(bigEndian: address.sin_port))
}
