import GitMLBasics
import GitMLGit
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// Errors of signing and signature checking.
public enum ProvenanceError: GitMLError {
    case signingFailed(key: String, detail: String)
    case signerUnavailable(program: String)

    public var message: String {
        switch self {
        case .signingFailed(let key, let detail): return "could not sign with \(key): \(detail)"
        case .signerUnavailable(let program):
            return "\(program) is not on PATH, so signatures cannot be made or checked"
        }
    }
    public var hint: String {
        switch self {
        case .signingFailed:
            return
                "check user.signingkey (a private key, or a public key whose private half is in ssh-agent); git commit -S uses the same key"
        case .signerUnavailable: return "install OpenSSH's client (apt-get install openssh-client)"
        }
    }
    public var code: String {
        switch self {
        case .signingFailed: return "signing-failed"
        case .signerUnavailable: return "ssh-keygen-missing"
        }
    }
}

/// OpenSSH signatures (`ssh-keygen -Y`) over registry events, made with the key git signs commits with and checked
/// against a committed `allowed_signers` file, as git checks commits (`gpg.ssh.allowedSignersFile`). The namespace
/// is `git-ml`, never git's own `git`, so a signed commit cannot be replayed as an approval.
public enum SSHSignatures {
    /// The signature namespace of every git-ml signature.
    public static let namespace = "git-ml"
    /// The repository file listing who may sign, in OpenSSH's allowed-signers format.
    public static let allowedSignersFile = ".mlops/allowed_signers"
    /// The detached signature of `file` sits beside it.
    public static func signaturePath(of file: String) -> String { file + ".sig" }

    /// The key git would sign with, when git is set to sign with SSH (`gpg.format=ssh`, `user.signingkey`).
    public struct SigningKey: Sendable {
        /// What user.signingkey says (a path, or `key::<public key>`), for messages.
        public let setting: String
        let program: String

        /// Nil when git is not set up to sign with SSH.
        public init?(config: GitConfig, environment: [String: String]) {
            guard config.get("gpg.format")?.lowercased() == "ssh", let key = config.get("user.signingkey"),
                !key.isEmpty
            else { return nil }
            setting = key
            program = config.get("gpg.ssh.program") ?? "ssh-keygen"
        }
    }

    /// A detached, armoured SSH signature of `bytes`.
    public static func sign(_ bytes: [UInt8], with key: SigningKey, environment: [String: String]) throws -> [UInt8] {
        let program = try locate(key.program, environment: environment)
        let scratch = try ScratchDirectory()
        let keyFile: String
        if key.setting.hasPrefix("key::") || key.setting.hasPrefix("ssh-") {
            // A literal public key: its private half must be in ssh-agent, as git requires.
            let literal = key.setting.hasPrefix("key::") ? String(key.setting.dropFirst(5)) : key.setting
            keyFile = scratch.path + "/key.pub"
            try AtomicFile.write(Array((literal + "\n").utf8), to: keyFile, mode: 0o600)
        } else if key.setting.hasPrefix("~/") {
            keyFile = (environment["HOME"] ?? "") + key.setting.dropFirst()
        } else {
            keyFile = key.setting
        }
        let result = try ChildProcess.run(
            executable: program, arguments: [program, "-Y", "sign", "-n", namespace, "-f", keyFile],
            environment: environment, directory: nil, echo: .none, input: bytes)
        let signature = result.stdout
        guard result.exitStatus == 0, String(decoding: signature.prefix(40), as: UTF8.self).contains("SSH SIGNATURE")
        else {
            throw ProvenanceError.signingFailed(
                key: key.setting, detail: result.errorLine.isEmpty ? "ssh-keygen failed" : result.errorLine)
        }
        return signature
    }

    static func locate(_ program: String, environment: [String: String]) throws -> String {
        guard let path = Executable.find(program, path: environment["PATH"]) ?? Executable.find(program, path: nil)
        else { throw ProvenanceError.signerUnavailable(program: program) }
        return path
    }
}

/// Checks signatures against one allowed-signers file (the policy of the branch being pushed to). Each check runs
/// `ssh-keygen -Y verify` with the time the signed event claims, so a key is judged by the validity it had then.
public final class SignatureVerifier: @unchecked Sendable {
    /// Why a signature does or does not count.
    public enum Verdict: Sendable, Equatable {
        case good
        case unsigned
        case bad(String)
    }

    private let scratch: ScratchDirectory
    private let signersFile: String
    private let program: String
    private let environment: [String: String]

    /// `allowedSigners` is the file's bytes.
    public init(allowedSigners: [UInt8], environment: [String: String]) throws {
        program = try SSHSignatures.locate("ssh-keygen", environment: environment)
        scratch = try ScratchDirectory()
        signersFile = scratch.path + "/allowed_signers"
        try AtomicFile.write(allowedSigners, to: signersFile, mode: 0o600)
        self.environment = environment
    }

    /// Whether `signature` is a good `git-ml` signature of `bytes` by `principal` (an email, as allowed_signers lists
    /// it) at `time` (the event's ISO 8601 UTC time).
    public func verify(_ bytes: [UInt8], signature: [UInt8]?, principal: String, time: String) -> Verdict {
        guard let signature, !signature.isEmpty else { return .unsigned }
        let who = principal.trimmingCharacters()
        guard !who.isEmpty, !who.hasPrefix("-") else { return .bad("the event names no signer") }
        let file = scratch.path + "/sig-\(UInt64.random(in: 0...UInt64.max))"
        guard (try? AtomicFile.write(signature, to: file, mode: 0o600)) != nil else {
            return .bad("could not stage the signature for checking")
        }
        defer { unlink(file) }
        var arguments = [
            program, "-Y", "verify", "-f", signersFile, "-I", who, "-n", SSHSignatures.namespace, "-s", file,
        ]
        if let stamp = Self.verifyTime(time) { arguments.append("-Overify-time=\(stamp)") }
        guard
            let result = try? ChildProcess.run(
                executable: program, arguments: arguments, environment: environment, directory: nil, echo: .none,
                input: bytes)
        else { return .bad("ssh-keygen could not run") }
        if result.exitStatus == 0 { return .good }
        let reason = result.errorLine.isEmpty ? "the signature does not verify" : result.errorLine
        return .bad(reason.trimmingCharacters())
    }

    /// `2026-12-01T21:08:01.123456Z` -> `20261201210801Z`, the form `-Overify-time` takes.
    static func verifyTime(_ iso: String) -> String? {
        let digits = iso.prefix(19).filter(\.isNumber)
        guard digits.count == 14, iso.count >= 19 else { return nil }
        return digits + "Z"
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
