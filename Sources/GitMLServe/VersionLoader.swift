import GitMLBasics
import GitMLGates
import GitMLLineage
import GitMLRegistry
import GitMLRollout
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// A model version the registry names, with its artifacts re-hashed and laid out for its backend.
public struct VerifiedVersion: Sendable {
    public let model: String
    public let version: Int
    /// The stage it is in now (or the version's own stage when pinned by number).
    public let stage: String
    public let run: String
    public let commit: String
    public let artifacts: [ModelArtifact]
    /// A directory of this gateway's own holding each artifact at its recorded path: hard links to the object
    /// store's copies (or copies of them) that were hashed after they were linked.
    public let directory: String
    /// The version file's digest: a served version is identified by it, so a re-registered file is a change.
    public let digest: String
    /// The golden files its gates' `probe` checks name, parsed, with the stage gated: replayed against the backend
    /// once it is healthy, before any request reaches it.
    public var goldenProbes: [(golden: String, probes: [GoldenProbe])] = []
    public var gatedStage = ""

    /// The absolute path of the artifact recorded at `path`.
    public func file(_ path: String) -> String { directory + "/" + path }
}

/// Reads the registry, re-derives the served stage's promotion and verifies artifacts: the only way a version
/// reaches a backend.
public struct VersionLoader: Sendable {
    public let root: String
    public let environment: [String: String]
    /// Examines a version's committed card for a gate that requires sections (handed in by the CLI).
    public let cardExaminer: GateRunner.CardExaminer?

    public init(
        root: String, environment: [String: String],
        cardExaminer: GateRunner.CardExaminer?
    ) {
        self.root = root
        self.environment = environment
        self.cardExaminer = cardExaminer
    }

    /// Which version `settings` names now, and its version file's digest (cheap: no hashing), to notice a change.
    public func current(_ settings: ServeConfig.ModelSettings) throws -> (version: Int, digest: String) {
        let (_, number, version) = try resolve(settings)
        return (number, version.file.digest)
    }

    /// The work tree, and the version the registry names for `settings` there.
    private func resolve(_ settings: ServeConfig.ModelSettings) throws -> (Workspace, Int, ModelState.VersionState) {
        let workspace = try Workspace(currentDirectory: root, environment: environment)
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(settings.name)
        guard let number = try? state.resolve(settings.reference), let version = state.versions[number] else {
            throw ServeError.nothingToServe(model: settings.name, reference: settings.reference)
        }
        return (workspace, number, version)
    }

    /// The version `settings` names, verified: for a stage, its gates are evaluated again under the work tree's
    /// policy (a forged stage event serves nothing); every artifact is hashed from the object store after it is
    /// linked where the backend will read it. `instance` keeps two gateways' directories apart. `gatesFor` has the
    /// gates of that stage evaluated for a version pinned by number (a rollout's candidate, for production).
    public func load(_ settings: ServeConfig.ModelSettings, instance: String, gatesFor: Stage? = nil) throws
        -> VerifiedVersion
    {
        let (workspace, number, version) = try resolve(settings)
        let relative = ".mlops/cache/serve/\(settings.name)/v\(number).\(instance)"
        let files = workspace.files
        let directory = try files.checked(relative)
        ScratchDirectory.remove(directory)
        try files.makeDirectories(relative)
        var goldenProbes: [(golden: String, probes: [GoldenProbe])] = []
        var gatedStage = ""
        do {
            let paths = Set(version.file.artifacts.map(\.path))
            for artifact in version.file.artifacts {
                let parts = artifact.path.split(separator: "/")
                let ancestors = parts.indices.dropLast().map { parts[...$0].joined(separator: "/") }
                guard paths.count == version.file.artifacts.count, !ancestors.contains(where: paths.contains) else {
                    throw ServeError.badArtifactPath(
                        model: settings.name, version: number, path: artifact.path,
                        detail: "listed twice, or inside another artifact")
                }
                try place(artifact, model: settings.name, version: number, in: relative, workspace: workspace)
            }
            if let stage = gatesFor ?? (settings.version == nil ? settings.stage : nil) {
                // Golden probes need the backend this version is about to get: collected here, replayed by
                // `Gateway.prepare` once it is healthy (a file that does not parse fails the gate now).
                let deferred = DeferredProbes()
                let (_, _, rows, _) = try GateRunner(
                    workspace: workspace, cardExaminer: cardExaminer, probeExaminer: deferred.collect
                ).evaluate(settings.name, version: String(number), stage: stage, artifactsVerified: [])
                let failed = rows.filter { !$0.passed }
                if !failed.isEmpty {
                    throw ServeError.promotionUnverified(
                        model: settings.name, version: number, stage: stage.rawValue,
                        reasons: failed.map { "\($0.check): \($0.detail.isEmpty ? $0.observed : $0.detail)" })
                }
                goldenProbes = deferred.files
                gatedStage = stage.rawValue
            }
        } catch {
            ScratchDirectory.remove(directory)
            throw error
        }
        let record = try? RunStore(workspace: workspace).read(version.file.run)
        var verified = VerifiedVersion(
            model: settings.name, version: number, stage: version.stage.rawValue, run: version.file.run,
            commit: record?.record["git"]?["commit"]?.string ?? "", artifacts: version.file.artifacts,
            directory: directory, digest: version.file.digest)
        verified.goldenProbes = goldenProbes
        verified.gatedStage = gatedStage
        return verified
    }

    /// Links (else copies) the stored object to `directory/<recorded path>` and hashes what was placed.
    private func place(
        _ artifact: ModelArtifact, model: String, version: Int, in directory: String, workspace: Workspace
    ) throws {
        let parts = artifact.path.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
            SHA256.isDigest(artifact.sha256)
        else {
            throw ServeError.lineageMismatch(
                model: model, version: version, path: artifact.path, expected: artifact.sha256,
                actual: "an invalid path")
        }
        let files = workspace.files
        let object = ".mlops/cache/objects/\(artifact.sha256)"
        let source: Int32
        do {
            source = try files.open(object, flags: O_RDONLY | O_CLOEXEC)
        } catch {
            throw ServeError.objectMissing(model: model, version: version, path: artifact.path, sha256: artifact.sha256)
        }
        defer { close(source) }
        if parts.count > 1 { try files.makeDirectories(directory + "/" + parts.dropLast().joined(separator: "/")) }
        let target = try files.checked(directory + "/" + artifact.path)
        // Link the very file that was opened (not a name that could be swapped), else copy the store's file (a
        // shared store, another file system): either way what was placed is hashed below.
        if linkat(AT_FDCWD, "/proc/self/fd/\(source)", AT_FDCWD, target, AT_SYMLINK_FOLLOW) != 0 {
            try FileCopy.file(from: try files.checked(object), to: target, mode: 0o444, durable: false)
        }
        try Self.check(target, against: artifact, model: model, version: version)
    }

    /// Hashes `file` and throws `lineageMismatch` unless its digest and size are the registry's for `artifact`.
    private static func check(_ file: String, against artifact: ModelArtifact, model: String, version: Int) throws {
        let (sha256, size) = try FileHasher().hash(path: file)
        guard sha256 == artifact.sha256, size == artifact.size else {
            throw ServeError.lineageMismatch(
                model: model, version: version, path: artifact.path, expected: artifact.sha256,
                actual: size == artifact.size ? sha256 : "\(sha256) (\(size) bytes, not \(artifact.size))")
        }
    }

    /// Hashes the placed copies again (before a backend is restarted on them): the store's object is the same file,
    /// and whoever can write it could have changed it since the version was loaded.
    public static func reverify(_ verified: VerifiedVersion) throws {
        for artifact in verified.artifacts {
            try check(verified.file(artifact.path), against: artifact, model: verified.model, version: verified.version)
        }
    }

    /// Removes directories left by gateways that are gone (their process id no longer runs), and stops the backends
    /// such a gateway left running (found by the `GIT_ML_ARTIFACTS` it gave them), which would hold their port and
    /// serve nobody.
    public func sweep() {
        let files = Beneath(root: root)
        guard (try? files.isDirectory(".mlops/cache/serve")) == true else { return }
        var dead: [String] = []
        for model in (try? files.list(".mlops/cache/serve")) ?? [] {
            for entry in (try? files.list(".mlops/cache/serve/\(model)")) ?? [] {
                guard let dot = entry.lastIndex(of: "."), let pid = Int32(entry[entry.index(after: dot)...]) else {
                    continue
                }
                if kill(pid, 0) != 0 && errno == ESRCH,
                    let directory = try? files.checked(".mlops/cache/serve/\(model)/\(entry)")
                {
                    dead.append(directory)
                }
            }
        }
        guard !dead.isEmpty else { return }
        let marks = Set(dead.map { "GIT_ML_ARTIFACTS=" + $0 })
        for process in FileSystem.list("/proc") {
            guard let pid = Int32(process), pid != getpid(),
                let environment = try? AtomicFile.read("/proc/\(process)/environ", limit: 1 << 20)
            else { continue }
            if environment.split(separator: 0).contains(where: { marks.contains(String(decoding: $0, as: UTF8.self)) })
            {
                let group = getpgid(pid)
                if group > 1 && group != getpgrp() { ChildProcess.signalGroup(group, SIGKILL) }
            }
        }
        for directory in dead { ScratchDirectory.remove(directory) }
    }
}

/// The `probe` checks a gate evaluation meets before the backend runs: each golden file parsed and kept for
/// `Gateway.prepare` to replay; one that does not parse is the check's failure.
private final class DeferredProbes {
    var files: [(golden: String, probes: [GoldenProbe])] = []

    func collect(_ model: String, _ version: Int, _ digest: String, _ golden: String, _ bytes: [UInt8]) -> [String] {
        do {
            files.append((golden, try GoldenProbe.parse(bytes, source: golden)))
            return []
        } catch let error as GitMLError {
            return [error.message]
        } catch {
            return ["\(golden): \(error)"]
        }
    }
}
