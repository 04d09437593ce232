import Foundation
import GitMLBasics

#if canImport(Glibc)
    import Glibc
#endif

/// The outcome of running a program.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// A unique temporary git repository per test, with git isolated from the developer's configuration:
/// GIT_CONFIG_GLOBAL points at a file of its own, GIT_CONFIG_SYSTEM at /dev/null, identity pinned,
/// signing off and the default branch `main`.
public final class TempRepo: @unchecked Sendable {
    /// The work tree.
    public let root: String
    /// The environment every command in this repo runs with.
    public var environment: [String: String]

    /// Makes the repository with one empty commit.
    public init(name: String = #function, commit: Bool = true) throws {
        let base = FileManager.default.temporaryDirectory.path + "/git-ml-tests"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let slug = name.filter { $0.isLetter || $0.isNumber }.prefix(40)
        root = base + "/\(slug)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let config = root + ".gitconfig"
        try
            "[user]\n\tname = Test User\n\temail = test@example.com\n[commit]\n\tgpgsign = false\n[init]\n\tdefaultBranch = main\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["GIT_CONFIG_GLOBAL"] = config
        env["GIT_CONFIG_SYSTEM"] = "/dev/null"
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        env["NO_COLOR"] = "1"
        for key in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"] { env[key] = nil }
        environment = env
        try git("init", "-q")
        if commit { try git("commit", "-q", "--allow-empty", "-m", "initial") }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
        for suffix in ["-origin.git", "-other.git"] { try? FileManager.default.removeItem(atPath: root + suffix) }
    }

    /// Runs git in the repository; throws when it fails.
    @discardableResult
    public func git(_ arguments: String...) throws -> String {
        let result = try Self.run("/usr/bin/git", arguments, in: root, environment: environment)
        guard result.status == 0 else { throw TestFailure("git \(arguments.joined(separator: " ")): \(result.stderr)") }
        return result.stdout
    }

    /// Writes a file (creating directories) relative to the root.
    public func write(_ path: String, _ text: String) throws {
        try write(path, Data(text.utf8))
    }

    public func write(_ path: String, _ data: Data) throws {
        let url = URL(fileURLWithPath: root + "/" + path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    /// Makes a bare repository beside this one and adds it as remote `name`; returns its path.
    @discardableResult
    public func addBareRemote(_ name: String = "origin") throws -> String {
        let path = root + "-\(name).git"
        let result = try Self.run("/usr/bin/git", ["init", "-q", "--bare", path], in: root, environment: environment)
        guard result.status == 0 else { throw TestFailure("git init --bare: \(result.stderr)") }
        try git("remote", "add", name, path)
        return path
    }

    /// Stages everything and commits it.
    public func commitAll(_ message: String) throws {
        try git("add", "-A")
        try git("commit", "-qm", message)
    }

    /// The commit `branch` points to on remote `origin`, as `git ls-remote` says ("" when it has none).
    public func remoteTip(_ branch: String = "main") throws -> String {
        try git("ls-remote", "origin", "refs/heads/\(branch)").split(separator: "\t").first.map(String.init) ?? ""
    }

    /// HEAD's commit.
    public func head() throws -> String {
        try git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs git and returns its outcome whatever it is (for commands expected to fail, like a refused push).
    public func gitResult(_ arguments: String...) throws -> ProcessOutput {
        try Self.run("/usr/bin/git", arguments, in: root, environment: environment)
    }

    /// Puts the built `git-ml` first on PATH, so git hooks that call `git-ml` find it.
    public func putGitMLOnPath() {
        let directory = URL(fileURLWithPath: Self.binary).deletingLastPathComponent().path
        environment["PATH"] = directory + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
    }

    /// Reads a file relative to the root.
    public func read(_ path: String) throws -> String { try String(contentsOfFile: root + "/" + path, encoding: .utf8) }

    /// Every file below `path` (relative), recursively.
    public func files(under path: String) -> [String] {
        let base = root + "/" + path
        guard let walker = FileManager.default.enumerator(atPath: base) else { return [] }
        return walker.compactMap { item in
            guard let name = item as? String else { return nil }
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: base + "/" + name, isDirectory: &isDirectory)
            return !exists || isDirectory.boolValue ? nil : path + "/" + name
        }
    }

    /// Runs the built `git-ml` with `arguments` in `directory` (relative to the root).
    @discardableResult
    public func gitML(_ arguments: [String], in directory: String = "", environment extra: [String: String] = [:])
        throws -> ProcessOutput
    {
        var env = environment
        env.merge(extra) { _, new in new }
        return try Self.run(
            Self.binary, arguments, in: directory.isEmpty ? root : root + "/" + directory, environment: env)
    }

    /// The `git-ml` built beside the test bundle (or `GIT_ML_BIN`).
    public static var binary: String {
        if let override = ProcessInfo.processInfo.environment["GIT_ML_BIN"] { return override }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("git-ml").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/debug/git-ml").path
    }

    /// The SHA-256 of `bytes` in hex (by sha256sum, an independent implementation).
    public static func sha256(_ bytes: [UInt8]) throws -> String {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
        try Data(bytes).write(to: scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = try run("/usr/bin/sha256sum", [scratch.path], in: "/", environment: [:])
        return String(out.stdout.prefix(64))
    }

    /// Writes `text` as a content-addressed file `<directory>/<sha256><suffix>` (a hand-made run record, patch or
    /// event, as an attacker would commit it) and returns the digest.
    @discardableResult
    public func writeAddressed(_ text: String, in directory: String, suffix: String = "") throws -> String {
        let digest = try Self.sha256(Array(text.utf8))
        try write("\(directory)/\(digest)\(suffix)", text)
        return digest
    }

    /// A program started and not yet waited for (to run several at once).
    public final class Running: @unchecked Sendable {
        let process: Process
        let out: Pipe
        let err: Pipe

        init(process: Process, out: Pipe, err: Pipe) {
            self.process = process
            self.out = out
            self.err = err
        }

        /// Its process id (to signal it).
        public var processIdentifier: Int32 { process.processIdentifier }

        /// Kills it (SIGKILL: a child of Foundation's Process may start with SIGTERM blocked) and reaps it.
        public func kill() {
            guard process.isRunning else { return }
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        /// Waits for it to end and collects its output.
        public func wait() throws -> ProcessOutput {
            let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
            let stderrData = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return ProcessOutput(
                status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                stderr: String(decoding: stderrData, as: UTF8.self))
        }
    }

    /// Starts a program and returns at once.
    public static func start(
        _ executable: String, _ arguments: [String], in directory: String, environment: [String: String]
    ) throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Running(process: process, out: out, err: err)
    }

    /// Runs a program to completion and collects its output.
    public static func run(
        _ executable: String, _ arguments: [String], in directory: String, environment: [String: String]
    ) throws -> ProcessOutput {
        try start(executable, arguments, in: directory, environment: environment).wait()
    }
}

/// Outside tools some tests drive for real (DVC, pre-commit, lefthook), from the virtualenv scripts/test-tools makes.
public enum TestTools {
    /// The virtualenv's bin directory.
    public static var directory: String {
        if let override = ProcessInfo.processInfo.environment["GIT_ML_TEST_TOOLS"] { return override }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/test-tools/bin").path
    }

    /// The tool's path, or nil when scripts/test-tools could not install it (no PyPI).
    public static func path(_ name: String) -> String? {
        let candidate = directory + "/" + name
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }
}

/// A failure inside a test helper.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A command's JSON output, parsed (for `--json` assertions).
public func json(_ text: String) throws -> JSONValue { try JSONParser.parse(text, source: "output") }
