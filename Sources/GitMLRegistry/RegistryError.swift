import GitMLBasics

/// Errors of the model registry.
public enum RegistryError: GitMLError {
    case badModelName(String)
    case modelNotFound(String, known: [String])
    case versionNotFound(model: String, reference: String, known: [String])
    case badStage(String)
    case transitionNotAllowed(model: String, version: Int, from: String, to: String)
    case noArtifacts(run: String)
    case artifactNotInRun(path: String, run: String, recorded: [String])
    case noRollbackTarget(model: String)
    case notInProduction(model: String)
    case malformedFile(file: String, detail: String)
    case noIdentity
    case nothingToUndo(model: String)
    case alreadyPushed(model: String, event: String, summary: String)
    case neverInProduction(model: String, version: Int)

    public var message: String {
        switch self {
        case .badModelName(let name):
            return "\(name) is not a model name: use letters, digits, '.', '_' or '-', starting with a letter or digit"
        case .modelNotFound(let name, let known):
            return "model \(name) is not registered"
                + (known.isEmpty ? "" : " (registered: \(known.joined(separator: ", ")))")
        case .versionNotFound(let model, let reference, let known):
            return "\(model) has no version \(reference)"
                + (known.isEmpty ? "" : " (versions: \(known.joined(separator: ", ")))")
        case .badStage(let stage): return "\(stage) is not a stage: use staging or production"
        case .transitionNotAllowed(let model, let version, let from, let to):
            return "\(model) version \(version) is \(from); it cannot go to \(to)"
        case .noArtifacts(let run):
            return "run \(run.prefix(12)) recorded no artifacts, so there is nothing to register"
        case .artifactNotInRun(let path, let run, let recorded):
            return "run \(run.prefix(12)) did not record artifact \(path)"
                + (recorded.isEmpty ? "" : " (it recorded: \(recorded.joined(separator: ", ")))")
        case .noRollbackTarget(let model):
            return "\(model) has no earlier production version to roll back to"
        case .notInProduction(let model): return "\(model) has no version in production"
        case .malformedFile(let file, let detail): return "\(file): \(detail)"
        case .noIdentity: return "git knows no identity for you, and every registry change names who made it"
        case .nothingToUndo(let model): return "\(model) has no event to take back"
        case .alreadyPushed(_, let event, let summary):
            return "the newest event (\(summary); \(event)) is already on a remote, so it cannot be taken back"
        case .neverInProduction(let model, let version):
            return "\(model) version \(version) was never in production, so production cannot roll back to it"
        }
    }

    public var hint: String {
        switch self {
        case .badModelName: return "for example: churn-classifier"
        case .modelNotFound(let name, _): return "register it: git ml model register \(name) --run <run>"
        case .versionNotFound(let model, _, _): return "list them: git ml model history \(model)"
        case .badStage: return ""
        case .transitionNotAllowed: return "see docs/registry.md for the allowed transitions"
        case .noArtifacts: return "record the model file: git ml run --artifact model.pkl -- ..."
        case .artifactNotInRun: return "name one the run recorded, or record a new run with --artifact"
        case .noRollbackTarget(let model): return "name a version: git ml model rollback \(model) --to <version>"
        case .notInProduction(let model):
            return "promote one first: git ml model promote \(model) <version> --to production"
        case .malformedFile:
            return "the registry's files are written by git ml; restore this one from git (git checkout -- <file>)"
        case .noIdentity:
            return
                "set one as for git commit: git config user.email you@example.com (and user.name), or GIT_AUTHOR_EMAIL"
        case .nothingToUndo: return ""
        case .alreadyPushed(let model, _, _):
            return
                "record the change as a new event instead: git ml model rollback \(model), or git ml model archive \(model) <version>"
        case .neverInProduction(let model, _):
            return "promote it through the gates instead: git ml model promote \(model) <version> --to production"
        }
    }

    public var code: String {
        switch self {
        case .badModelName: return "bad-model-name"
        case .modelNotFound: return "model-not-found"
        case .versionNotFound: return "version-not-found"
        case .badStage: return "bad-stage"
        case .transitionNotAllowed: return "transition-not-allowed"
        case .noArtifacts: return "no-artifacts"
        case .artifactNotInRun: return "artifact-not-in-run"
        case .noRollbackTarget: return "no-rollback-target"
        case .notInProduction: return "not-in-production"
        case .malformedFile: return "malformed-registry-file"
        case .noIdentity: return "no-identity"
        case .nothingToUndo: return "nothing-to-undo"
        case .alreadyPushed: return "already-pushed"
        case .neverInProduction: return "never-in-production"
        }
    }
}
