import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLProvenance
import GitMLRegistry
import GitMLStore

/// The policy a promotion is judged under: `gates.yaml`, `config.yaml`'s approvers and `.mlops/allowed_signers`,
/// all read from one place. `gate check` reads the work tree; the pre-push hook, `verify --range` and the server's
/// hook read the tip of the branch being pushed to, so a push cannot relax the rules that judge it.
public struct GatePolicy {
    /// The gates, or why they cannot be read (which fails every promotion).
    public let spec: Result<GateSpec, GateError>
    /// Who may approve (config.yaml); empty means anyone.
    public let approvers: [String]
    /// The allowed-signers file's bytes, when there is one: then only approvals with a good signature count.
    public let allowedSigners: [UInt8]?
    /// Where the policy was read, for messages (`the work tree`, `origin/main at 1a2b3c4d5e`).
    public let origin: String

    /// Reads the policy from `source`. A malformed config.yaml is an error; a malformed gates.yaml is kept as the
    /// reason every promotion fails.
    public init(source: any RegistrySource, origin: String) throws {
        self.origin = origin
        if let bytes = try source.contents(of: GateSpec.file) {
            do {
                spec = .success(try GateSpec.parse(bytes, digest: try SHA256.hex(of: bytes)))
            } catch let error as GateError {
                spec = .failure(error)
            } catch let error as GitMLError {
                spec = .failure(.malformedSpec(error.message))
            }
        } else {
            spec = .failure(.malformedSpec("the file is missing at \(origin) (git ml init writes one)"))
        }
        approvers = try source.contents(of: ".mlops/config.yaml").map { try Config.parse($0).approvers } ?? []
        allowedSigners = try source.contents(of: SSHSignatures.allowedSignersFile)
    }

    /// Each approval event with what its signature says under this policy. Signatures are checked in parallel,
    /// one `ssh-keygen -Y verify` each.
    public func approvals(_ events: [RegistryEvent], environment: [String: String]) throws -> [ApprovalInput] {
        guard let allowedSigners else {
            return events.map { ApprovalInput(email: $0.actorEmail, signature: .notRequired) }
        }
        let verifier = try SignatureVerifier(allowedSigners: allowedSigners, environment: environment)
        return try Parallel.map(count: events.count) { i in
            let event = events[i]
            let verdict = verifier.verify(
                event.bytes, signature: event.signature, principal: event.actorEmail, time: event.time)
            switch verdict {
            case .good: return ApprovalInput(email: event.actorEmail, signature: .good)
            case .unsigned: return ApprovalInput(email: event.actorEmail, signature: .unsigned)
            case .bad(let reason): return ApprovalInput(email: event.actorEmail, signature: .bad(reason))
            }
        }
    }

    /// The inputs every gate evaluation shares: the candidate's and champion's records, and the approvals of the
    /// exact version file, judged under this policy.
    func inputs(
        candidate: JSONValue, champion: (record: JSONValue, label: String)?, approvals: [RegistryEvent],
        versionDigest: String, environment: [String: String]
    ) throws -> GateInputs {
        var inputs = GateInputs(candidate: candidate)
        if let champion {
            inputs.champion = champion.record
            inputs.championLabel = champion.label
        }
        inputs.approvals = try self.approvals(
            approvals.filter { $0.versionDigest == versionDigest }, environment: environment)
        inputs.allowedApprovers = approvers
        inputs.signaturesRequired = allowedSigners != nil
        return inputs
    }
}
