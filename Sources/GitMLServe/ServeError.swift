import GitMLBasics

/// Why the gateway refuses to serve a version, or cannot start.
public enum ServeError: GitMLError {
    /// An artifact's stored bytes do not hash to the registry's digest.
    case lineageMismatch(model: String, version: Int, path: String, expected: String, actual: String)
    /// The object store has no copy of an artifact.
    case objectMissing(model: String, version: Int, path: String, sha256: String)
    /// The version's promotion does not pass its gates when they are evaluated again.
    case promotionUnverified(model: String, version: Int, stage: String, reasons: [String])
    /// The registry names no version for the model's stage.
    case nothingToServe(model: String, reference: String)
    /// A managed backend did not answer its health check in time, or exited.
    case backendUnhealthy(model: String, version: Int, detail: String)
    /// The address is taken or cannot be bound.
    case cannotListen(address: String, detail: String)
    /// A version file names an artifact path the gateway cannot place.
    case badArtifactPath(model: String, version: Int, path: String, detail: String)
    /// A placeholder in a backend command that the gateway does not know.
    case badPlaceholder(model: String, placeholder: String)
    /// The work tree's version file is not the one being judged (a push from another checkout).
    case notTheJudgedVersion(model: String, version: Int)

    public var message: String {
        switch self {
        case .lineageMismatch(let model, let version, let path, let expected, let actual):
            return "\(model)@\(version): \(path) does not match the registry: sha256 expected \(expected) got \(actual)"
        case .objectMissing(let model, let version, let path, let sha256):
            return "\(model)@\(version): \(path) (sha256 \(sha256)) is not in the object store"
        case .promotionUnverified(let model, let version, let stage, let reasons):
            return
                "\(model)@\(version) is in \(stage) but its gates do not pass: \(reasons.prefix(3).joined(separator: "; "))"
        case .nothingToServe(let model, let reference):
            return "\(model) has no version in \(reference)"
        case .backendUnhealthy(let model, let version, let detail):
            return "\(model)@\(version): the backend is not healthy: \(detail)"
        case .cannotListen(let address, let detail): return "cannot listen on \(address): \(detail)"
        case .badPlaceholder(let model, let placeholder):
            return "models.\(model).backend.command: unknown placeholder \(placeholder)"
        case .badArtifactPath(let model, let version, let path, let detail):
            return "\(model)@\(version): the version file's artifact \(path) is \(detail)"
        case .notTheJudgedVersion(let model, let version):
            return "the work tree's \(model)@\(version) is not the version being judged (its version file differs)"
        }
    }

    public var hint: String {
        switch self {
        case .lineageMismatch:
            return
                "the stored copy changed after it was registered: delete .mlops/cache/objects/<sha256> and git ml pull the version again, or serve another version"
        case .objectMissing: return "fetch it with git ml pull <model>@<version>, or serve a version this machine has"
        case .promotionUnverified: return "run git ml gate check for that stage, or serve another version"
        case .nothingToServe: return "promote a version (git ml model promote), or name one with version: in serve.yaml"
        case .backendUnhealthy: return "run the backend's command by hand to see why it fails"
        case .cannotListen: return "pick another port with --port, or stop what is using it"
        case .badArtifactPath: return "run git ml fsck; serve another version"
        case .badPlaceholder:
            return "use {port}, {artifact}, {artifact:<recorded path>}, {artifacts}, {model} or {version}"
        case .notTheJudgedVersion: return "check out the commit being pushed or verified, then run the check again"
        }
    }

    public var code: String {
        switch self {
        case .lineageMismatch: return "lineage-mismatch"
        case .objectMissing: return "object-missing"
        case .promotionUnverified: return "promotion-unverified"
        case .nothingToServe: return "nothing-to-serve"
        case .backendUnhealthy: return "backend-unhealthy"
        case .cannotListen: return "cannot-listen"
        case .badPlaceholder: return "bad-placeholder"
        case .badArtifactPath: return "bad-artifact-path"
        case .notTheJudgedVersion: return "not-the-judged-version"
        }
    }
}
