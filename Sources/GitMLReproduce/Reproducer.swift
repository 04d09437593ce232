import Foundation
import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLStore

/// How strict a reproduction is, and where it finds what it needs.
public struct ReproduceOptions: Sendable {
    /// The absolute difference allowed for every metric without its own tolerance.
    public var tolerance: Double = 1e-6
    /// Per-metric absolute tolerances (`--tolerance acc=0.002`).
    public var metricTolerances: [String: Double] = [:]
    /// Keep the temporary work tree for inspection.
    public var keep = false
    /// Where the recorded data paths are found when not in the work tree (an archive, a mounted volume).
    public var dataRoot: String?
    /// Where the command's output is copied as it runs.
    public var echo: Echo = .stderr
    /// Variables of the auditor's environment passed to the re-run on purpose (`--pass-env NAME`).
    public var passEnvironment: [String] = []

    public init() {}
}

/// The outcome of a reproduction.
public enum Verdict: String, Sendable {
    case reproduced = "reproduced"
    case withinTolerance = "reproduced within tolerance"
    case notReproduced = "not reproduced"
    case couldNotRun = "could not run"

    /// 0, 0, 1, 2 (docs/exit-codes.md).
    public var exitStatus: Int32 {
        switch self {
        case .reproduced, .withinTolerance: return ExitStatus.ok
        case .notReproduced: return ExitStatus.checkFailed
        case .couldNotRun: return ExitStatus.operational
        }
    }
}

/// One metric, recorded and re-measured.
public struct MetricComparison: Sendable {
    public var name: String
    public var recorded: Double?
    public var now: Double?
    public var tolerance: Double
    /// "exact", "within", "outside" or "missing".
    public var outcome: String
    public var difference: Double? { recorded.flatMap { r in now.map { $0 - r } } }
}

/// One artifact, recorded and re-made.
public struct ArtifactComparison: Sendable {
    public var path: String
    public var recorded: String
    public var now: String?
    public var equal: Bool { now == recorded }
}

/// One environment fact that differs between the run and now.
public struct EnvironmentDifference: Sendable {
    public var item: String
    public var recorded: String
    public var now: String
}

/// Everything a reproduction found; `report` renders it.
public struct Reproduction: Sendable {
    public var verdict: Verdict
    public var reason = ""
    public var original: StoredRun
    public var commit: String
    public var patchApplied = false
    public var omittedFromPatch: [String] = []
    /// Where the restored tree differs from the recorded run: `path:line` replaced by the secret scanner, and
    /// untracked files the patch left out (secret files, binaries).
    public var differsFromRun: [String] = []
    public var data: [Finding] = []
    public var environment: [EnvironmentDifference] = []
    public var metrics: [MetricComparison] = []
    public var artifacts: [ArtifactComparison] = []
    public var newRun: String?
    /// The new run record's bytes (it lives in the temporary work tree; the caller keeps a copy with the report).
    public var newRecord: [UInt8]?
    public var exitStatus: Int32?
    public var stderrTail = ""
    /// The temporary work tree, when kept.
    public var worktree: String?
    public var seconds: (setup: Double, command: Double, compare: Double) = (0, 0, 0)
}

/// `git ml reproduce`: re-runs a recorded run in a temporary checkout of its commit and judges the outcome.
public struct Reproducer {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    /// Reproduces run `id` (a full id). Throws only when the reproduction cannot even be attempted (the record
    /// is a snapshot, or its commit is gone); everything after that is in the verdict.
    public func reproduce(_ id: String, options: ReproduceOptions) throws -> Reproduction {
        let started = PerformanceTrace.now()
        let original = try RunStore(workspace: workspace).read(id)
        guard let argv = original.record["command"]?["argv"]?.array?.compactMap(\.string), !argv.isEmpty else {
            throw ReproduceError.notARun(id)
        }
        guard let commit = original.record["git"]?["commit"]?.string else { throw ReproduceError.noCommit(id) }
        guard workspace.repository.hasObject(commit) else {
            throw ReproduceError.commitMissing(commit: commit, run: id)
        }
        var result = Reproduction(verdict: .couldNotRun, original: original, commit: commit)
        let git = original.record["git"]
        result.omittedFromPatch = (git?["omitted_from_patch"]?.array ?? []).compactMap(\.string)
        result.differsFromRun =
            (git?["patch_redactions"]?.array ?? []).compactMap { item in
                guard let path = item["path"]?.string, let line = item["line"]?.integer() else { return nil }
                return "\(path):\(line) (a secret was redacted)"
            }
            + (git?["left_out_of_patch"]?.array ?? []).compactMap { item in
                guard let path = item["path"]?.string else { return nil }
                return "\(path) (left out: \(item["reason"]?.string ?? "?"))"
            }

        // A checkout of the commit is kept between reproductions (writing thousands of files is the slow part)
        // and reset to exactly the commit's tree each time; a second reproduction at once gets its own.
        let sandboxes = workspace.repository.commonDirectory + "/git-ml/reproduce"
        try AtomicFile.makeDirectories(sandboxes)
        let lock = "\(sandboxes)/\(commit).lock"
        let cached = AtomicFile.exclusiveLock(lock)
        let directory =
            cached
            ? "\(sandboxes)/\(commit)" : "\(sandboxes)/\(commit)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            if cached {
                // Back to a clean checkout: the data copies and the command's outputs go, the source files stay.
                if !options.keep {
                    PerformanceTrace.measure("clean the work tree") {
                        try? Repository(discoveringFrom: directory, environment: [:]).resetWorkTree()
                    }
                }
                unlink(lock)
            } else if !options.keep {
                PerformanceTrace.measure("remove the work tree") {
                    _ = try? FileManager.default.removeItem(atPath: directory)
                }
            }
        }
        if options.keep { result.worktree = directory }
        let copy: Repository
        if let existing = try? Repository(discoveringFrom: directory, environment: [:]), existing.root == directory,
            (try? existing.headCommit()) == commit
        {
            copy = existing
            try PerformanceTrace.measure("reset the work tree") { try copy.resetWorkTree() }
        } else {
            try? FileManager.default.removeItem(atPath: directory)
            copy = try PerformanceTrace.measure("check out \(commit.prefix(10))") {
                try workspace.repository.materialize(commit, into: directory)
            }
        }
        // Everything the record names is confined to the checkout: the patch's files, the data copies, the
        // command's directory. A link in the recorded commit cannot carry a write out of it.
        let checkout = Beneath(root: directory)
        if let patch = original.record["git"]?["patch"]?.string {
            guard SHA256.isDigest(patch) else {
                throw LineageError.invalidRecord(file: ".mlops/runs/\(id).json", detail: "git.patch is not a digest")
            }
            try copy.apply(patch: try workspace.files.read(".mlops/patches/\(patch)")) { path in
                _ = try checkout.checked(path)
            }
            result.patchApplied = true
        }
        let sandbox = try Self.prepare(directory, for: original, from: workspace)

        // Data first: nothing runs on bytes that are not the recorded ones.
        let source = options.dataRoot.map { Beneath(root: workspace.inputPath($0)) } ?? workspace.files
        for item in original.data {
            guard let path = item["path"]?.string else { continue }
            // A recorded folder may also hold committed files (DVC's data/.gitignore and *.dvc): the checkout then
            // has the folder already, so each recorded file the checkout lacks is copied, by the folder's manifest.
            var files = [path]
            if item["type"]?.string == "directory", let digest = item["sha256"]?.string, SHA256.isDigest(digest),
                try workspace.files.exists(".mlops/manifests/\(digest)")
            {
                files = try Manifest.stored(digest, in: workspace).entries.map {
                    path.isEmpty ? $0.path : path + "/" + $0.path
                }
            }
            try PerformanceTrace.measure("copy \(path)") {
                for file in files {
                    let target = try checkout.checked(file)
                    var info = stat()
                    guard lstat(target, &info) != 0 else { continue }
                    let from = try source.checked(file)
                    if lstat(from, &info) == 0 { try FileCopy.tree(from: from, to: target) }
                }
            }
        }
        result.data = try PerformanceTrace.measure("verify data") {
            try Verifier(workspace: sandbox).check(original.data, section: "data")
        }
        let interpreter = argv[0].split(separator: "/").last.map { $0.hasPrefix("python") } == true ? argv[0] : nil
        let recordedEnvironment = original.record["environment"] ?? .null
        let problems = result.data.filter(\.isProblem)
        guard problems.isEmpty else {
            result.reason = problems.map {
                "\($0.subject): recorded \($0.recorded.map { String($0.prefix(12)) } ?? "-"), now \($0.actual.map { String($0.prefix(12)) } ?? "missing")"
            }
            .joined(separator: "; ")
            result.environment = Self.differences(
                recordedEnvironment, try sandbox.currentEnvironment(interpreter: interpreter))
            result.seconds.setup = PerformanceTrace.now() - started
            return result
        }
        result.seconds.setup = PerformanceTrace.now() - started

        // The command, where it ran (inside the checkout), with its seed and params, in a minimal environment.
        let cwd = original.record["command"]?["cwd"]?.string ?? ""
        guard RepositoryPath.relativePath(RepositoryPath.normalize(directory + "/" + cwd), under: directory) != nil,
            try checkout.isDirectory(cwd)
        else {
            throw LineageError.invalidRecord(
                file: ".mlops/runs/\(id).json",
                detail: "command.cwd \(cwd.prefix(80)) is not a directory of the checkout")
        }
        let runWorkspace = try Workspace(
            currentDirectory: cwd.isEmpty ? directory : directory + "/" + cwd, environment: workspace.environment)
        var request = RecordRequest()
        request.data = original.data.compactMap { $0["path"]?.string }.map(runWorkspace.absolute)
        request.artifacts = original.artifacts.compactMap { $0["path"]?.string }.map(runWorkspace.absolute)
        request.childEnvironment = Self.childEnvironment(
            recorded: original.record["environment"]?["variables"], auditor: workspace.environment,
            passing: options.passEnvironment)
        if let seed = original.record["seed"]?["value"], seed != .null {
            guard let value = seed.integer(in: 0...Int64(UInt32.max)) else {
                throw LineageError.invalidRecord(
                    file: ".mlops/runs/\(id).json", detail: "seed.value must be a whole number from 0 to 4294967295")
            }
            request.seed = UInt32(value)
        }
        request.params = original.params.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.paramText($0.value))" }
        request.reproduces = id
        request.echo = options.echo
        let commandStarted = PerformanceTrace.now()
        let outcome: RecordOutcome
        do {
            outcome = try Recorder(workspace: runWorkspace).run(request, command: argv)
        } catch let error as GitMLError {
            result.reason = error.message
            result.seconds.command = PerformanceTrace.now() - commandStarted
            return result
        }
        result.seconds.command =
            outcome.record["command"]?["duration_seconds"]?.number ?? (PerformanceTrace.now() - commandStarted)
        let compareStarted = PerformanceTrace.now()
        result.newRun = outcome.id
        result.newRecord = try? AtomicFile.read(runWorkspace.recordPath(outcome.id))
        result.exitStatus = outcome.childStatus
        result.environment = Self.differences(recordedEnvironment, outcome.record["environment"] ?? .null)
        if outcome.record["status"]?.string != "succeeded" {
            result.reason = "the command exited with status \(outcome.childStatus ?? -1)"
            if let digest = outcome.record["command"]?["stderr"]?["sha256"]?.string,
                let bytes = try? AtomicFile.read(runWorkspace.objects.path(for: digest))
            {
                result.stderrTail = Self.tail(String(decoding: bytes, as: UTF8.self), lines: 20)
            }
            return result
        }
        result.metrics = Self.compare(original.metrics, outcome.record["metrics"]?.object ?? [:], options)
        let remade = outcome.record["artifacts"]?.array ?? []
        result.artifacts = original.artifacts.compactMap { item in
            guard let path = item["path"]?.string, let sha256 = item["sha256"]?.string else { return nil }
            let now = remade.first { $0["path"]?.string == path }?["sha256"]?.string
            return ArtifactComparison(path: path, recorded: sha256, now: now)
        }
        if result.metrics.contains(where: { $0.outcome == "outside" || $0.outcome == "missing" }) {
            result.verdict = .notReproduced
        } else if result.metrics.allSatisfy({ $0.outcome == "exact" }) && result.artifacts.allSatisfy(\.equal) {
            result.verdict = .reproduced
        } else {
            result.verdict = .withinTolerance
        }
        result.seconds.compare = PerformanceTrace.now() - compareStarted
        return result
    }

    /// What the re-run sees of the environment: PATH, HOME, LANG, TMPDIR and git-ml's own `GIT_ML_*` from the
    /// auditor's, the recorded allow-listed variables with their recorded values (never a loader or git setting),
    /// and what `--pass-env` names. Not the auditor's tokens.
    static func childEnvironment(recorded: JSONValue?, auditor: [String: String], passing: [String]) -> [String: String]
    {
        var environment: [String: String] = [:]
        for name in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM"] { environment[name] = auditor[name] }
        for (name, value) in auditor where name.hasPrefix("GIT_ML_") { environment[name] = value }
        for (name, value) in recorded?.object ?? [:] {
            let forbidden = ["LD_", "DYLD_", "GIT_"].contains { name.hasPrefix($0) } && !name.hasPrefix("GIT_ML_")
            guard !forbidden, environment[name] == nil, let text = value.string, text != SecretScanner.redacted else {
                continue
            }
            environment[name] = text
        }
        for name in passing { environment[name] = auditor[name] }
        environment["PATH"] = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return environment
    }

    /// Metric by metric: exact, within its tolerance, outside it, or missing from the new run.
    static func compare(_ recorded: [String: JSONValue], _ now: [String: JSONValue], _ options: ReproduceOptions)
        -> [MetricComparison]
    {
        recorded.keys.sorted().compactMap { name in
            guard let old = recorded[name]?.number else { return nil }
            let tolerance = options.metricTolerances[name] ?? options.tolerance
            guard let new = now[name]?.number else {
                return MetricComparison(name: name, recorded: old, now: nil, tolerance: tolerance, outcome: "missing")
            }
            let same = old == new || (old.isNaN && new.isNaN)
            let within = same || abs(new - old) <= tolerance
            return MetricComparison(
                name: name, recorded: old, now: new, tolerance: tolerance,
                outcome: same ? "exact" : (within ? "within" : "outside"))
        }
    }

    /// The facts that differ between two recorded environments, package by package.
    static func differences(_ recorded: JSONValue, _ now: JSONValue) -> [EnvironmentDifference] {
        var rows: [EnvironmentDifference] = []
        func text(_ value: JSONValue?) -> String {
            guard let value, value != .null else { return "-" }
            return value.string ?? value.description
        }
        let facts: [(String, (JSONValue) -> JSONValue?)] = [
            ("OS", { $0["os"]?["name"] }), ("kernel", { $0["os"]?["kernel"] }), ("architecture", { $0["os"]?["arch"] }),
            ("CPU", { $0["cpu"]?["model"] }), ("CPU count", { $0["cpu"]?["count"] }),
            ("memory bytes", { $0["memory_bytes"] }),
            ("GPUs", { .string(($0["gpus"]?.array ?? []).compactMap { $0["name"]?.string }.joined(separator: ", ")) }),
            ("Python", { $0["python"]?["version"] }), ("container", { $0["container"]?["image"] }),
        ]
        for (item, read) in facts where text(read(recorded)) != text(read(now)) {
            rows.append(EnvironmentDifference(item: item, recorded: text(read(recorded)), now: text(read(now))))
        }
        for (group, key) in [("package", "packages"), ("lockfile", "lockfiles")] {
            let old = (key == "packages" ? recorded["python"]?["packages"] : recorded[key])?.object ?? [:]
            let new = (key == "packages" ? now["python"]?["packages"] : now[key])?.object ?? [:]
            for name in Set(old.keys).union(new.keys).sorted() where old[name] != new[name] {
                let show = { (v: JSONValue?) -> String in
                    let t = text(v)
                    return key == "lockfiles" && t.count == 64 ? String(t.prefix(12)) : t
                }
                rows.append(
                    EnvironmentDifference(item: "\(group) \(name)", recorded: show(old[name]), now: show(new[name])))
            }
        }
        return rows
    }

    /// The sandbox's `.mlops`: what the commit had (or a fresh one), plus the original record and the manifests its
    /// directory data needs for naming changed files.
    static func prepare(_ directory: String, for original: StoredRun, from workspace: Workspace) throws -> Workspace {
        let sandbox = try Workspace(
            currentDirectory: directory, environment: workspace.environment, requireInitialized: false)
        _ = try Initializer.initialize(sandbox)
        try AtomicFile.writeIfAbsent(original.bytes, to: sandbox.recordPath(original.id))
        for item in original.data where item["type"]?.string == "directory" {
            guard let digest = item["sha256"]?.string else { continue }
            let manifest = "\(workspace.manifestsDirectory)/\(digest)"
            if FileSystem.exists(manifest) {
                try AtomicFile.writeIfAbsent(
                    try AtomicFile.read(manifest), to: "\(sandbox.manifestsDirectory)/\(digest)")
            }
        }
        return sandbox
    }

    static func paramText(_ value: JSONValue) -> String { value.string ?? JSONWriter.compact(value) }

    static func tail(_ text: String, lines: Int) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}
