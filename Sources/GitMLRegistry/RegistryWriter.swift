import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLStore

/// Changes to the registry in the work tree: each one a new file (a version or an event), written atomically.
public struct RegistryWriter {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    var registry: Registry { Registry(source: WorkTreeSource(workspace: workspace)) }

    /// Who acts: git's user.name and user.email.
    private var actor: JSONValue {
        guard let identity = workspace.repository.identity() else { return .null }
        return .object(["name": .string(identity.name), "email": .string(identity.email)])
    }

    /// Registers the next version of `name` from a run: its artifacts (all, or those named by path).
    public func register(_ name: String, run reference: String, artifacts selected: [String]) throws -> ModelVersion {
        try Registry.validate(name: name)
        let run = try RunStore(workspace: workspace).read(try RunStore(workspace: workspace).resolve(reference))
        let recorded = run.artifacts.filter { $0["missing"]?.bool != true }
        guard !recorded.isEmpty else { throw RegistryError.noArtifacts(run: run.id) }
        let paths = recorded.compactMap { $0["path"]?.string }
        var chosen: [ModelArtifact] = []
        for path in selected.isEmpty ? paths : try selected.map({ try workspace.resolve($0) }) {
            guard let item = recorded.first(where: { $0["path"]?.string == path }) else {
                throw RegistryError.artifactNotInRun(path: path, run: run.id, recorded: paths)
            }
            chosen.append(try ModelArtifact(item, file: ".mlops/runs/\(run.id).json"))
        }
        let owner = run.record["owner"] ?? actor
        // The next number; another process taking it first makes this one try the next.
        var next = ((try? registry.model(name))?.versions.keys.max() ?? 0) + 1
        while true {
            let bytes = ModelVersion.bytes(model: name, version: next, run: run.id, artifacts: chosen, owner: owner)
            let path = workspace.absolute(ModelVersion.path(model: name, version: next))
            if try AtomicFile.create(bytes, at: path) {
                let version = try ModelVersion(bytes: bytes, file: ModelVersion.path(model: name, version: next))
                _ = try write(
                    stageEvent(version, from: nil, to: .draft, reason: "registered from run \(run.id.prefix(12))"))
                return version
            }
            next += 1
        }
    }

    /// Moves a version to staging or production. A new champion sends the old one to archived.
    public func promote(_ name: String, version: Int, to stage: Stage, reason: String) throws -> (
        event: RegistryEvent, archived: Int?
    ) {
        let (state, current) = try lookup(name, version)
        guard current.stage.allows(stage) else {
            throw RegistryError.transitionNotAllowed(
                model: name, version: version, from: current.stage.rawValue, to: stage.rawValue)
        }
        var fields = stageEvent(current.file, from: current.stage, to: stage, reason: reason)
        // What the version's artifacts are on disk now: a file changed since registration shows here and is refused at push.
        fields["artifacts"] = .array(try currentArtifacts(current.file).map(\.json))
        let archived = stage == .production ? state.production.flatMap { $0 == version ? nil : $0 } : nil
        if let archived { fields["previous_production"] = .int(Int64(archived)) }
        // The gate evidence this promotion relies on, when there is passing evidence already.
        if let evidence = current.gates.last(where: {
            $0.value["stage"]?.string == stage.rawValue && $0.versionDigest == current.file.digest
        }), evidence.passed {
            fields["evidence"] = .string(evidence.id)
        }
        return (try write(fields), archived)
    }

    /// Records an approval of a version.
    public func approve(_ name: String, version: Int, comment: String) throws -> RegistryEvent {
        let (_, current) = try lookup(name, version)
        return try write([
            "model": .string(name), "version": .int(Int64(version)), "kind": .string("approval"), "actor": actor,
            "comment": .string(comment), "run": .string(current.file.run),
            "version_digest": .string(current.file.digest),
        ])
    }

    /// Retires a version.
    public func archive(_ name: String, version: Int, reason: String) throws -> RegistryEvent {
        let (_, current) = try lookup(name, version)
        guard current.stage.allows(.archived) else {
            throw RegistryError.transitionNotAllowed(
                model: name, version: version, from: current.stage.rawValue, to: "archived")
        }
        return try write(stageEvent(current.file, from: current.stage, to: .archived, reason: reason))
    }

    /// Puts production back on an earlier version (the previous champion, or `target`), skipping gates: the
    /// version leaving production is marked so that a later rollback does not return to it.
    public func rollback(_ name: String, to target: Int?, reason: String) throws -> (
        from: Int, to: Int, event: RegistryEvent
    ) {
        let state = try registry.model(name)
        guard let from = state.production else { throw RegistryError.notInProduction(model: name) }
        guard let to = target ?? state.rollbackTarget() else { throw RegistryError.noRollbackTarget(model: name) }
        guard let destination = state.versions[to], to != from else {
            throw RegistryError.versionNotFound(
                model: name, reference: String(to), known: state.versions.keys.sorted().map(String.init))
        }
        var fields = stageEvent(destination.file, from: destination.stage, to: .production, reason: reason)
        fields["kind"] = .string("rollback")
        fields["rolled_back"] = .int(Int64(from))
        fields["artifacts"] = .array(try currentArtifacts(destination.file).map(\.json))
        return (from, to, try write(fields))
    }

    /// Records the outcome of a gate evaluation: the evidence the pre-push hook and `verify --range` look for.
    public func recordGate(
        _ name: String, version: Int, stage: Stage, passed: Bool, checks: [JSONValue], gatesDigest: String
    ) throws -> RegistryEvent {
        let (_, current) = try lookup(name, version)
        return try write([
            "model": .string(name), "version": .int(Int64(version)), "kind": .string("gate"), "actor": actor,
            "stage": .string(stage.rawValue), "passed": .bool(passed), "checks": .array(checks),
            "gates_digest": .string(gatesDigest), "run": .string(current.file.run),
            "version_digest": .string(current.file.digest),
        ])
    }

    /// The model's state and one of its versions, or an error listing the versions there are.
    private func lookup(_ name: String, _ version: Int) throws -> (ModelState, ModelState.VersionState) {
        let state = try registry.model(name)
        guard let current = state.versions[version] else {
            throw RegistryError.versionNotFound(
                model: name, reference: String(version), known: state.versions.keys.sorted().map(String.init))
        }
        return (state, current)
    }

    private func stageEvent(_ version: ModelVersion, from: Stage?, to: Stage, reason: String) -> [String: JSONValue] {
        [
            "model": .string(version.model), "version": .int(Int64(version.version)), "kind": .string("stage"),
            "from": from.map { .string($0.rawValue) } ?? .null, "to": .string(to.rawValue), "actor": actor,
            "reason": .string(reason), "run": .string(version.run), "version_digest": .string(version.digest),
            "artifacts": .array(version.artifacts.map(\.json)),
        ]
    }

    /// Each artifact as it is now: hashed from the work tree when the file is there, else the stored copy.
    private func currentArtifacts(_ version: ModelVersion) throws -> [ModelArtifact] {
        let present = version.artifacts.filter { FileSystem.exists(workspace.absolute($0.path)) }
        let hashed = try DataHasher(workspace: workspace).hash(present.map(\.path))
        return version.artifacts.map { artifact in
            guard let now = zip(present, hashed).first(where: { $0.0.path == artifact.path })?.1 else {
                return artifact
            }
            return ModelArtifact(path: artifact.path, sha256: now.sha256, size: now.size)
        }
    }

    private func write(_ fields: [String: JSONValue]) throws -> RegistryEvent {
        let name = fields["model"]?.string ?? ""
        let (id, bytes) = try RegistryEvent.make(fields)
        let relative = "\(Registry.root)/\(name)/events/\(id).json"
        _ = try AtomicFile.create(bytes, at: workspace.absolute(relative))
        return try RegistryEvent(id: id, bytes: bytes, file: relative)
    }
}
