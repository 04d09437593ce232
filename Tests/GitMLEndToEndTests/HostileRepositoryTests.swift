import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

/// A directory beside the repository (outside it) holding one sentinel file: what an attack would read or write.
private struct Outside {
    let path: String
    let secret = "sentinel-\(UUID().uuidString)"

    init(_ repo: TempRepo, _ name: String = "outside") throws {
        path = repo.root + "-\(name)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try secret.write(toFile: path + "/secret.txt", atomically: true, encoding: .utf8)
    }

    /// Everything in the directory now: only the sentinel, unchanged, when nothing was written there.
    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
    var untouched: Bool {
        (try? contents()) == ["secret.txt"]
            && (try? String(contentsOfFile: path + "/secret.txt", encoding: .utf8)) == secret
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Exit 2, one `error:` line (and perhaps one `hint:` line), and no trap.
private func refusedCleanly(_ result: ProcessOutput, _ fragment: String) -> Bool {
    let lines = result.stderr.split(separator: "\n")
    return result.status == 2 && lines.first?.hasPrefix("error: ") == true && lines.count <= 2
        && result.stderr.contains(fragment)
}

/// A repository with one committed, registered run whose artifact is model.pkl.
private func project(_ name: String = #function) throws -> TempRepo {
    let repo = try TempRepo(name: name)
    #expect(try repo.gitML(["init"]).status == 0)
    try repo.write(".mlops/gates.yaml", "version: 1\nstaging:\n  - ungated: true\nproduction:\n  - ungated: true\n")
    try repo.write("model.pkl", "weights")
    try repo.commitAll("model")
    #expect(try repo.gitML(["snapshot", "--seed", "1", "--metric", "acc=0.9", "--artifact", "model.pkl"]).status == 0)
    #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
    try repo.commitAll("record and register")
    return repo
}

/// The newest run's record, to edit into a hand-made one.
private func newestRecord(_ repo: TempRepo) throws -> (id: String, members: [String: JSONValue]) {
    let id = try #require(
        try json(try repo.gitML(["log", "--json", "--limit", "1"]).stdout)["runs"]?.array?.first?["id"]?.string)
    guard case .object(let members) = try json(try repo.read(".mlops/runs/\(id).json")) else {
        throw TestFailure("record \(id) is not an object")
    }
    return (id, members)
}

@Suite("A cloned repository cannot attack whoever runs git-ml on it")
struct HostileRepositoryTests {
    @Test("a committed template linked to /proc/self/environ is refused; no environment is printed or copied")
    func templateLink() throws {
        let repo = try project()
        let template = repo.root + "/.mlops/templates/model-card.md"
        try FileManager.default.removeItem(atPath: template)
        try FileManager.default.createSymbolicLink(atPath: template, withDestinationPath: "/proc/self/environ")
        let token = "ghp_\(String(repeating: "A", count: 36))"
        for arguments in [["card", "churn@1"], ["card", "churn@1", "--write"]] {
            let result = try repo.gitML(arguments, environment: ["GITHUB_TOKEN": token])
            #expect(refusedCleanly(result, ".mlops/templates/model-card.md is a symbolic link"), "\(result.stderr)")
            #expect(!result.stdout.contains(token) && !result.stderr.contains(token))
        }
        #expect(!FileManager.default.fileExists(atPath: repo.root + "/.mlops/cards"))
    }

    @Test("a record whose data path runs through a committed link to elsewhere cannot make verify hash it")
    func dataThroughLink() throws {
        let repo = try project()
        let outside = try Outside(repo)
        defer { outside.remove() }
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/root", withDestinationPath: outside.path)
        var (_, record) = try newestRecord(repo)
        let sentinelDigest = try TempRepo.sha256(Array(outside.secret.utf8))
        record["data"] = .array([
            .object([
                "path": .string("root/secret.txt"), "type": .string("file"),
                "sha256": .string(String(repeating: "0", count: 64)), "size": .int(1),
            ])
        ])
        let id = try repo.writeAddressed(JSONWriter.pretty(.object(record)), in: ".mlops/runs", suffix: ".json")
        let result = try repo.gitML(["verify", id, "--json"])
        #expect(refusedCleanly(result, "root is a symbolic link to \(outside.path), outside the repository"))
        #expect(!result.stdout.contains(sentinelDigest))
        #expect(outside.untouched)
    }

    @Test("reproduce refuses a patch and a data copy that would write through a committed link out of the checkout")
    func reproduceThroughLink() throws {
        let repo = try project()
        let outside = try Outside(repo, "victim")
        defer { outside.remove() }
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/lnk", withDestinationPath: outside.path)
        try repo.commitAll("a link")
        let commit = try repo.head()
        #expect(try repo.gitML(["run", "--", "true"]).status == 0)
        var (_, record) = try newestRecord(repo)
        let patch = try repo.writeAddressed(
            """
            diff --git a/lnk/pwned b/lnk/pwned
            new file mode 100644
            index 0000000..0b1a8ee
            --- /dev/null
            +++ b/lnk/pwned
            @@ -0,0 +1 @@
            +pwned

            """, in: ".mlops/patches")
        guard case .object(var git) = record["git"] else { return }
        git["commit"] = .string(commit)
        git["dirty"] = .bool(true)
        git["patch"] = .string(patch)
        record["git"] = .object(git)
        let id = try repo.writeAddressed(JSONWriter.pretty(.object(record)), in: ".mlops/runs", suffix: ".json")
        let result = try repo.gitML(["reproduce", id])
        #expect(refusedCleanly(result, "lnk is a symbolic link to \(outside.path), outside the repository"))
        #expect(outside.untouched)

        // The same through a recorded data path instead of the patch.
        git["patch"] = .null
        git["dirty"] = .bool(false)
        record["git"] = .object(git)
        record["data"] = .array([
            .object([
                "path": .string("lnk/copied"), "type": .string("file"),
                "sha256": .string(String(repeating: "1", count: 64)), "size": .int(1),
            ])
        ])
        let copy = try repo.writeAddressed(JSONWriter.pretty(.object(record)), in: ".mlops/runs", suffix: ".json")
        let copied = try repo.gitML(["reproduce", copy])
        #expect(refusedCleanly(copied, "lnk is a symbolic link"), "\(copied.stderr)")
        #expect(outside.untouched)
    }

    @Test(
        "a .mlops directory committed as a link is refused before anything is written through it",
        arguments: [
            (".mlops/cards", ["card", "churn@1", "--write"]),
            (".mlops/models/churn/events", ["model", "approve", "churn", "1"]),
            (".mlops/runs", ["snapshot", "--metric", "acc=1"]), (".mlops/cache", ["log"]),
        ])
    func mlopsLinks(_ directory: String, _ arguments: [String]) throws {
        let repo = try project()
        let outside = try Outside(repo, "target")
        defer { outside.remove() }
        try? FileManager.default.removeItem(atPath: repo.root + "/" + directory)
        try FileManager.default.createSymbolicLink(
            atPath: repo.root + "/" + directory, withDestinationPath: outside.path)
        let result = try repo.gitML(arguments)
        #expect(refusedCleanly(result, "\(directory) is a symbolic link"), "\(result.stderr)")
        #expect(outside.untouched)
    }

    @Test("a recorded command.cwd outside the checkout is refused; nothing runs in the other repository")
    func cwdEscape() throws {
        let repo = try project()
        let other = try TempRepo(name: "other-\(#function)")
        #expect(try repo.gitML(["run", "--", "true"]).status == 0)
        var (_, record) = try newestRecord(repo)
        guard case .object(var command) = record["command"] else { return }
        command["cwd"] = .string("../" + URL(fileURLWithPath: other.root).lastPathComponent)
        command["argv"] = .array([.string("touch"), .string("ran-here")])
        record["command"] = .object(command)
        let id = try repo.writeAddressed(JSONWriter.pretty(.object(record)), in: ".mlops/runs", suffix: ".json")
        let result = try repo.gitML(["reproduce", id])
        #expect(refusedCleanly(result, "command.cwd must be a relative path inside the repository"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: other.root + "/ran-here"))
        #expect(!FileManager.default.fileExists(atPath: other.root + "/.mlops"))
    }

    @Test("a dirty tree's patch carries no secret: .env left out, added tokens redacted, untracked binaries by digest")
    func patchSecrets() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        try repo.write("train.py", "print('hi')\n")
        try repo.commitAll("code")
        let password = "hunter2-\(UUID().uuidString.prefix(8))"
        let openai = "sk-proj-\(String(repeating: "x7", count: 24))"
        let github = "ghp_\(String(repeating: "Z", count: 36))"
        try repo.write(".env", "DB_PASSWORD=\(password)\n")
        try repo.write("train.py", "print('hi')\nclient = OpenAI(api_key=\"\(openai)\")\n")
        var binary = Data([0, 1, 2, 0xFF, 0])
        binary.append(Data(github.utf8))
        binary.append(Data([0, 0, 7]))
        try repo.write("weights.bin", binary)
        let snapshot = try repo.gitML(["snapshot", "--json"])
        #expect(snapshot.status == 0, "\(snapshot.stderr)")
        let (_, record) = try newestRecord(repo)
        let git = record["git"]
        #expect(
            git?["left_out_of_patch"]?.array?.compactMap { $0["path"]?.string }.sorted() == [".env", "weights.bin"])
        #expect(git?["left_out_of_patch"]?.array?.first { $0["path"]?.string == "weights.bin" }?["sha256"] != nil)
        #expect(git?["patch_redactions"]?.array?.first?["path"]?.string == "train.py")
        #expect(git?["patch_redactions"]?.array?.first?["line"] == .int(2))
        try repo.git("add", ".mlops")
        try repo.git("commit", "-qm", "record")
        let objects = try repo.git("cat-file", "--batch-all-objects", "--batch")
        for secret in [password, openai, github] { #expect(!objects.contains(secret), "\(secret.prefix(6))... in git") }
    }

    @Test("numbers that cannot be counts, versions, sizes or seeds are one-line errors, never a trap")
    func hostileNumbers() throws {
        let repo = try project()
        let event = ".mlops/models/churn/events/20261201T000000.000000Z-000000000000.json"
        try repo.write(
            event, "{\"model\":\"churn\",\"version\":1e300,\"kind\":\"stage\",\"time\":\"2026-12-01T00:00:00Z\"}")
        for arguments in [["model", "list"], ["model", "history", "churn"], ["verify", "--range", "..HEAD"]] {
            let result = try repo.gitML(arguments)
            #expect(result.status != 132 && result.status != 134 && result.status != 139)
            if arguments[0] == "model" {
                #expect(refusedCleanly(result, "version must be a whole number"), "\(result.stderr)")
            }
        }
        try FileManager.default.removeItem(atPath: repo.root + "/" + event)
        try repo.write(".mlops/gates.yaml", "production:\n  - approvals: 0x7fffffffffffffff\n")
        let gate = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(gate.status == 1 && gate.stderr.contains("approvals must be a whole number from 0 to 100"))
        var (_, record) = try newestRecord(repo)
        record["seed"] = .object(["value": .double(1e300), "source": .string("cli")])
        let id = try repo.writeAddressed(JSONWriter.pretty(.object(record)), in: ".mlops/runs", suffix: ".json")
        for arguments in [["show", id], ["reproduce", id]] {
            let result = try repo.gitML(arguments)
            #expect(refusedCleanly(result, "seed.value must be a whole number"), "\(arguments): \(result.stderr)")
        }
        // verify reports a malformed record as a finding, naming the field (exit 1, like a modified file).
        let verify = try repo.gitML(["verify", id])
        #expect(verify.status == 1 && verify.stdout.contains("corrupt") && verify.stdout.contains("seed.value"))
    }

    @Test("a duplicate key is an error naming the key, in JSON and YAML alike")
    func duplicateKeys() throws {
        let repo = try project()
        try repo.write(".mlops/gates.yaml", "production:\n  - metric: acc\n    min: 0.95\nproduction: []\n")
        let gate = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(gate.status == 1 && gate.stderr.contains("duplicate key \"production\""), "\(gate.stderr)")
        let (_, record) = try newestRecord(repo)
        let text = JSONWriter.pretty(.object(record)).replacingOccurrences(
            of: "\"kind\": \"snapshot\"", with: "\"kind\": \"snapshot\", \"kind\": \"run\"")
        #expect(text.contains("\"kind\": \"run\""))
        let id = try repo.writeAddressed(text, in: ".mlops/runs", suffix: ".json")
        let shown = try repo.gitML(["show", id])
        #expect(refusedCleanly(shown, "duplicate key \"kind\""), "\(shown.stderr)")
    }

    @Test("a repository cannot choose what runs on the auditor's machine, nor read files through committed links")
    func secondRound() throws {
        let repo = try project()
        let outside = try Outside(repo)
        defer { outside.remove() }
        let token = "ghp_\(String(repeating: "Q", count: 36))"
        // environment.python naming a script in the repository.
        try repo.write(
            "tools.sh", "#!/bin/sh\necho \"$GITHUB_TOKEN\" > \(outside.path)/pwned.txt\necho /usr/bin/python3\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: repo.root + "/tools.sh")
        let config = try repo.read(".mlops/config.yaml").replacingOccurrences(
            of: "python: python3", with: "python: ./tools.sh")
        try repo.write(".mlops/config.yaml", config)
        let ran = try repo.gitML(["snapshot"], environment: ["GITHUB_TOKEN": token])
        #expect(refusedCleanly(ran, "environment.python must be a command name on PATH"), "\(ran.stderr)")
        #expect(outside.untouched)
        try repo.git("checkout", "--", ".mlops/config.yaml")
        // params.yaml and a lockfile linked to a file outside.
        try FileManager.default.createSymbolicLink(
            atPath: repo.root + "/params.yaml", withDestinationPath: outside.path + "/secret.txt")
        let params = try repo.gitML(["snapshot"])
        #expect(refusedCleanly(params, "params.yaml is a symbolic link"), "\(params.stderr)")
        try FileManager.default.removeItem(atPath: repo.root + "/params.yaml")
        try FileManager.default.createSymbolicLink(
            atPath: repo.root + "/poetry.lock", withDestinationPath: outside.path + "/secret.txt")
        #expect(try repo.gitML(["snapshot"]).status == 0)
        let (_, record) = try newestRecord(repo)
        #expect(record["environment"]?["lockfiles"]?["poetry.lock"] == nil, "a lockfile linked out is not hashed")
        #expect(outside.untouched)
    }

    @Test("variables config.yaml names are not recorded when they hold credentials, whatever they are called")
    func configuredVariables() throws {
        let repo = try project()
        try repo.write(
            ".mlops/config.yaml",
            "version: 1\nenvironment:\n  variables: [GPG_PASSPHRASE, SLACK_WEBHOOK_URL, AZURE_STORAGE_CONNECTION_STRING, BUILD_ID, OMP_NUM_THREADS]\n"
        )
        let values = [
            "GPG_PASSPHRASE": "correct horse battery staple",
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/xyz",
            "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc",
            "BUILD_ID": "a8f3k29dl3k4j5h6g7f8d9s0", "OMP_NUM_THREADS": "4",
        ]
        #expect(try repo.gitML(["snapshot"], environment: values).status == 0)
        let (_, record) = try newestRecord(repo)
        let recorded = record["environment"]?["variables"]
        for name in ["GPG_PASSPHRASE", "SLACK_WEBHOOK_URL", "AZURE_STORAGE_CONNECTION_STRING", "BUILD_ID"] {
            #expect(recorded?[name]?.string == "<redacted>", "\(name)")
        }
        #expect(recorded?["OMP_NUM_THREADS"]?.string == "4")
    }

    @Test("a hand-made manifest cannot make the store copy a file from outside the work tree")
    func poisonedManifest() throws {
        let repo = try project()
        let outside = try Outside(repo)
        defer { outside.remove() }
        try repo.write("out/a.bin", "artifact")
        #expect(try repo.gitML(["snapshot", "--artifact", "out"]).status == 0)
        let (_, record) = try newestRecord(repo)
        let digest = try #require(record["artifacts"]?.array?.first?["sha256"]?.string)
        let manifest = repo.root + "/.mlops/manifests/\(digest)"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: manifest)
        try
            (try String(contentsOfFile: manifest, encoding: .utf8)
            + "\(String(repeating: "1", count: 64)) 6 f ../../../../../../..\(outside.path)/secret.txt\n").write(
                toFile: manifest, atomically: false, encoding: .utf8)
        let again = try repo.gitML(["snapshot", "--artifact", "out"])
        #expect(
            !FileManager.default.fileExists(
                atPath: repo.root + "/.mlops/cache/objects/" + String(repeating: "1", count: 64)))
        #expect(again.status == 0 || again.stderr.contains("the manifest was modified"), "\(again.stderr)")
        #expect(outside.untouched)
    }

    @Test("a dirty tree's binary changes, tracked or not, are recorded by digest, never as patch content")
    func trackedBinary() throws {
        let repo = try project()
        try repo.write("blob.bin", Data([0, 1, 2, 3, 0]))
        try repo.commitAll("a binary")
        let token = "AKIA" + String(repeating: "Z", count: 16)
        var bytes = Data([0, 9, 0])
        bytes.append(Data(token.utf8))
        try repo.write("blob.bin", bytes)
        #expect(try repo.gitML(["snapshot"]).status == 0)
        let (_, record) = try newestRecord(repo)
        #expect(record["git"]?["left_out_of_patch"]?.array?.first?["path"]?.string == "blob.bin")
        try repo.git("add", ".mlops")
        try repo.git("commit", "-qm", "record")
        #expect(!(try repo.git("cat-file", "--batch-all-objects", "--batch")).contains(token))
    }

    @Test("a template nesting thousands of sections is a one-line error, not a stack overflow")
    func deepTemplate() throws {
        let repo = try project()
        try repo.write(".mlops/templates/model-card.md", String(repeating: "{{#a}}", count: 5000))
        let card = try repo.gitML(["card", "churn@1"])
        #expect(refusedCleanly(card, "sections nest 5000 deep"), "\(card.stderr)")
    }
}
