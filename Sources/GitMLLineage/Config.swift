import GitMLBasics
import GitMLDrift
import GitMLStore

/// `.mlops/config.yaml`: what every snapshot records unless told otherwise.
public struct Config: Sendable, Equatable {
    /// Data paths recorded when a command names no `--data`.
    public var data: [String] = []
    /// Environment variables recorded by name; their values still pass the secret scanner.
    public var environmentVariables: [String] = []
    /// The interpreter described when the command is not itself a Python interpreter.
    public var python: String = "python3"
    /// Who may approve model versions (git user.email values); empty means anyone.
    public var approvers: [String] = []
    /// When a column counts as drifted.
    public var drift = DriftThresholds()
    /// Store artifacts by hard link instead of a copy (`artifact_store: hardlink`): saves disk, and `verify` then
    /// re-hashes the stored copy too, since a write to the work tree's file reaches it.
    public var hardLinkArtifacts = false
    /// Where artifacts are pushed and pulled (`remotes:`), by name.
    public var remotes: [String: RemoteSettings] = [:]
    /// Have the pre-push hook push every model version to the default remote first (if this clone has used it).
    public var pushOnGitPush = false

    /// One remote: an OCI repository (`oci://host[:port]/repository`), over plain HTTP only when asked.
    public struct RemoteSettings: Sendable, Equatable {
        public var url: String
        public var insecureHTTP: Bool

        public init(url: String, insecureHTTP: Bool) {
            self.url = url
            self.insecureHTTP = insecureHTTP
        }
    }

    /// The remote a command uses when it names none: `origin`, else the only one.
    public var defaultRemote: String? {
        remotes["origin"] != nil ? "origin" : (remotes.count == 1 ? remotes.keys.first : nil)
    }

    /// A remote's name: letters, digits, `.`, `_` and `-`, not starting with `-`.
    public static func isRemoteName(_ name: String) -> Bool {
        guard let first = name.first, first != "-", first != ".", name.count <= 64 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    /// The defaults `git ml init` writes.
    public init() {}

    /// Reads the file; an absent file gives the defaults, a malformed one an error naming it.
    public static func load(from path: String) throws -> Config {
        guard FileSystem.exists(path) else { return Config() }
        return try parse(try AtomicFile.read(path, limit: 1 << 20))
    }

    /// Reads config.yaml's bytes (from the work tree, or from a commit).
    public static func parse(_ bytes: [UInt8]) throws -> Config {
        let source = ".mlops/config.yaml"
        let value = try YAMLReader.parse(bytes, source: source)
        var config = Config()
        guard case .object(let top) = value else {
            if value == .null { return config }
            throw InputError.malformed(source: source, detail: "expected a mapping at the top level")
        }
        config.data = try strings(top["data"], key: "data", source: source)
        config.approvers = try strings(top["approvers"], key: "approvers", source: source)
        if let store = top["artifact_store"], store != .null {
            guard let text = store.string, text == "copy" || text == "hardlink" else {
                throw InputError.malformed(source: source, detail: "artifact_store must be copy or hardlink")
            }
            config.hardLinkArtifacts = text == "hardlink"
        }
        if let remotes = top["remotes"], remotes != .null {
            guard case .object(let members) = remotes else {
                throw InputError.malformed(source: source, detail: "remotes must be a mapping of names to remotes")
            }
            for (name, value) in members {
                guard isRemoteName(name) else {
                    throw InputError.malformed(
                        source: source, detail: "remotes.\(name): a remote's name is letters, digits, . _ and -")
                }
                guard case .object(let settings) = value, let url = settings["url"]?.string, url.hasPrefix("oci://")
                else {
                    throw InputError.malformed(
                        source: source, detail: "remotes.\(name) needs url: oci://<host>[:port]/<repository>")
                }
                for key in settings.keys where key != "url" && key != "insecure_http" {
                    throw InputError.malformed(
                        source: source, detail: "remotes.\(name).\(key) is not a setting: use url or insecure_http")
                }
                var insecure = false
                if let flag = settings["insecure_http"], flag != .null {
                    guard case .bool(let value) = flag else {
                        throw InputError.malformed(
                            source: source, detail: "remotes.\(name).insecure_http must be true or false")
                    }
                    insecure = value
                }
                config.remotes[name] = RemoteSettings(url: url, insecureHTTP: insecure)
            }
        }
        if let remote = top["remote"], remote != .null {
            guard case .object(let members) = remote else {
                throw InputError.malformed(source: source, detail: "remote must be a mapping")
            }
            for (key, value) in members {
                guard key == "push_on_git_push", case .bool(let flag) = value else {
                    throw InputError.malformed(
                        source: source, detail: "remote.\(key) is not a setting: use push_on_git_push: true or false")
                }
                config.pushOnGitPush = flag
            }
        }
        if let drift = top["drift"], drift != .null {
            guard case .object(let members) = drift else {
                throw InputError.malformed(source: source, detail: "drift must be a mapping")
            }
            for (key, value) in members {
                guard let number = value.number, number.isFinite, number >= 0 else {
                    throw InputError.malformed(source: source, detail: "drift.\(key) must be a number")
                }
                switch key {
                case "psi": config.drift.psi = number
                case "p_value": config.drift.pValue = number
                default:
                    throw InputError.malformed(
                        source: source, detail: "drift.\(key) is not a setting: use psi or p_value")
                }
            }
        }
        if let environment = top["environment"], environment != .null {
            guard case .object(let members) = environment else {
                throw InputError.malformed(source: source, detail: "environment must be a mapping")
            }
            config.environmentVariables = try strings(
                members["variables"], key: "environment.variables", source: source)
            if let python = members["python"] {
                // A command found on the user's PATH, never a path into the repository: git-ml runs it to ask its
                // version, and a cloned repository must not choose what runs on the auditor's machine.
                guard let text = python.string, !text.isEmpty, !text.contains("/"), !text.hasPrefix("-") else {
                    throw InputError.malformed(
                        source: source,
                        detail: "environment.python must be a command name on PATH (like python3), not a path")
                }
                config.python = text
            }
        }
        return config
    }

    private static func strings(_ value: JSONValue?, key: String, source: String) throws -> [String] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else {
            throw InputError.malformed(source: source, detail: "\(key) must be a list of strings")
        }
        return try items.map {
            guard let s = $0.string ?? ($0.number != nil ? $0.description : nil) else {
                throw InputError.malformed(source: source, detail: "\(key) must be a list of strings")
            }
            return s
        }
    }

    /// The text `git ml init` writes: every setting with its default and a comment saying what it does.
    public static let defaultText = """
        # git-ml configuration: see docs/format.md#config
        version: 1

        # Paths recorded (sha256 of every file) by `git ml snapshot` and `git ml run` when no --data is given.
        data: []

        environment:
          # Environment variables recorded by name. Values that look like secrets are still redacted.
          variables:
            - CUDA_VISIBLE_DEVICES
            - OMP_NUM_THREADS
            - MKL_NUM_THREADS
          # Interpreter whose version and packages are recorded when the command is not a Python one.
          python: python3

        # Who may approve model versions (their git user.email); empty means anyone with commit access.
        approvers: []

        # How artifacts are kept in .mlops/cache/objects: copy (a reflink where the file system can), or hardlink
        # to save disk (then git ml verify re-hashes the stored copy as well, since writes to the file reach it).
        artifact_store: copy

        # When `git ml drift` calls a column drifted: PSI above psi, or a KS / chi-squared p-value below p_value.
        drift:
          psi: 0.2
          p_value: 0.05

        """
}
