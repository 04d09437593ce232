import GitMLBasics
import Testing

@testable import GitMLLineage

@Suite("Secret scanner")
struct SecretScannerTests {
    let scanner = SecretScanner(environment: ["MY_SERVICE_PASSWORD": "hunter2-correct-horse", "HOME": "/root"])

    @Test(
        "token shapes are redacted wherever they appear",
        arguments: [
            "AKIAIOSFODNN7EXAMPLE", "ghp_" + String(repeating: "a1", count: 18),
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "sk-proj-abcdefghijklmnopqrstuvwx", "xoxb-123456789012-abcdefghij",
            "hf_" + String(repeating: "Ab", count: 17),
            "glpat-abcdefghijklmnopqrst",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ])
    func shapes(_ secret: String) {
        let out = scanner.redact("value=\(secret) end")
        #expect(!out.contains(secret))
        #expect(out == "value=<redacted> end")
    }

    @Test("PEM private keys are redacted whole")
    func pem() {
        let text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\nafter"
        #expect(scanner.redact(text) == "before\n<redacted>\nafter")
    }

    @Test("passwords in URLs are removed")
    func urls() {
        #expect(scanner.redact("postgres://app:s3cretpw@db:5432/x") == "postgres://<redacted>@db:5432/x")
        #expect(scanner.redact(url: "https://user:ghp_tok@github.com/o/r.git") == "https://github.com/o/r.git")
        #expect(scanner.redact(url: "git@github.com:o/r.git") == "git@github.com:o/r.git")
    }

    @Test("values of secret-named environment variables are hidden anywhere")
    func knownValues() {
        #expect(scanner.redact("connect with hunter2-correct-horse now") == "connect with <redacted> now")
    }

    @Test(
        "secret names",
        arguments: [
            ("GITHUB_TOKEN", true), ("AWS_SECRET_ACCESS_KEY", true), ("OPENAI_API_KEY", true), ("DATABASE_URL", true),
            ("password", true), ("api-key", true), ("lr", false), ("epochs", false), ("CUDA_VISIBLE_DEVICES", false),
        ])
    func names(_ pair: (String, Bool)) {
        #expect(SecretScanner.isSecretName(pair.0) == pair.1)
    }

    @Test("a command line hides the value after a secret flag")
    func arguments() {
        let argv = ["python3", "train.py", "--api-key", "abc123", "--password=pw", "--lr", "0.1", "token=xyz"]
        #expect(
            scanner.redact(arguments: argv) == [
                "python3", "train.py", "--api-key", "<redacted>", "--password=<redacted>", "--lr", "0.1",
                "token=<redacted>",
            ])
    }

    @Test("ordinary text and digests pass unchanged")
    func untouched() {
        let text = "sha256 3f2a0c1b9e8d7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1 acc=0.93 sk-short"
        #expect(scanner.redact(text) == text)
    }
}

@Suite("Run queries")
struct RunQueryTests {
    let summary =
        (try? JSONParserShim.parse(
            "{\"metrics\":{\"acc\":0.93,\"eval.f1\":0.5},\"params\":{\"opt\":\"adam\",\"lr\":0.01},\"status\":\"succeeded\",\"git\":{\"branch\":\"main\"}}"
        )) ?? .null

    @Test(
        "conditions",
        arguments: [
            ("metrics.acc > 0.9", true), ("metrics.acc > 0.95", false), ("metrics.eval.f1 >= 0.5", true),
            ("params.opt = 'adam' and metrics.acc < 1", true), ("params.lr == 0.01", true),
            ("status != succeeded", false),
            ("git.branch = main", true), ("metrics.missing > 0", false),
        ])
    func conditions(_ pair: (String, Bool)) throws {
        #expect(try RunQuery(where: pair.0).matches(summary) == pair.1)
    }

    @Test(
        "bad expressions are errors",
        arguments: ["metrics.acc >", "metrics.acc ~ 1", "acc > 1", "metrics.acc > 1 or x", "params.a = 'x"])
    func bad(_ text: String) {
        #expect(throws: LineageError.self) { try RunQuery(where: text) }
    }
}

enum JSONParserShim {
    static func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(text, source: "test") }
}
