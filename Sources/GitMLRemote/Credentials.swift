import Foundation
import GitMLBasics

/// A user name and secret for one registry host. Never printed, logged, or written under `.mlops`.
public struct Credential: Sendable, CustomStringConvertible {
    public let user: String
    let secret: String

    public init(user: String, secret: String) {
        self.user = user
        self.secret = secret
    }

    /// `Authorization: Basic ...`.
    var basic: String { "Basic " + Data("\(user):\(secret)".utf8).base64EncodedString() }

    public var description: String { "credential for \(user)" }
}

/// Where credentials come from, in order: Docker's config (`auths`, then `credHelpers` or `credsStore` through
/// `docker-credential-<name> get`), then git's credential helpers (`git credential fill`, never prompting).
public struct CredentialSource: Sendable {
    /// The environment the helpers see (HOME, DOCKER_CONFIG, PATH, GIT_CONFIG_*).
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    public func credential(host: String, insecure: Bool) -> Credential? {
        docker(host: host) ?? git(host: host, insecure: insecure)
    }

    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    func docker(host: String) -> Credential? {
        guard let directory = environment["DOCKER_CONFIG"] ?? environment["HOME"].map({ $0 + "/.docker" }),
            let bytes = try? Array(Data(contentsOf: URL(fileURLWithPath: directory + "/config.json"))),
            bytes.count < 1 << 20, let config = try? JSONParser.parse(bytes, source: "docker config")
        else { return nil }
        // Docker writes keys as a bare host or as an https:// URL (Docker Hub's historic one).
        let keys = [host, "https://\(host)", "http://\(host)", "https://\(host)/v1/", "https://\(host)/v2/"]
        if let auths = config["auths"]?.object {
            for key in keys {
                guard let entry = auths[key] else { continue }
                if let auth = entry["auth"]?.string, let decoded = Data(base64Encoded: auth),
                    let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
                {
                    return Credential(user: String(text[..<colon]), secret: String(text[text.index(after: colon)...]))
                }
                if let user = entry["username"]?.string, let secret = entry["password"]?.string {
                    return Credential(user: user, secret: secret)
                }
            }
        }
        let helper = keys.lazy.compactMap { config["credHelpers"]?[$0]?.string }.first ?? config["credsStore"]?.string
        guard let helper, !helper.isEmpty, helper.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }),
            let executable = Executable.find("docker-credential-\(helper)", path: environment["PATH"]),
            let result = try? ChildProcess.run(
                executable: executable, arguments: ["docker-credential-\(helper)", "get"], environment: environment,
                directory: nil, echo: .none, input: Array(host.utf8)),
            result.exitStatus == 0, let answer = try? JSONParser.parse(result.stdout, source: "credential helper"),
            let user = answer["Username"]?.string, let secret = answer["Secret"]?.string, !secret.isEmpty
        else { return nil }
        return Credential(user: user, secret: secret)
    }

    /// `git credential fill` for the host: whatever helper the user configured (store, cache, libsecret, a
    /// manager), with prompts turned off so a command never hangs waiting for a terminal.
    func git(host: String, insecure: Bool) -> Credential? {
        guard let executable = Executable.find("git", path: environment["PATH"]) else { return nil }
        var environment = self.environment
        environment["GIT_TERMINAL_PROMPT"] = "0"
        environment["GCM_INTERACTIVE"] = "never"
        environment["GIT_ASKPASS"] = "/bin/false"
        environment["SSH_ASKPASS"] = "/bin/false"
        let input = "protocol=\(insecure ? "http" : "https")\nhost=\(host)\n\n"
        guard
            let result = try? ChildProcess.run(
                executable: executable, arguments: ["git", "credential", "fill"], environment: environment,
                directory: nil, echo: .none, input: Array(input.utf8)),
            result.exitStatus == 0
        else { return nil }
        var user: String?
        var secret: String?
        for line in String(decoding: result.stdout, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("username=") { user = String(line.dropFirst("username=".count)) }
            if line.hasPrefix("password=") { secret = String(line.dropFirst("password=".count)) }
        }
        guard let user, let secret, !secret.isEmpty else { return nil }
        return Credential(user: user, secret: secret)
    }
}
