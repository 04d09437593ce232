import Foundation
import GitMLBasics
import GitMLGit
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// What a user asked to record.
public struct RecordRequest: Sendable {
    public var data: [String] = []
    public var artifacts: [String] = []
    public var params: [String] = []
    public var metrics: [String] = []
    public var metricsFiles: [String] = []
    public var seed: UInt32?
    public var parents: [String] = []
    /// Tables to profile for drift detection (`--profile data/train.csv`), stored under `.mlops/profiles`.
    public var profiles: [String] = []
    /// The run this one re-runs (`git ml reproduce`), recorded as `reproduces`.
    public var reproduces: String?
    /// Where the child's output is copied as it comes.
    public var echo: Echo = .same
    /// The command's environment; nil: git-ml's own (a reproduction passes a minimal one).
    public var childEnvironment: [String: String]?

    public init() {}
}

/// A record written.
public struct RecordOutcome: Sendable {
    /// The new record's id.
    public let id: String
    /// The record written.
    public let record: JSONValue
    /// For `run`: the status to exit with (the child's, or 128 + its signal).
    public let childStatus: Int32?
    /// Lines worth telling the user (artifacts stored, links made read-only, artifacts not produced).
    public let notes: [String]
}

/// Builds and writes run records: `snapshot` (what is on disk now) and `run` (a real child process).
public final class Recorder {
    private let workspace: Workspace
    private let progress: (@Sendable (HashProgress) -> Void)?
    private let scanner: SecretScanner

    public init(workspace: Workspace, progress: (@Sendable (HashProgress) -> Void)? = nil) {
        self.workspace = workspace
        self.progress = progress
        scanner = SecretScanner(environment: workspace.environment)
    }

    /// Everything captured before a command runs.
    private struct Before {
        var record: [String: JSONValue]
        var artifactPaths: [String]
        var params: [String: JSONValue]
    }

    /// Records the state on disk now, with the given params, metrics and seed.
    public func snapshot(_ request: RecordRequest) throws -> RecordOutcome {
        var before = try capture(request, kind: "snapshot", interpreter: nil)
        var metrics = try explicitMetrics(request)
        metrics.merge(try fileMetrics(request)) { explicit, _ in explicit }
        before.record["metrics"] = .object(metrics)
        before.record["metric_steps"] = .object([:])
        before.record["status"] = .string("recorded")
        if let seed = request.seed {
            before.record["seed"] = .object([
                "value": .int(Int64(seed)), "source": .string("cli"), "exported_as": .array([]),
            ])
        }
        let (artifacts, notes) = try storeArtifacts(before.artifactPaths, mustExist: true)
        before.record["artifacts"] = .array(artifacts)
        let id = try PerformanceTrace.measure("write record") { try write(before.record) }
        return RecordOutcome(id: id, record: .object(before.record), childStatus: nil, notes: notes)
    }

    /// Runs `command` as a real child process with the seed exported, and records it, failed or not.
    public func run(_ request: RecordRequest, command: [String]) throws -> RecordOutcome {
        guard let program = command.first else {
            throw LineageError.badArgument("no command to run", hint: "put it after --: git ml run -- python3 train.py")
        }
        guard let executable = Executable.find(program, path: workspace.environment["PATH"]) else {
            throw LineageError.commandNotFound(program)
        }
        let config = try workspace.config.get()
        let name = program.split(separator: "/").last.map(String.init) ?? program
        let interpreter = name.hasPrefix("python") ? program : config.python
        var before = try capture(request, kind: "run", interpreter: interpreter)
        // Artifacts from an earlier run may be hard links into the store: give the command private copies.
        for path in before.artifactPaths { try workspace.objects.detach(workspace.absolute(path)) }

        let seed = request.seed ?? UInt32.random(in: 0...UInt32(Int32.max))
        let metricsFile =
            "\(workspace.cacheDirectory)/tmp/metrics-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        try AtomicFile.makeDirectories(AtomicFile.parent(of: metricsFile))
        defer { unlink(metricsFile) }
        var environment = request.childEnvironment ?? workspace.environment
        environment["GIT_ML_SEED"] = String(seed)
        environment["PYTHONHASHSEED"] = String(seed)
        environment["GIT_ML_METRICS"] = metricsFile
        environment["GIT_ML_PARAMS"] = JSONWriter.compact(.object(before.params))

        let result = try ChildProcess.run(
            executable: executable, arguments: command, environment: environment,
            directory: workspace.currentDirectory, echo: request.echo)

        let stdout = try workspace.objects.put(bytes: scanner.redact(bytes: result.stdout))
        let stderr = try workspace.objects.put(bytes: scanner.redact(bytes: result.stderr))
        let cwd =
            RepositoryPath.relativePath(
                RepositoryPath.real(workspace.currentDirectory) ?? workspace.currentDirectory,
                under: RepositoryPath.real(workspace.root) ?? workspace.root) ?? ""
        before.record["command"] = .object([
            "argv": .array(scanner.redact(arguments: command).map(JSONValue.string)),
            "cwd": .string(cwd),
            "exit_status": result.signal == nil ? .int(Int64(result.exitStatus)) : .null,
            "signal": result.signal.map { .int(Int64($0)) } ?? .null,
            "duration_seconds": .double((result.durationSeconds * 1000).rounded() / 1000),
            "peak_memory_bytes": .int(result.peakMemoryBytes),
            "stdout": .object(["sha256": .string(stdout), "size": .int(Int64(result.stdout.count))]),
            "stderr": .object(["sha256": .string(stderr), "size": .int(Int64(result.stderr.count))]),
            "log_truncated": .bool(result.truncated),
        ])
        let succeeded = result.signal == nil && result.exitStatus == 0
        before.record["status"] = .string(succeeded ? "succeeded" : "failed")
        before.record["seed"] = .object([
            "value": .int(Int64(seed)), "source": .string(request.seed == nil ? "generated" : "cli"),
            "exported_as": .array([.string("GIT_ML_SEED"), .string("PYTHONHASHSEED")]),
        ])
        let child = try Measurements.childMetrics(metricsFile)
        var metrics = try explicitMetrics(request)
        metrics.merge(try fileMetrics(request)) { explicit, _ in explicit }
        metrics.merge(child.final) { explicit, _ in explicit }
        before.record["metrics"] = .object(metrics)
        before.record["metric_steps"] = .object(child.steps)
        if let original = request.reproduces { before.record["reproduces"] = .string(original) }
        let (artifacts, notes) = try storeArtifacts(before.artifactPaths, mustExist: false)
        before.record["artifacts"] = .array(artifacts)
        let id = try write(before.record)
        return RecordOutcome(id: id, record: .object(before.record), childStatus: result.shellStatus, notes: notes)
    }

    // MARK: the parts

    private func capture(_ request: RecordRequest, kind: String, interpreter: String?) throws -> Before {
        let config = try workspace.config.get()
        let requested = request.data.isEmpty ? config.data.map { RepositoryPath.normalize($0) } : request.data
        let dataPaths = try requested.map { path in
            try request.data.isEmpty
                ? RepositoryPath.resolve(path, root: workspace.root, currentDirectory: workspace.root)
                : workspace.resolve(path)
        }
        let artifactPaths = try request.artifacts.map { try workspace.resolveRecordable($0) }
        let parents = try request.parents.map { try RunStore(workspace: workspace).resolve($0) }
        var params = try paramsFile()
        for text in request.params {
            let (name, value) = try Measurements.param(text)
            params[name] = value
        }
        params = params.reduce(into: [:]) { out, item in
            if case .string(let text) = item.value {
                out[item.key] = .string(scanner.redact(value: text, name: item.key))
            } else {
                out[item.key] = SecretScanner.isSecretName(item.key) ? .string(SecretScanner.redacted) : item.value
            }
        }
        let git = try PerformanceTrace.measure("git state") { try gitState(excluding: dataPaths + artifactPaths) }
        let data = try PerformanceTrace.measure("hash data") {
            try DataHasher(workspace: workspace, progress: progress).hash(dataPaths)
        }
        let environment = try PerformanceTrace.measure("environment") {
            try EnvironmentCapture(workspace: workspace, config: config, scanner: scanner)
                .capture(interpreter: interpreter ?? config.python)
        }
        let owner = workspace.repository.identity.map {
            JSONValue.object(["name": .string(scanner.redact($0.name)), "email": .string(scanner.redact($0.email))])
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let record: [String: JSONValue] = [
            "schema_version": .int(RecordSchema.version),
            "kind": .string(kind),
            "created": .string(Timestamp.now()),
            "nonce": .string(
                bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
                    .joined()),
            "owner": owner ?? .null,
            "git": git,
            "data": .array(data.map(\.json)),
            "environment": environment,
            "params": .object(params),
            "seed": .null,
            "profiles": .array(
                try request.profiles.map { path in
                    let (id, profile) = try ProfileStore(workspace: workspace).profile(path)
                    return ProfileStore.reference(id: id, profile: profile)
                }),
            "parents": .array(parents.map(JSONValue.string)),
        ]
        return Before(record: record, artifactPaths: artifactPaths, params: params)
    }

    private func paramsFile() throws -> [String: JSONValue] {
        // Read beneath the work tree: a committed params.yaml linked out of it is refused, not read into the record.
        guard try workspace.files.exists("params.yaml") else { return [:] }
        let value = try Measurements.parseStructured(
            try workspace.files.read("params.yaml", limit: Measurements.fileLimit), json: false,
            displayName: "params.yaml")
        guard case .object = value else {
            if value == .null { return [:] }
            throw InputError.malformed(source: "params.yaml", detail: "expected a mapping of parameter names")
        }
        return value.flattened()
    }

    private func explicitMetrics(_ request: RecordRequest) throws -> [String: JSONValue] {
        var metrics: [String: JSONValue] = [:]
        for text in request.metrics {
            let (name, value) = try Measurements.metric(text)
            metrics[name] = value
        }
        return metrics
    }

    private func fileMetrics(_ request: RecordRequest) throws -> [String: JSONValue] {
        var metrics: [String: JSONValue] = [:]
        for file in request.metricsFiles {
            let relative = try workspace.resolve(file)
            metrics.merge(try Measurements.metrics(fromFile: workspace.absolute(relative), displayName: file)) {
                _, new in new
            }
        }
        return metrics
    }

    private func gitState(excluding recorded: [String]) throws -> JSONValue {
        let repository = workspace.repository
        let state = try repository.workTreeState(excluding: [".mlops"] + recorded)
        // The patch restores the code, never a secret: untracked files named like secrets (.env, *.pem, id_rsa, ...)
        // are left out, untracked binaries are recorded by digest rather than content, and the lines the patch adds
        // are scanned (each replacement noted, so a reproduction can say where its tree differs). A tree dirty only
        // by large untracked files has nothing to patch: they are listed in omitted_from_patch.
        var pieces: [UInt8] = []
        var redactions: [JSONValue] = []
        var leftOut: [JSONValue] = []
        for file in state.files where !file.omitted {
            // Binary content cannot be scanned (any encoding hides a token), so no binary goes in, tracked or not.
            if file.binary || (file.untracked && SecretScanner.isSecretFileName(file.path)) {
                var item: [String: JSONValue] = [
                    "path": .string(file.path), "reason": .string(file.binary ? "binary" : "secret file"),
                ]
                if file.binary, let hashed = try? FileHasher().hash(path: try workspace.files.checked(file.path)) {
                    item["sha256"] = .string(hashed.sha256)
                    item["size"] = .int(hashed.size)
                }
                leftOut.append(.object(item))
                continue
            }
            let (clean, lines) = scanner.redact(patch: file.patch)
            for line in lines { redactions.append(.object(["path": .string(file.path), "line": .int(Int64(line))])) }
            pieces += clean
        }
        var patch: JSONValue = .null
        if !pieces.isEmpty {
            let digest = try SHA256.hex(of: pieces)
            try workspace.files.writeIfAbsent(pieces, to: ".mlops/patches/\(digest)")
            patch = .string(digest)
        }
        let remote = try repository.remoteURL().map { scanner.redact(url: $0) }
        return .object([
            "commit": try repository.headCommit().map(JSONValue.string) ?? .null,
            "branch": try repository.currentBranch().map(JSONValue.string) ?? .null,
            "dirty": .bool(state.isDirty),
            "changed_paths": .array(state.changedPaths.prefix(200).map(JSONValue.string)),
            "changed_count": .int(Int64(state.changedPaths.count)),
            "patch": patch,
            "omitted_from_patch": .array(state.omitted.prefix(200).map(JSONValue.string)),
            "left_out_of_patch": .array(Array(leftOut.prefix(200))),
            "patch_redactions": .array(Array(redactions.prefix(1000))),
            "remote": remote.map(JSONValue.string) ?? .null,
        ])
    }

    private func storeArtifacts(_ paths: [String], mustExist: Bool) throws -> ([JSONValue], [String]) {
        var notes: [String] = []
        var entries: [JSONValue] = []
        let present = paths.filter { FileSystem.exists(workspace.absolute($0)) }
        for path in paths where !present.contains(path) {
            if mustExist { throw PathError.notFound(path: path) }
            notes.append("artifact \(path) was not produced; recorded as missing")
            entries.append(.object(["path": .string(path), "missing": .bool(true)]))
        }
        let hasher = DataHasher(workspace: workspace, progress: progress)
        let hardLink = try workspace.config.get().hardLinkArtifacts
        for pointer in try hasher.hash(present) {
            if pointer.type == "directory" {
                for entry in try hasher.manifest(of: pointer).entries where entry.type == "f" {
                    try workspace.objects.put(
                        file: try workspace.files.checked(pointer.path + "/" + entry.path), sha256: entry.sha256,
                        hardLink: hardLink)
                }
            } else if pointer.type == "file" {
                let placement = try workspace.objects.put(
                    file: try workspace.files.checked(pointer.path), sha256: pointer.sha256, hardLink: hardLink)
                if placement == .hardLinked {
                    notes.append(
                        "stored \(pointer.path) by hard link and made it read-only, so the stored bytes cannot change")
                }
            }
            var entry = pointer.json
            if case .object(var members) = entry {
                members["stored"] = .bool(true)
                entry = .object(members)
            }
            entries.append(entry)
        }
        return (entries, notes)
    }

    /// Writes the record under the digest of its bytes and indexes it.
    private func write(_ record: [String: JSONValue]) throws -> String {
        let clean = scrub(.object(record))
        let bytes = Array(JSONWriter.pretty(clean).utf8)
        let id = try SHA256.hex(of: bytes)
        try workspace.files.writeIfAbsent(bytes, to: ".mlops/runs/\(id).json")
        try? RunIndex(workspace: workspace).add(id: id, record: clean)
        return id
    }

    /// A last pass over every string in the record, so no secret reaches disk through a field not yet thought of.
    private func scrub(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let s): return .string(scanner.redact(s))
        case .array(let items): return .array(items.map(scrub))
        case .object(let members): return .object(members.mapValues(scrub))
        default: return value
        }
    }
}
