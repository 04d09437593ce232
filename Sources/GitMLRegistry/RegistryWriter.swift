import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLProvenance
import GitMLStore

/// Changes to the registry in the work tree: each one a new file (a version or an event), written atomically,
/// signed with the SSH key git signs commits with when git is set up for it, and serialised between processes by a
/// lock under `.mlops/cache`, so concurrent commands decide from the state the previous one left.
public struct RegistryWriter {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    var registry: Registry { Registry(source: WorkTreeSource(workspace: workspace)) }

    /// Who acts, as git would name the author of a commit; an error when git knows nobody.
    private func actor() throws -> JSONValue {
        guard let identity = workspace.repository.identity else { throw RegistryError.noIdentity }
        return .object(["name": .string(identity.name), "email": .string(identity.email)])
    }

    /// Runs `body` holding the registry lock.
    private func locked<T>(_ body: () throws -> T) throws -> T {
        let lock = try FileLock(workspace.cacheDirectory + "/registry.lock")
        defer { lock.release() }
        return try body()
    }

    /// Registers the next version of `name` from a run: its artifacts (all, or those named by path).
    public func register(_ name: String, run reference: String, artifacts selected: [String]) throws -> ModelVersion {
        try Registry.validate(name: name)
        let actor = try actor()
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
        return try locked {
            let next = ((try? registry.model(name))?.versions.keys.max() ?? 0) + 1
            guard ModelVersion.numbers.contains(next) else {
                throw RegistryError.malformedFile(
                    file: "\(Registry.root)/\(name)/versions", detail: "no version number is left to register")
            }
            let bytes = ModelVersion.bytes(model: name, version: next, run: run.id, artifacts: chosen, owner: owner)
            let relative = ModelVersion.path(model: name, version: next)
            guard try workspace.files.create(bytes, at: relative) else {
                throw StoreError("create", path: relative, errno: EEXIST)
            }
            let version = try ModelVersion(bytes: bytes, file: relative)
            _ = try write(
                stageEvent(
                    version, from: nil, to: .draft, actor: actor, reason: "registered from run \(run.id.prefix(12))"))
            return version
        }
    }

    /// Moves a version to staging or production. A new champion sends the old one to archived.
    /// `evidence` names the record the promotion rests on (a rollout's analysis event) in place of gate evidence.
    public func promote(_ name: String, version: Int, to stage: Stage, reason: String, evidence named: String? = nil)
        throws -> (event: RegistryEvent, archived: Int?)
    {
        let actor = try actor()
        return try locked {
            let (state, current) = try lookup(name, version)
            guard current.stage.allows(stage) else {
                throw RegistryError.transitionNotAllowed(
                    model: name, version: version, from: current.stage.rawValue, to: stage.rawValue)
            }
            var fields = stageEvent(current.file, from: current.stage, to: stage, actor: actor, reason: reason)
            // What the version's artifacts are on disk now: a file changed since registration shows here and is
            // refused at push.
            fields["artifacts"] = .array(try currentArtifacts(current.file).map(\.json))
            let archived = stage == .production ? state.production.flatMap { $0 == version ? nil : $0 } : nil
            if let archived { fields["previous_production"] = .int(Int64(archived)) }
            // The gate evidence this promotion relies on, when there is passing evidence already.
            if let evidence = current.gates.last(where: {
                $0.value["stage"]?.string == stage.rawValue && $0.versionDigest == current.file.digest
            }), evidence.passed {
                fields["evidence"] = .string(evidence.id)
            }
            if let named { fields["evidence"] = .string(named) }
            return (try write(fields), archived)
        }
    }

    /// Records an approval of a version, with what would keep it from counting (the owner approving their own
    /// version, an approver config.yaml does not list, a missing or bad signature under `.mlops/allowed_signers`).
    public func approve(_ name: String, version: Int, comment: String) throws -> (
        event: RegistryEvent, warnings: [String]
    ) {
        let actor = try actor()
        let event = try locked {
            let (_, current) = try lookup(name, version)
            return try write([
                "model": .string(name), "version": .int(Int64(version)), "kind": .string("approval"), "actor": actor,
                "comment": .string(comment), "run": .string(current.file.run),
                "version_digest": .string(current.file.digest),
            ])
        }
        return (event, try approvalWarnings(event))
    }

    private func approvalWarnings(_ event: RegistryEvent) throws -> [String] {
        var warnings: [String] = []
        let me = GitIdentity.normalize(event.actorEmail)
        let (_, current) = try lookup(event.model, event.version)
        if let owner = current.file.owner["email"]?.string, GitIdentity.normalize(owner) == me {
            warnings.append(
                "you are the owner of this version's run; gates with distinct_from_owner do not count your approval")
        }
        let approvers = try workspace.config.get().approvers
        if !approvers.isEmpty && !approvers.contains(where: { GitIdentity.normalize($0) == me }) {
            warnings.append("\(event.actorEmail) is not among config.yaml's approvers; this approval does not count")
        }
        if try workspace.files.exists(SSHSignatures.allowedSignersFile) {
            let verifier = try SignatureVerifier(
                allowedSigners: try workspace.files.read(SSHSignatures.allowedSignersFile, limit: 1 << 20),
                environment: workspace.environment)
            switch verifier.verify(
                event.bytes, signature: event.signature, principal: event.actorEmail, time: event.time)
            {
            case .good: break
            case .unsigned:
                warnings.append(
                    "the approval is unsigned, and \(SSHSignatures.allowedSignersFile) makes only signed approvals count; "
                        + "set git config gpg.format ssh and user.signingkey, then approve again")
            case .bad(let reason):
                warnings.append(
                    "the signature does not verify against \(SSHSignatures.allowedSignersFile) (\(reason)); "
                        + "this approval does not count")
            }
        }
        return warnings
    }

    /// Retires a version.
    public func archive(_ name: String, version: Int, reason: String) throws -> RegistryEvent {
        let actor = try actor()
        return try locked {
            let (_, current) = try lookup(name, version)
            guard current.stage.allows(.archived) else {
                throw RegistryError.transitionNotAllowed(
                    model: name, version: version, from: current.stage.rawValue, to: "archived")
            }
            return try write(stageEvent(current.file, from: current.stage, to: .archived, actor: actor, reason: reason))
        }
    }

    /// Puts production back on an earlier version (the previous champion, or `target`, which must have been in
    /// production before), skipping gates: the version leaving production is marked so that a later rollback does
    /// not return to it.
    public func rollback(_ name: String, to target: Int?, reason: String) throws -> (
        from: Int, to: Int, event: RegistryEvent
    ) {
        let actor = try actor()
        return try locked {
            let state = try registry.model(name)
            guard let from = state.production else { throw RegistryError.notInProduction(model: name) }
            guard let to = target ?? state.rollbackTarget() else { throw RegistryError.noRollbackTarget(model: name) }
            guard let destination = state.versions[to], to != from else {
                throw RegistryError.versionNotFound(
                    model: name, reference: String(to), known: state.versions.keys.sorted().map(String.init))
            }
            guard destination.wasInProduction else { throw RegistryError.neverInProduction(model: name, version: to) }
            var fields = stageEvent(
                destination.file, from: destination.stage, to: .production, actor: actor, reason: reason)
            fields["kind"] = .string("rollback")
            fields["rolled_back"] = .int(Int64(from))
            fields["artifacts"] = .array(try currentArtifacts(destination.file).map(\.json))
            return (from, to, try write(fields))
        }
    }

    /// Records a step of a rollout (`action`: start, advance, pause, resume, abort, promote, finish) with its fields
    /// (the rollout's id, strategy, and the analysis' numbers).
    public func recordRollout(
        _ name: String, version: Int, action: String, reason: String, fields extra: [String: JSONValue]
    ) throws -> RegistryEvent {
        let actor = try actor()
        return try locked {
            let (_, current) = try lookup(name, version)
            var fields = extra
            fields["model"] = .string(name)
            fields["version"] = .int(Int64(version))
            fields["kind"] = .string("rollout")
            fields["action"] = .string(action)
            fields["actor"] = actor
            fields["reason"] = .string(reason)
            fields["run"] = .string(current.file.run)
            fields["version_digest"] = .string(current.file.digest)
            return try write(fields)
        }
    }

    /// Records the outcome of a gate evaluation: the audit trail of what `gate check` saw. The pre-push hook and
    /// `verify --range` evaluate the gates again and refuse a promotion whose evidence disagrees.
    public func recordGate(
        _ name: String, version: Int, stage: Stage, passed: Bool, checks: [JSONValue], gatesDigest: String
    ) throws -> RegistryEvent {
        let actor = try actor()
        return try locked {
            let (_, current) = try lookup(name, version)
            return try write([
                "model": .string(name), "version": .int(Int64(version)), "kind": .string("gate"), "actor": actor,
                "stage": .string(stage.rawValue), "passed": .bool(passed), "checks": .array(checks),
                "gates_digest": .string(gatesDigest), "run": .string(current.file.run),
                "version_digest": .string(current.file.digest),
            ])
        }
    }

    /// Takes back the newest event of a model (with its signature; for a registration, the version file too), as
    /// long as no remote-tracking ref has it: what was pushed is history, and is changed by a new event instead.
    /// Returns the removed event.
    public func undo(_ name: String) throws -> RegistryEvent {
        try locked {
            let state = try registry.model(name)
            guard let newest = state.events.last else { throw RegistryError.nothingToUndo(model: name) }
            let path = "\(Registry.root)/\(name)/events/\(newest.id).json"
            var files = [path, SSHSignatures.signaturePath(of: path)]
            let isRegistration = newest.kind == .stage && newest.to == .draft && newest.from == nil
            if isRegistration { files.append(ModelVersion.path(model: name, version: newest.version)) }
            let repository = workspace.repository
            for tip in repository.remoteTrackingTips("*") {
                if try CommitTree(repository, revision: tip).contents(of: path) != nil {
                    throw RegistryError.alreadyPushed(model: name, event: newest.id, summary: newest.summary)
                }
            }
            for file in files where try workspace.files.exists(file) {
                guard unlink(try workspace.files.checked(file)) == 0 else { throw StoreError("remove", path: file) }
            }
            return newest
        }
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

    private func stageEvent(_ version: ModelVersion, from: Stage?, to: Stage, actor: JSONValue, reason: String)
        -> [String: JSONValue]
    {
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

    /// Writes the event (its signature first, when git signs with SSH, so no signed setup leaves an unsigned event).
    private func write(_ fields: [String: JSONValue]) throws -> RegistryEvent {
        let name = fields["model"]?.string ?? ""
        let (id, bytes) = try RegistryEvent.make(fields)
        let relative = "\(Registry.root)/\(name)/events/\(id).json"
        var signature: [UInt8]?
        let repository = workspace.repository
        if let key = SSHSignatures.SigningKey(config: repository.config, environment: workspace.environment) {
            let signed = try SSHSignatures.sign(bytes, with: key, environment: workspace.environment)
            _ = try workspace.files.create(signed, at: SSHSignatures.signaturePath(of: relative))
            signature = signed
        }
        _ = try workspace.files.create(bytes, at: relative)
        var event = try RegistryEvent(id: id, bytes: bytes, file: relative)
        event.signature = signature
        return event
    }
}

#if canImport(Glibc)
    import Glibc
#endif
