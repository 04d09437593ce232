import Foundation
import GitMLBasics
import GitMLLineage
import Testing

@testable import GitMLRemote

@Suite("Remote URLs, challenges and config")
struct RemoteParsingTests {
    @Test(
        "oci:// URLs: host[:port] and a repository by the distribution spec's grammar",
        arguments: [
            ("oci://ghcr.io/team/churn", true), ("oci://127.0.0.1:5000/a", true), ("oci://[::1]:5000/a/b-c/d_e", true),
            ("oci://reg.example.com/a..b", false), ("oci://reg.example.com/Team", false), ("oci://reg/-a", false),
            ("oci://reg:99999/a", false), ("oci://user@reg/a", false), ("https://reg/a", false), ("oci://reg", false),
            ("oci://reg/a/../b", false), ("oci://reg/a___b", false), ("oci://reg/a__b", true),
            ("oci://reg/a?x=1", false),
        ])
    func urls(_ url: String, _ valid: Bool) {
        #expect(((try? OCIReference(url: url, insecure: false)) != nil) == valid, "\(url)")
    }

    @Test("a reference's API base is https unless plain HTTP was asked for")
    func base() throws {
        #expect(
            try OCIReference(url: "oci://ghcr.io/team/churn/", insecure: false).base == "https://ghcr.io/v2/team/churn")
        #expect(try OCIReference(url: "oci://127.0.0.1:5000/a", insecure: true).base == "http://127.0.0.1:5000/v2/a")
    }

    @Test("WWW-Authenticate challenges: Basic, and Bearer with quoted, escaped and comma-holding parameters")
    func challenges() {
        let basic = RegistrySession.parse(challenge: #"Basic realm="git-ml""#)
        #expect(basic?.scheme == "basic" && basic?.parameters["realm"] == "git-ml")
        let bearer = RegistrySession.parse(
            challenge:
                #"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push",error="insufficient_scope""#
        )
        #expect(bearer?.scheme == "bearer")
        #expect(bearer?.parameters["realm"] == "https://auth.example.com/token")
        #expect(bearer?.parameters["scope"] == "repository:a/b:pull,push")
        #expect(bearer?.parameters["error"] == "insufficient_scope")
        #expect(RegistrySession.parse(challenge: #"Bearer realm="a\"b""#)?.parameters["realm"] == "a\"b")
        #expect(RegistrySession.parse(challenge: "") == nil)
    }

    @Test(
        "plain HTTP carries credentials only to loopback and private networks, by exact address",
        arguments: [
            ("127.0.0.1:5000", true), ("10.1.2.3", true), ("172.16.0.9:80", true), ("192.168.1.2", true),
            ("localhost:5000", true), ("[::1]:5000", true), ("[fd00::1]", true), ("8.8.8.8", false),
            ("172.32.0.1", false), ("10.0.0.1.evil.example", false), ("127.0.0.1.nip.io", false), ("010.0.0.1", false),
            ("ghcr.io", false), ("1.2.3", false),
        ])
    func privateHosts(_ host: String, _ expected: Bool) {
        #expect(RegistrySession.isPrivate(host) == expected, "\(host)")
    }

    @Test("credentials follow the origin: scheme, case-folded host and port; a fragment ends the host as curl reads it")
    func origins() {
        #expect(
            HTTPConnection.origin(of: "https://Reg.Example.com/v2/x")
                == HTTPConnection.origin(of: "https://reg.example.com:443/y"))
        #expect(HTTPConnection.origin(of: "http://reg:80/a") != HTTPConnection.origin(of: "https://reg/a"))
        #expect(HTTPConnection.host(of: "https://cdn.evil#@reg.example/x") == "cdn.evil")
        #expect(
            HTTPConnection.origin(of: "https://cdn.evil#@reg.example/x")
                != HTTPConnection.origin(of: "https://reg.example/x"))
    }

    @Test("tags: what OCI allows")
    func tags() {
        #expect(OCIReference.isTag("churn-v3") && OCIReference.isTag("run-" + String(repeating: "a", count: 64)))
        #expect(
            !OCIReference.isTag("-x") && !OCIReference.isTag("a/b")
                && !OCIReference.isTag(String(repeating: "a", count: 129)))
    }

    @Test("config.yaml: remotes parse strictly; push_on_git_push is a boolean")
    func config() throws {
        let good = try Config.parse(
            Array(
                "remotes:\n  origin:\n    url: oci://r/a\n    insecure_http: true\nremote:\n  push_on_git_push: true\n"
                    .utf8))
        #expect(good.remotes["origin"] == Config.RemoteSettings(url: "oci://r/a", insecureHTTP: true))
        #expect(good.pushOnGitPush && good.defaultRemote == "origin")
        for bad in [
            "remotes:\n  origin:\n    url: https://r/a\n", "remotes:\n  origin:\n    url: oci://r/a\n    token: x\n",
            "remotes:\n  -x:\n    url: oci://r/a\n", "remote:\n  push_on_git_push: yes please\n", "remotes: [a]\n",
        ] {
            #expect(throws: InputError.self, "\(bad)") { try Config.parse(Array(bad.utf8)) }
        }
    }
}
