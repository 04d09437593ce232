import Foundation
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// `git ml serve` running in a test repository on a port of its own choosing (`--port 0`), its standard error in a
/// file the test can read while it runs. Started with no signal blocked, so SIGTERM and SIGHUP reach it as they
/// would from a shell or an init system.
public final class ServeProcess: @unchecked Sendable {
    public let pid: Int32
    public let logPath: String
    public private(set) var port = 0
    private var exitStatus: Int32?

    /// Starts the gateway and waits (at most `seconds`) until it says where it listens.
    public init(
        _ repo: TempRepo, arguments: [String] = [], environment extra: [String: String] = [:], seconds: Double = 30
    )
        throws
    {
        logPath = repo.root + "/.git/serve-\(UUID().uuidString.prefix(8)).log"
        var environment = repo.environment
        for (key, value) in extra { environment[key] = value }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([TempRepo.binary, "serve", "-C", repo.root, "--port", "0"] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, TempRepo.binary, &actions, &attributes, argv, envp)
        guard status == 0 else { throw TestFailure("cannot start git-ml serve: \(String(cString: strerror(status)))") }
        pid = child
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let range = log.range(of: "listening on http://127.0.0.1:") {
                let digits = log[range.upperBound...].prefix { $0.isNumber }
                if let number = Int(digits) {
                    port = number
                    return
                }
            }
            if hasExited() { throw TestFailure("git-ml serve exited: \(log)") }
            usleep(20_000)
        }
        throw TestFailure("git-ml serve did not start listening: \(log)")
    }

    deinit {
        // SIGTERM first, so the gateway stops its backends; SIGKILL only if it does not exit.
        if !hasExited() {
            kill(pid, SIGTERM)
            if wait(seconds: 15) == nil {
                kill(pid, SIGKILL)
                _ = wait(seconds: 10)
            }
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// What it has written to standard error so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends a signal.
    public func signal(_ number: Int32) { kill(pid, number) }

    /// True once it has exited (and then reaps it).
    public func hasExited() -> Bool {
        if exitStatus != nil { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            return true
        }
        return false
    }

    /// Waits at most `seconds` for it to exit: its exit status, or nil if it still runs.
    public func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if hasExited() { return exitStatus }
            usleep(20_000)
        }
        return nil
    }

    /// Polls `condition` every 50 ms for at most `seconds`.
    public static func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }
}

/// One HTTP exchange made with curl: the status, the response headers (lower-cased names) and the body.
public struct HTTPExchange: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: String

    /// Sends a request with curl (`-d @-` from `body` when given).
    public static func send(
        _ url: String, method: String = "GET", body: String? = nil, headers: [String: String] = [:]
    ) throws -> HTTPExchange {
        var arguments = ["-s", "-i", "-X", method, "--max-time", "30", "-H", "Expect:"]
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("body-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        if let body {
            try Data(body.utf8).write(to: scratch)
            arguments += ["-H", "content-type: application/json", "--data-binary", "@" + scratch.path]
        }
        let result = try TempRepo.run("/usr/bin/curl", arguments + [url], in: "/", environment: [:])
        let text = result.stdout
        guard let split = text.range(of: "\r\n\r\n") else {
            return HTTPExchange(status: 0, headers: [:], body: result.stderr)
        }
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        let status = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPExchange(status: status, headers: fields, body: String(text[split.upperBound...]))
    }

    /// The body as JSON.
    public var json: JSONValue { (try? JSONParser.parse(body, source: "response")) ?? .null }
}
