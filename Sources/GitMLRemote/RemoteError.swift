import GitMLBasics

/// What can go wrong talking to a remote: one line each, never with a credential in it.
public enum RemoteError: GitMLError {
    case badURL(String, detail: String)
    case unknownRemote(String, known: [String])
    case remoteExists(String)
    case transport(host: String, detail: String)
    case unauthorized(host: String, detail: String)
    case registry(host: String, status: Int, code: String, detail: String, action: String)
    case digestMismatch(what: String, expected: String, got: String)
    case notOnRemote(what: String, remote: String)
    case notLocal(what: String, missing: [String])
    case manifestDisagrees(tag: String, detail: String)
    case tagTaken(tag: String, title: String, remote: String, digest: String)

    public var message: String {
        switch self {
        case .badURL(let url, let detail): return "\(url): \(detail)"
        case .unknownRemote(let name, let known):
            return known.isEmpty
                ? "no remote is configured (asked for \(name))"
                : "no remote named \(name) (configured: \(known.joined(separator: ", ")))"
        case .remoteExists(let name): return "a remote named \(name) is already configured"
        case .transport(let host, let detail): return "\(host): \(detail)"
        case .unauthorized(let host, let detail): return "\(host): not authorized (\(detail))"
        case .registry(let host, let status, let code, let detail, let action):
            return "\(host): \(action) failed: HTTP \(status)" + (code.isEmpty ? "" : " \(code)")
                + (detail.isEmpty ? "" : ": \(detail)")
        case .digestMismatch(let what, let expected, let got):
            return "\(what): sha256 expected \(expected), got \(got); nothing was stored"
        case .notOnRemote(let what, let remote): return "\(what) is not on remote \(remote)"
        case .notLocal(let what, let missing):
            return
                "\(what): \(missing.count) object(s) are not in .mlops/cache/objects (\(missing.prefix(3).map { String($0.prefix(12)) }.joined(separator: ", ")))"
        case .manifestDisagrees(let tag, let detail):
            return "the remote's \(tag) disagrees with the registry: \(detail)"
        case .tagTaken(let tag, let title, let remote, let digest):
            return
                "\(remote) already has \(tag) as another manifest (sha256:\(digest.prefix(12))), not this lineage's \(title)"
        }
    }

    public var hint: String {
        switch self {
        case .badURL: return "use oci://<host>[:port]/<repository>, e.g. oci://ghcr.io/team/churn"
        case .unknownRemote: return "add one: git ml remote add origin oci://<host>/<repository>"
        case .remoteExists: return "pick another name, or edit remotes in .mlops/config.yaml"
        case .transport: return "check that the registry is up and reachable, then run the command again"
        case .unauthorized:
            return "store credentials with `docker login <host>` or git's credential helper (git credential approve)"
        case .registry(_, let status, let code, _, _):
            switch (status, code) {
            case (_, "DIGEST_INVALID"), (_, "BLOB_UPLOAD_INVALID"):
                return "the bytes changed on the way or on disk: run git ml fsck, then push again"
            case (_, "MANIFEST_BLOB_UNKNOWN"), (_, "BLOB_UNKNOWN"):
                return "the registry lost a blob: push again (what it has is skipped)"
            case (_, "DENIED"), (403, _): return "the credentials lack push or pull rights on this repository"
            case (_, "NAME_UNKNOWN"): return "check the repository name in .mlops/config.yaml"
            case (500...599, _): return "the registry failed; try again later (what finished is not sent again)"
            default: return "see the registry's logs"
            }
        case .digestMismatch: return "the registry or a proxy served other bytes; pull again or check the registry"
        case .notOnRemote: return "push it from a machine that has it: git ml push"
        case .notLocal: return "pull it first (git ml pull), or push from the machine that recorded it"
        case .manifestDisagrees: return "the remote was pushed from another lineage; check the tag or push again"
        case .tagTaken:
            return
                "another branch registered the same version number: merge the registries first, or replace it with git ml push --force"
        }
    }

    public var code: String {
        switch self {
        case .badURL: return "bad-remote-url"
        case .unknownRemote: return "unknown-remote"
        case .remoteExists: return "remote-exists"
        case .transport: return "remote-unreachable"
        case .unauthorized: return "remote-unauthorized"
        case .registry: return "remote-error"
        case .digestMismatch: return "remote-digest-mismatch"
        case .notOnRemote: return "not-on-remote"
        case .notLocal: return "objects-not-local"
        case .manifestDisagrees: return "remote-manifest-disagrees"
        case .tagTaken: return "remote-tag-taken"
        }
    }
}
