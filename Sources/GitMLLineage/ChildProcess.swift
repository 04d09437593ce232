import Foundation
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// Finding and running programs.
enum Executable {
    /// The first executable named `command` on `path` (or `command` itself when it contains a slash).
    static func find(_ command: String, path: String?) -> String? {
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
    static func output(_ executable: String, _ arguments: [String]) throws -> String? {
        let result = try ChildProcess.run(
            executable: executable, arguments: [executable] + arguments,
            environment: ProcessInfo.processInfo.environment, directory: nil, echo: .none)
        return result.exitStatus == 0 ? String(decoding: result.stdout, as: UTF8.self) : nil
    }
}

/// What a finished child process did.
struct ChildResult {
    var exitStatus: Int32
    var signal: Int32?
    var stdout: [UInt8]
    var stderr: [UInt8]
    var durationSeconds: Double
    var peakMemoryBytes: Int64
    var truncated: Bool

    /// The status a shell would report: the exit code, or 128 + the signal.
    var shellStatus: Int32 { signal.map { 128 + $0 } ?? exitStatus }
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
enum ChildProcess {
    /// Most bytes kept per stream; the rest is still shown, and the record says the log was truncated.
    static let logLimit = 64 << 20

    static func run(
        executable: String, arguments: [String], environment: [String: String], directory: String?, echo: Echo
    ) throws -> ChildResult {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw StoreError("create a pipe", path: executable) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }

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

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // The terminal's Ctrl-C reaches the child; git-ml waits for it and records what happened.
        let oldInt = signal(SIGINT, SIG_IGN)
        let oldQuit = signal(SIGQUIT, SIG_IGN)
        defer {
            signal(SIGINT, oldInt)
            signal(SIGQUIT, oldQuit)
        }
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        var pid: pid_t = 0
        // glibc's addchdir_np is not visible to Swift: change directory around the spawn instead.
        let previous = FileManager.default.currentDirectoryPath
        if let directory, chdir(directory) != 0 { throw StoreError("enter", path: directory) }
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        if directory != nil { chdir(previous) }
        close(outPipe[1])
        close(errPipe[1])
        guard status == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            if status == ENOENT { throw LineageError.commandNotFound(arguments.first ?? executable) }
            throw LineageError.childFailed(String(cString: strerror(status)))
        }
        var result = ChildResult(
            exitStatus: 0, signal: nil, stdout: [], stderr: [], durationSeconds: 0, peakMemoryBytes: 0,
            truncated: false)
        pump(out: outPipe[0], err: errPipe[0], echo: echo, into: &result)
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

    /// Reads both pipes until they close, copying to ours as `echo` says.
    private static func pump(out: Int32, err: Int32, echo: Echo, into result: inout ChildResult) {
        var fds = [
            pollfd(fd: out, events: Int16(POLLIN), revents: 0), pollfd(fd: err, events: Int16(POLLIN), revents: 0),
        ]
        var buffer = [UInt8](repeating: 0, count: 65536)
        var open = 2
        while open > 0 {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    close(fds[i].fd)
                    fds[i].fd = -1
                    open -= 1
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
    }

    private static func keep(_ chunk: ArraySlice<UInt8>, in log: inout [UInt8], truncated: inout Bool) {
        let room = logLimit - log.count
        if chunk.count > room { truncated = true }
        log.append(contentsOf: chunk.prefix(max(0, room)))
    }
}
