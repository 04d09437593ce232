internal import CSystemShims

#if canImport(Glibc)
    import Glibc
#endif

/// Finding and running programs.
public enum Executable {
    /// The first executable named `command` on `path` (or `command` itself when it contains a slash).
    public static func find(_ command: String, path: String?) -> String? {
        if command.contains("/") { return access(command, X_OK) == 0 ? command : nil }
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(command)"
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// The standard output of a short helper command (nvidia-smi, python -c), or nil when it fails.
    public static func output(_ executable: String, _ arguments: [String], environment: [String: String]) throws
        -> String?
    {
        let result = try ChildProcess.run(
            executable: executable, arguments: [executable] + arguments, environment: environment, directory: nil,
            echo: .none)
        return result.exitStatus == 0 ? String(decoding: result.stdout, as: UTF8.self) : nil
    }
}

/// A child process that could not be started.
public enum ProcessError: GitMLError {
    case notFound(String)
    case cannotStart(String, detail: String)

    public var message: String {
        switch self {
        case .notFound(let command): return "command not found: \(command)"
        case .cannotStart(let command, let detail): return "could not start \(command): \(detail)"
        }
    }
    public var hint: String {
        switch self {
        case .notFound: return "check the command's spelling and PATH"
        case .cannotStart: return "check the command and its permissions"
        }
    }
    public var code: String {
        switch self {
        case .notFound: return "command-not-found"
        case .cannotStart: return "spawn-failed"
        }
    }
}

/// What a finished child process did.
public struct ChildResult: Sendable {
    public var exitStatus: Int32
    public var signal: Int32?
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var durationSeconds: Double
    public var peakMemoryBytes: Int64
    public var truncated: Bool

    /// The status a shell would report: the exit code, or 128 + the signal.
    public var shellStatus: Int32 { signal.map { 128 + $0 } ?? exitStatus }
    /// Standard output as text, without a trailing newline.
    public var outputText: String {
        var text = String(decoding: stdout, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
    /// The last line of standard error, for one-line messages.
    public var errorLine: String {
        String(decoding: stderr, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    }
}

/// Where a child's output is copied as it comes (it is kept either way).
public enum Echo: Sendable {
    /// Not copied.
    case none
    /// Its stdout to our stdout, its stderr to our stderr.
    case same
    /// Both to our stderr (our stdout stays clean for --json).
    case stderr
}

/// Runs a real child process, copying its output to ours as it comes (see `Echo`) while keeping it.
public enum ChildProcess {
    /// Most bytes kept per stream; the rest is still shown, and the record says the log was truncated.
    public static let logLimit = 64 << 20

    /// Runs `executable` with `arguments` (argv, its name first) in `directory` (nil: ours). `input`, when given,
    /// is written to the child's standard input, which is then closed; nil lets the child share ours.
    public static func run(
        executable: String, arguments: [String], environment: [String: String], directory: String?, echo: Echo,
        input: [UInt8]? = nil
    ) throws -> ChildResult {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        var inPipe: [Int32] = [-1, -1]
        // Close-on-exec, so a child started at the same time on another thread does not inherit this child's
        // pipes (it would hold the write end of this one's stdin open, and both would wait forever).
        guard gitml_pipe_cloexec(&outPipe) == 0, gitml_pipe_cloexec(&errPipe) == 0,
            input == nil || gitml_pipe_cloexec(&inPipe) == 0
        else {
            throw ProcessError.cannotStart(executable, detail: String(cString: strerror(errno)))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        if input != nil { posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0) }
        gitml_spawn_file_actions_addclosefrom(&actions, 3)
        if let directory { gitml_spawn_file_actions_addchdir(&actions, directory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGQUIT)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        // The terminal's Ctrl-C reaches the child; git-ml waits for it and records what happened.
        let oldInt = signal(SIGINT, SIG_IGN)
        let oldQuit = signal(SIGQUIT, SIG_IGN)
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        defer {
            signal(SIGINT, oldInt)
            signal(SIGQUIT, oldQuit)
            signal(SIGPIPE, oldPipe)
        }
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let pid: pid_t
        do {
            defer {
                close(outPipe[1])
                close(errPipe[1])
                if inPipe[0] >= 0 { close(inPipe[0]) }
            }
            pid = try launch(executable, arguments, environment, &actions, &attributes)
        } catch {
            for fd in [outPipe[0], errPipe[0], inPipe[1]] where fd >= 0 { close(fd) }
            throw error
        }
        var result = ChildResult(
            exitStatus: 0, signal: nil, stdout: [], stderr: [], durationSeconds: 0, peakMemoryBytes: 0,
            truncated: false)
        pump(out: outPipe[0], err: errPipe[0], input: (inPipe[1], input ?? []), echo: echo, into: &result)
        var waitStatus: Int32 = 0
        var usage = rusage()
        while wait4(pid, &waitStatus, 0, &usage) < 0 && errno == EINTR {}
        var end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &end)
        result.durationSeconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
        result.peakMemoryBytes = Int64(usage.ru_maxrss) * 1024
        if waitStatus & 0x7F == 0 {
            result.exitStatus = (waitStatus >> 8) & 0xFF
        } else {
            result.signal = waitStatus & 0x7F
            result.exitStatus = -1
        }
        return result
    }

    /// Starts `executable` and returns at once with its pid: a long-running child (a model server) that writes
    /// both of its streams to our standard error, reads nothing, and leads a process group of its own, so that
    /// `signalGroup` reaches whatever it starts. The caller reaps it (`waitpid`).
    public static func spawn(
        executable: String, arguments: [String], environment: [String: String], directory: String?
    ) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        // None of ours: a backend holding the gateway's listening socket could accept its clients, and would keep
        // the port after the gateway is gone.
        gitml_spawn_file_actions_addclosefrom(&actions, 3)
        if let directory { gitml_spawn_file_actions_addchdir(&actions, directory) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGHUP] { sigaddset(&defaults, number) }
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        return try launch(executable, arguments, environment, &actions, &attributes)
    }

    /// `posix_spawn` with C copies of the argument and environment strings; its failure as a `ProcessError`.
    private static func launch(
        _ executable: String, _ arguments: [String], _ environment: [String: String],
        _ actions: inout posix_spawn_file_actions_t, _ attributes: inout posix_spawnattr_t
    ) throws -> pid_t {
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            if status == ENOENT { throw ProcessError.notFound(arguments.first ?? executable) }
            throw ProcessError.cannotStart(arguments.first ?? executable, detail: String(cString: strerror(status)))
        }
        return pid
    }

    /// Sends `number` to the process group a `spawn`ed child leads (the child and what it started).
    public static func signalGroup(_ pid: Int32, _ number: Int32) {
        if pid > 0 { _ = kill(-pid, number) }
    }

    /// Feeds the input and reads both pipes until they close, copying to ours as `echo` says.
    private static func pump(
        out: Int32, err: Int32, input: (fd: Int32, bytes: [UInt8]), echo: Echo, into result: inout ChildResult
    ) {
        var fds = [
            pollfd(fd: out, events: Int16(POLLIN), revents: 0), pollfd(fd: err, events: Int16(POLLIN), revents: 0),
            pollfd(fd: input.fd, events: Int16(POLLOUT), revents: 0),
        ]
        var written = 0
        // Non-blocking, so a child that stops reading cannot stall us while its output waits to be read.
        if input.fd >= 0 { _ = fcntl(input.fd, F_SETFL, fcntl(input.fd, F_GETFL) | O_NONBLOCK) }
        if input.fd >= 0 && input.bytes.isEmpty {
            close(input.fd)
            fds[2].fd = -1
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while fds[0].fd >= 0 || fds[1].fd >= 0 {
            if poll(&fds, 3, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[2].fd >= 0 && fds[2].revents != 0 {
                let n = input.bytes.withUnsafeBytes { raw in
                    write(fds[2].fd, raw.baseAddress.map { $0 + written }, raw.count - written)
                }
                if n > 0 { written += n }
                if (n < 0 && errno != EINTR && errno != EAGAIN) || written == input.bytes.count {
                    close(fds[2].fd)
                    fds[2].fd = -1
                }
            }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    close(fds[i].fd)
                    fds[i].fd = -1
                    continue
                }
                let chunk = buffer[0..<n]
                if echo != .none {
                    _ = chunk.withUnsafeBytes { write(i == 0 && echo == .same ? 1 : 2, $0.baseAddress, n) }
                }
                if i == 0 {
                    keep(chunk, in: &result.stdout, truncated: &result.truncated)
                } else {
                    keep(chunk, in: &result.stderr, truncated: &result.truncated)
                }
            }
        }
        if fds[2].fd >= 0 { close(fds[2].fd) }
    }

    private static func keep(_ chunk: ArraySlice<UInt8>, in log: inout [UInt8], truncated: inout Bool) {
        let room = logLimit - log.count
        if chunk.count > room { truncated = true }
        log.append(contentsOf: chunk.prefix(max(0, room)))
    }
}
