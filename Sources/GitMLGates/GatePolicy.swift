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
    /// The golden files the gates' `probe` checks name, read where the gates are (a push cannot change the answers
    /// that judge it): the bytes, or why they cannot be read; a file that is not there is absent.
    public let goldens: [String: Result<[UInt8], GoldenUnreadable>]

    /// Why a golden file could not be read (a directory, a link out of the tree, too large).
    public struct GoldenUnreadable: Error {
        let message: String
    }

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
        var goldens: [String: Result<[UInt8], GoldenUnreadable>] = [:]
        for file in (try? spec.get())?.goldenFiles ?? [] {
            do {
                goldens[file] = try source.contents(of: file).map { .success($0) }
            } catch let error as GitMLError {
                goldens[file] = .failure(GoldenUnreadable(message: error.message))
            }
        }
        self.goldens = goldens
        approvers = try source.contents(of: ".mlops/config.yaml").map { try Config.parse($0).approvers } ?? []
        allowedSigners = try source.contents(of: SSHSignatures.allowedSignersFile)
    }

    /// Each approval event with what its signature says under this policy.
    public func approvals(_ events: [RegistryEvent], environment: [String: String]) throws -> [ApprovalInput] {
        zip(events, try signatures(events, environment: environment)).map {
            ApprovalInput(email: $0.0.actorEmail, signature: $0.1)
        }
    }

    /// What each event's signature says under this policy; `.notRequired` without an allowed-signers file.
    /// Checked in parallel, one `ssh-keygen -Y verify` each.
    func signatures(_ events: [RegistryEvent], environment: [String: String]) throws -> [ApprovalInput.Signature] {
        guard let allowedSigners else { return events.map { _ in .notRequired } }
        guard !events.isEmpty else { return [] }
        let verifier = try SignatureVerifier(allowedSigners: allowedSigners, environment: environment)
        return try Parallel.map(count: events.count) { i in
            let event = events[i]
            switch verifier.verify(
                event.bytes, signature: event.signature, principal: event.actorEmail, time: event.time)
            {
            case .good: return .good
            case .unsigned: return .unsigned
            case .bad(let reason): return .bad(reason)
            }
        }
    }

    /// The version a candidate is measured against, as found where the policy is read.
    enum Champion {
        case none
        case found(record: JSONValue, label: String)
        /// A champion exists, but its run record does not: the comparison cannot be made (it fails).
        case recordMissing(label: String)
    }

    /// The inputs every gate evaluation shares: the candidate's and champion's records, who owns the version, and
    /// the approvals of the exact version file, judged under this policy.
    ///
    /// The owner is whoever the run record, the version file and the registration event name. With an
    /// allowed-signers file the registration must carry a good signature, so an owner cannot pass as someone else
    /// and approve their own version; without one, all three are what the pusher wrote.
    func inputs(
        candidate: JSONValue, champion: Champion, version: ModelState.VersionState, registrations: [RegistryEvent],
        environment: [String: String]
    ) throws -> GateInputs {
        var inputs = GateInputs(candidate: candidate)
        switch champion {
        case .none: break
        case .found(let record, let label):
            inputs.champion = record
            inputs.championLabel = label
        case .recordMissing(let label):
            inputs.championLabel = label
            inputs.championRecordMissing = true
        }
        inputs.approvals = try approvals(
            version.approvals.filter { $0.versionDigest == version.file.digest }, environment: environment)
        inputs.allowedApprovers = approvers
        inputs.signaturesRequired = allowedSigners != nil
        inputs.owners =
            [candidate["owner"]?["email"]?.string, version.file.owner["email"]?.string].compactMap { $0 }
            + registrations.map(\.actorEmail)
        if allowedSigners != nil {
            let verdicts = try signatures(registrations, environment: environment)
            inputs.ownerUnknown = !verdicts.contains(.good)
        }
        return inputs
    }

    /// Each `probe` check's outcome, by golden file: its SHA-256 (which answers judged) and the file replayed by
    /// `examiner` against the version file with `digest`, or why it was not.
    func probeProblems(
        _ checks: [GateCheck], model: String, version: Int, digest: String, examiner: GateRunner.ProbeExaminer?,
        unavailable: String
    ) throws -> [String: (sha256: String, problems: [String])] {
        var outcomes: [String: (sha256: String, problems: [String])] = [:]
        for case .probe(let golden) in checks where outcomes[golden] == nil {
            switch goldens[golden] {
            case nil: outcomes[golden] = ("", ["\(golden) is not in \(origin)"])
            case .failure(let unreadable)?: outcomes[golden] = ("", ["unreadable: \(unreadable.message)"])
            case .success(let bytes)?:
                let problems = try examiner.map { try $0(model, version, digest, golden, bytes) } ?? [unavailable]
                outcomes[golden] = (try SHA256.hex(of: bytes), problems)
            }
        }
        return outcomes
    }
}
