import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

/// Production needs acc >= 0.95, a clean seeded lineage and one approval from someone other than the owner.
private let strictGates = """
    version: 1
    staging:
      - metric: acc
        min: 0.5
    production:
      - metric: acc
        min: 0.95
      - lineage: true
      - approvals: 1
        distinct_from_owner: true

    """

/// An SSH key pair made for the test (ed25519, no passphrase): `path` is the private key, `path.pub` the public.
private struct SigningKey {
    let path: String
    let email: String
    var publicKey: String { (try? String(contentsOfFile: path + ".pub", encoding: .utf8))?.trimmed ?? "" }
    var allowedSignersLine: String { "\(email) namespaces=\"git-ml\" \(publicKey)\n" }

    init(_ repo: TempRepo, _ name: String, email: String) throws {
        path = repo.root + "-\(name)-key"
        self.email = email
        let made = try TempRepo.run(
            "/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", email, "-f", path], in: repo.root,
            environment: repo.environment)
        guard made.status == 0 else { throw TestFailure("ssh-keygen: \(made.stderr)") }
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// A repository whose remote `origin` holds main with the strict gates, a committed model and one seeded run with
/// acc = `acc`, version 1 of churn registered, and the pre-push hook installed. With `allowedSigners`, the owner
/// (test@example.com) has a key listed there too and registers with it, as a team using signatures does.
private func project(_ name: String = #function, acc: Double = 0.97, allowedSigners: String? = nil) throws -> TempRepo {
    let repo = try TempRepo(name: name)
    repo.putGitMLOnPath()
    #expect(try repo.gitML(["init", "--hooks"]).status == 0)
    try repo.write(".mlops/gates.yaml", strictGates)
    if let allowedSigners {
        let owner = try SigningKey(repo, "owner", email: "test@example.com")
        try repo.write(".mlops/allowed_signers", allowedSigners + owner.allowedSignersLine)
        try repo.git("config", "gpg.format", "ssh")
        try repo.git("config", "user.signingkey", owner.path)
    }
    try repo.write("model.pkl", "weights v1")
    try repo.commitAll("code, gates and model")
    try repo.addBareRemote()
    try repo.git("push", "-q", "origin", "main")
    let run = try repo.gitML(["snapshot", "--seed", "1", "--metric", "acc=\(acc)", "--artifact", "model.pkl"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
    if allowedSigners != nil {
        try repo.git("config", "--unset", "gpg.format")
        try repo.git("config", "--unset", "user.signingkey")
    }
    try repo.commitAll("record run, register churn 1")
    try repo.git("push", "-q", "origin", "main")
    return repo
}

/// Writes an event file as an attacker would: any fields, named `<time>-<sha12>.json` for its own bytes so that
/// fsck finds nothing wrong with the file itself. Returns its repository-relative path.
@discardableResult
private func forgeEvent(_ repo: TempRepo, model: String = "churn", _ fields: [String: JSONValue]) throws -> String {
    var fields = fields
    fields["model"] = fields["model"] ?? .string(model)
    fields["schema_version"] = .int(1)
    let time = fields["time"]?.string ?? isoNow()
    fields["time"] = .string(time)
    let bytes = Array(JSONWriter.pretty(.object(fields)).utf8)
    let digest = try TempRepo.sha256(bytes)
    let stamp = time.filter { $0 != "-" && $0 != ":" }
    let path = ".mlops/models/\(model)/events/\(stamp)-\(digest.prefix(12)).json"
    try repo.write(path, Data(bytes))
    return path
}

/// The time now as git ml writes it (UTC, microseconds).
private func isoNow() -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date()).replacingOccurrences(of: "Z", with: "000Z")
}

/// The version file's digest, run and owner, as events name them.
private func versionFacts(_ repo: TempRepo, _ version: Int = 1) throws -> (digest: String, run: String) {
    let shown = try json(try repo.gitML(["model", "show", "churn@\(version)", "--json"]).stdout)
    return (shown["digest"]?.string ?? "", shown["run"]?.string ?? "")
}

/// Pushes main and returns the outcome; asserts the remote moved only when the push succeeded.
private func push(_ repo: TempRepo, _ extra: String...) throws -> ProcessOutput {
    let before = try repo.remoteTip()
    let result = try TempRepo.run(
        "/usr/bin/git", ["push"] + extra + ["origin", "main"], in: repo.root, environment: repo.environment)
    if result.status != 0 { #expect(try repo.remoteTip() == before, "a refused push leaves the remote as it was") }
    return result
}

@Suite("Promotions that cannot be forged")
struct TrustEndToEndTests {
    @Test("a hand-written passing gate event beside a failing gate is refused, named as not matching")
    func forgedGateEvent() throws {
        let repo = try project(acc: 0.9)
        let (digest, run) = try versionFacts(repo)
        #expect(try repo.gitML(["gate", "check", "churn", "1", "--to", "production"]).status == 1)
        try forgeEvent(
            repo,
            [
                "kind": .string("gate"), "version": .int(1), "stage": .string("production"), "passed": .bool(true),
                "checks": .array([]), "version_digest": .string(digest), "run": .string(run),
            ])
        try repo.git("config", "user.email", "reviewer@example.com")
        #expect(try repo.gitML(["model", "approve", "churn", "1"]).status == 0)
        try repo.git("config", "user.email", "test@example.com")
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("forged evidence")
        #expect(try repo.gitML(["fsck"]).status == 0, "the forged file is well-formed; only re-deriving catches it")
        let refused = try push(repo)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("gate metric acc fails: acc is 0.9, outside >= 0.95"))
        #expect(refused.stderr.contains("says the gates passed, but evaluated again under origin/main"))
        let range = try repo.gitML(["verify", "--range", "origin/main..HEAD", "--json"])
        #expect(range.status == 1)
        #expect(try json(range.stdout)["blocked"]?.array?.first?["reasons"]?.array?.count == 2)
    }

    @Test("a hand-written approval by the owner's email with a trailing space is the owner's, and does not count")
    func ownerWithTrailingSpace() throws {
        let repo = try project()
        let (digest, run) = try versionFacts(repo)
        try forgeEvent(
            repo,
            [
                "kind": .string("approval"), "version": .int(1),
                "actor": .object(["email": .string("Test@Example.com ")]), "version_digest": .string(digest),
                "run": .string(run),
            ])
        let check = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(check.status == 1 && check.stdout.contains("from someone other than test@example.com"))
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("self-approval")
        let refused = try push(repo)
        #expect(refused.status != 0 && refused.stderr.contains("gate approvals fails"))
    }

    @Test("under allowed_signers unsigned or wrongly signed approvals do not count; a signed one from a signer does")
    func forgedApprovals() throws {
        let alice = try SigningKey(try TempRepo(name: "keys-\(#function)"), "alice", email: "alice@example.com")
        let repo = try project(allowedSigners: alice.allowedSignersLine)
        let (digest, run) = try versionFacts(repo)
        let own = try repo.gitML(["model", "approve", "churn", "1"])
        #expect(own.status == 0 && own.stderr.contains("you are the owner"), "\(own.stderr)")
        #expect(own.stderr.contains("the approval is unsigned"))
        try forgeEvent(
            repo,
            [
                "kind": .string("approval"), "version": .int(1), "actor": .object(["email": .string(alice.email)]),
                "version_digest": .string(digest), "run": .string(run),
            ])
        let check = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(check.status == 1)
        #expect(check.stdout.contains("alice@example.com (unsigned)"))
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("self-approved and forged")
        let refused = try push(repo)
        #expect(refused.status != 0 && refused.stderr.contains("gate approvals fails"))

        // The honest flow: Alice signs with the key git signs her commits with, and the push goes through.
        try repo.git("config", "gpg.format", "ssh")
        try repo.git("config", "user.signingkey", alice.path)
        let signed = try repo.gitML(
            ["model", "approve", "churn", "1"],
            environment: ["GIT_AUTHOR_EMAIL": alice.email, "GIT_AUTHOR_NAME": "Alice"])
        #expect(signed.status == 0 && signed.stdout.contains("signed") && !signed.stderr.contains("warning"))
        let passed = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(passed.status == 0, "\(passed.stdout)")
        try repo.commitAll("signed approval")
        let pushed = try push(repo)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(!repo.files(under: ".mlops/models/churn/events").filter { $0.hasSuffix(".json.sig") }.isEmpty)
        let fsck = try repo.gitML(["fsck"])
        #expect(fsck.status == 0, "signature files are part of the registry: \(fsck.stdout)")

        // A signature by the wrong key under Alice's name does not verify.
        let mallory = try SigningKey(repo, "mallory", email: "alice@example.com")
        try repo.git("config", "user.signingkey", mallory.path)
        let forged = try repo.gitML(
            ["model", "approve", "churn", "1"], environment: ["GIT_AUTHOR_EMAIL": alice.email])
        #expect(forged.stderr.contains("the signature does not verify"))
    }

    @Test("a rollback to production of a version that was never there is refused")
    func forgedRollback() throws {
        let repo = try project()
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        let (digest, run) = try versionFacts(repo, 2)
        let local = try repo.gitML(["model", "rollback", "churn", "--to", "2"])
        #expect(local.status == 2, "no version is in production, so there is nothing to roll back")
        let path = try forgeEvent(
            repo,
            [
                "kind": .string("rollback"), "version": .int(2), "to": .string("production"),
                "rolled_back": .int(1), "version_digest": .string(digest), "run": .string(run),
            ])
        try repo.commitAll("forged rollback")
        let list = try json(try repo.gitML(["model", "list", "--json"]).stdout)
        #expect(list["models"]?.array?.first?["production"] == .null, "the fold ignores it locally too")
        let refused = try push(repo)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains(path) && refused.stderr.contains("which was never in production"))
    }

    @Test("the registry only grows: an edited version file, a version unlike its run and deleted events are refused")
    func appendOnly() throws {
        let repo = try project()
        // A version whose artifacts are not its run's.
        let (digest, run) = try versionFacts(repo)
        var forged = try json(try repo.read(".mlops/models/churn/versions/1.json"))
        guard case .object(var members) = forged else { return }
        members["version"] = .int(2)
        members["artifacts"] = .array([
            .object([
                "path": .string("model.pkl"), "sha256": .string(String(repeating: "e", count: 64)), "size": .int(5),
            ])
        ])
        forged = .object(members)
        try repo.write(".mlops/models/churn/versions/2.json", JSONWriter.pretty(forged))
        try repo.commitAll("hand-written version 2")
        let unlike = try push(repo)
        #expect(unlike.status != 0 && unlike.stderr.contains("is not what run \(run.prefix(12)) recorded"))
        try repo.git("reset", "-q", "--hard", "origin/main")

        // Version 1's file edited after it was pushed (its artifact's digest), with no new event.
        let path = repo.root + "/.mlops/models/churn/versions/1.json"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        guard case .object(var first) = try json(try repo.read(".mlops/models/churn/versions/1.json")) else { return }
        first["artifacts"] = .array([
            .object([
                "path": .string("model.pkl"), "sha256": .string(String(repeating: "f", count: 64)), "size": .int(10),
            ])
        ])
        try JSONWriter.pretty(.object(first)).write(toFile: path, atomically: false, encoding: .utf8)
        try repo.commitAll("edit version 1")
        let edited = try push(repo)
        #expect(edited.status != 0)
        #expect(edited.stderr.contains("the push changes .mlops/models/churn/versions/1.json"))
        try repo.git("reset", "-q", "--hard", "origin/main")
        _ = digest

        // Approval and gate events already on the remote, deleted.
        try repo.git("config", "user.email", "reviewer@example.com")
        #expect(try repo.gitML(["model", "approve", "churn", "1"]).status == 0)
        try repo.git("config", "user.email", "test@example.com")
        #expect(try repo.gitML(["gate", "check", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("approval and evidence")
        #expect(try push(repo).status == 0)
        for file in repo.files(under: ".mlops/models/churn/events") {
            let text = try repo.read(file)
            if text.contains("\"approval\"") || text.contains("\"gate\"") {
                try FileManager.default.removeItem(atPath: repo.root + "/" + file)
            }
        }
        try repo.commitAll("drop the audit trail")
        let deleted = try push(repo)
        #expect(deleted.status != 0 && deleted.stderr.contains("the push deletes .mlops/models/churn/events/"))
        let range = try repo.gitML(["verify", "--range", "origin/main..HEAD"])
        #expect(range.status == 1, "CI says the same")
    }

    @Test(
        "gates.yaml relaxed in the same push does not judge that push; an empty or missing stage blocks",
        arguments: [
            "version: 1\nstaging: []\nproduction: []\n", "version: 1\nproduction: {}\n", "version: 1\n",
            strictGates + "production: []\n",
        ])
    func relaxedGates(_ relaxed: String) throws {
        let repo = try project(acc: 0.9)
        try repo.write(".mlops/gates.yaml", relaxed)
        _ = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("relax the gates and promote")
        let refused = try push(repo)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("policy: gates, approvers and allowed_signers of origin/main"))
        #expect(refused.stderr.contains("acc is 0.9, outside >= 0.95"), "\(refused.stderr)")
    }

    @Test(
        "an empty production stage at the target blocks every promotion to it; ungated: true allows it with a warning")
    func emptyStageAtTarget() throws {
        let repo = try project()
        try repo.write(".mlops/gates.yaml", "version: 1\nstaging:\n  - ungated: true\nproduction: []\n")
        try repo.commitAll("no production gates")
        #expect(try push(repo).status == 0)
        let check = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(check.status == 1 && check.stderr.contains("declares no checks for production"))
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("promote")
        let refused = try push(repo)
        #expect(refused.status != 0 && refused.stderr.contains("declares no checks for production"))
        try repo.git("reset", "-q", "--hard", "origin/main")
        let staging = try repo.gitML(["gate", "check", "churn", "1", "--to", "staging"])
        #expect(staging.status == 0 && staging.stdout.contains("warn"))
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "staging"]).status == 0)
        try repo.commitAll("ungated staging")
        #expect(try push(repo).status == 0)
    }

    @Test("an event dated 9999 cannot freeze the model, and is refused at push")
    func futureEvent() throws {
        let repo = try project()
        let (digest, run) = try versionFacts(repo)
        let path = try forgeEvent(
            repo,
            [
                "kind": .string("stage"), "version": .int(1), "from": .string("draft"), "to": .string("staging"),
                "version_digest": .string(digest), "run": .string(run), "time": .string("9999-12-31T00:00:00.000000Z"),
            ])
        let archive = try repo.gitML(["model", "archive", "churn", "1"])
        #expect(archive.status == 0)
        let shown = try json(try repo.gitML(["model", "show", "churn@1", "--json"]).stdout)
        #expect(shown["stage"]?.string == "archived")
        #expect(shown["ignored"]?.array?.first?["reason"]?.string?.contains("in the future") == true)
        let fsck = try repo.gitML(["fsck"])
        #expect(fsck.status == 1 && fsck.stdout.contains("invalid  \(path): the event is dated 9999-12-31"))
        try repo.commitAll("future event")
        let refused = try push(repo)
        #expect(refused.status != 0 && refused.stderr.contains(path) && refused.stderr.contains("in the future"))
    }

    @Test("8 parallel promotions give one promotion and 7 one-line errors; parallel champions record their from")
    func parallelPromotions() throws {
        let repo = try project()
        let results = try (0..<8).map { _ in
            try TempRepo.start(
                TempRepo.binary, ["model", "promote", "churn", "1", "--to", "staging"], in: repo.root,
                environment: repo.environment)
        }.map { try $0.wait() }
        #expect(results.filter { $0.status == 0 }.count == 1)
        #expect(results.filter { $0.status == 2 && $0.stderr.contains("churn version 1 is staging") }.count == 7)
        for _ in 2...4 { #expect(try repo.gitML(["model", "register", "churn"]).status == 0) }
        let champions = try (1...4).map { version in
            try TempRepo.start(
                TempRepo.binary, ["model", "promote", "churn", String(version), "--to", "production", "--json"],
                in: repo.root, environment: repo.environment)
        }.map { try $0.wait() }
        #expect(champions.allSatisfy { $0.status == 0 })
        let previous = try champions.map { try json($0.stdout)["event"]?["previous_production"] }
        #expect(previous.filter { $0 == nil }.count == 1, "only the first to take the lock found no champion")
    }

    @Test("identity comes from git's own rules: GIT_AUTHOR_*, git -c and GIT_CONFIG_GLOBAL; none is refused")
    func identityAsGitResolvesIt() throws {
        let repo = try project()
        let fromEnvironment = try repo.gitML(
            ["model", "approve", "churn", "1", "--json"],
            environment: ["GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_AUTHOR_NAME": "CI"])
        #expect(try json(fromEnvironment.stdout)["event"]?["actor"]?["email"]?.string == "ci@example.com")
        let viaGit = try TempRepo.run(
            "/usr/bin/git", ["-c", "user.email=dash-c@example.com", "ml", "model", "approve", "churn", "1", "--json"],
            in: repo.root, environment: repo.environment)
        #expect(
            try json(viaGit.stdout)["event"]?["actor"]?["email"]?.string == "dash-c@example.com", "\(viaGit.stderr)")
        let global = repo.root + "-other.gitconfig"
        try "[user]\n\tname = Other\n\temail = other@example.com\n".write(
            toFile: global, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: global) }
        let fromGlobal = try repo.gitML(
            ["model", "approve", "churn", "1", "--json"], environment: ["GIT_CONFIG_GLOBAL": global])
        #expect(try json(fromGlobal.stdout)["event"]?["actor"]?["email"]?.string == "other@example.com")
        let nobody = try repo.gitML(
            ["model", "approve", "churn", "1"],
            environment: [
                "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": repo.root + "-empty-home", "EMAIL": "",
                "GIT_AUTHOR_EMAIL": "", "GIT_COMMITTER_EMAIL": "",
            ])
        #expect(nobody.status == 2)
        #expect(nobody.stderr.contains("git knows no identity") && nobody.stderr.contains("git config user.email"))
    }

    @Test("the server's pre-receive hook refuses a --no-verify push, and uninstall restores its hook exactly")
    func serverSideHook() throws {
        let repo = try project(acc: 0.9)
        let server = repo.root + "-origin.git"
        let hooks = server + "/hooks"
        let mine = "#!/bin/sh\n# the server's own hook\ncat > /dev/null\nexit 0\n"
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        try mine.write(toFile: hooks + "/pre-receive", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o751], ofItemAtPath: hooks + "/pre-receive")
        let install = try TempRepo.run(
            TempRepo.binary, ["hook", "install", "--server"], in: server, environment: repo.environment)
        #expect(install.status == 0 && install.stdout.contains("installed pre-receive hook"), "\(install.stderr)")
        #expect(try repo.gitML(["gate", "check", "churn", "1", "--to", "production"]).status == 1)
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("promote without passing gates")
        let refused = try push(repo, "--no-verify")
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("remote: blocked: churn 1 -> production"), "\(refused.stderr)")
        #expect(refused.stderr.contains("pre-receive hook declined"))
        let uninstall = try TempRepo.run(
            TempRepo.binary, ["hook", "uninstall", "--server"], in: server, environment: repo.environment)
        #expect(uninstall.status == 0 && uninstall.stdout.contains("restored"))
        #expect(try String(contentsOfFile: hooks + "/pre-receive", encoding: .utf8) == mine)
        let mode = try FileManager.default.attributesOfItem(atPath: hooks + "/pre-receive")[.posixPermissions] as? Int
        #expect(mode == 0o751)
    }
}

/// Attacks found by attacking the first version of these checks, each now refused.
@Suite("Promotions that cannot be forged: second round")
struct TrustSecondRoundTests {
    /// Production has v1 (acc 0.97); v2 (acc 0.6) is registered; production gates: acc >= 0.5 and no regression.
    private func championProject(_ name: String = #function) throws -> TempRepo {
        let repo = try TempRepo(name: name)
        repo.putGitMLOnPath()
        #expect(try repo.gitML(["init", "--hooks"]).status == 0)
        try repo.write(
            ".mlops/gates.yaml",
            "version: 1\nstaging:\n  - ungated: true\nproduction:\n  - metric: acc\n    min: 0.5\n  - regression: acc\n    max_drop: 0.01\n"
        )
        try repo.write("model.pkl", "weights v1")
        try repo.commitAll("gates and model")
        try repo.addBareRemote()
        try repo.git("push", "-q", "origin", "main")
        #expect(
            try repo.gitML(["snapshot", "--seed", "1", "--metric", "acc=0.97", "--artifact", "model.pkl"]).status == 0)
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(try repo.gitML(["gate", "check", "churn", "1", "--to", "production"]).status == 0)
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        #expect(
            try repo.gitML(["snapshot", "--seed", "1", "--metric", "acc=0.6", "--artifact", "model.pkl"]).status == 0)
        #expect(try repo.gitML(["model", "register", "churn", "--run", try latestRun(repo)]).status == 0)
        try repo.commitAll("champion v1, candidate v2")
        try repo.git("push", "-q", "origin", "main")
        return repo
    }

    private func latestRun(_ repo: TempRepo) throws -> String {
        try json(try repo.gitML(["log", "--json", "--limit", "1"]).stdout)["runs"]?.array?.first?["id"]?.string ?? ""
    }

    @Test("deleting the champion's run record is refused, and without it the regression gate fails instead of passing")
    func championRecordDeleted() throws {
        let repo = try championProject()
        let run = try #require(try json(try repo.gitML(["model", "show", "churn@1", "--json"]).stdout)["run"]?.string)
        try FileManager.default.removeItem(atPath: repo.root + "/.mlops/runs/\(run).json")
        let local = try repo.gitML(["gate", "check", "churn", "2", "--to", "production"])
        #expect(local.status == 1 && local.stdout.contains("has no run record here"))
        try repo.commitAll("tidy")
        let refused = try push(repo)
        #expect(refused.status != 0 && refused.stderr.contains("the push deletes .mlops/runs/\(run).json"))
        #expect(try repo.gitML(["verify", "--range", "origin/main..HEAD"]).status == 1)
    }

    @Test("archiving the champion first does not let a weaker version in: it is measured against the last champion")
    func archivedChampion() throws {
        let repo = try championProject()
        #expect(try repo.gitML(["model", "archive", "churn", "1"]).status == 0)
        try repo.commitAll("archive the champion")
        #expect(try push(repo).status == 0, "archiving is not gated")
        let check = try repo.gitML(["gate", "check", "churn", "2", "--to", "production"])
        #expect(check.status == 1 && check.stdout.contains("worse than churn@1"), "\(check.stdout)")
        #expect(try repo.gitML(["model", "promote", "churn", "2", "--to", "production"]).status == 0)
        try repo.commitAll("promote the weaker version")
        let refused = try push(repo)
        #expect(refused.status != 0 && refused.stderr.contains("worse than churn@1"))
    }

    @Test("a forced rewind that drops pushed registry history is refused by the server")
    func forcedRewind() throws {
        let repo = try championProject()
        let server = repo.root + "-origin.git"
        #expect(
            try TempRepo.run(
                TempRepo.binary, ["hook", "install", "--server"], in: server, environment: repo.environment
            ).status == 0)
        try repo.git("reset", "-q", "--hard", "HEAD~1")
        try repo.git("commit", "-q", "--allow-empty", "-m", "rewrite")
        let refused = try push(repo, "--force", "--no-verify")
        #expect(refused.status != 0 && refused.stderr.contains("the push deletes .mlops/"), "\(refused.stderr)")
    }

    @Test("a re-created branch whose default branch the server cannot resolve has its promotions refused")
    func noPolicyOnServer() throws {
        let repo = try TempRepo()
        repo.putGitMLOnPath()
        #expect(try repo.gitML(["init"]).status == 0)
        try repo.write("model.pkl", "w")
        try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - ungated: true\n")
        try repo.commitAll("relaxed gates")
        #expect(try repo.gitML(["snapshot", "--artifact", "model.pkl", "--metric", "acc=0"]).status == 0)
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(try repo.gitML(["gate", "check", "churn", "1", "--to", "production"]).status == 0)
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        try repo.commitAll("promote")
        let server = try repo.addBareRemote()
        try repo.git("-C", server, "symbolic-ref", "HEAD", "refs/heads/trunk")
        #expect(
            try TempRepo.run(
                TempRepo.binary, ["hook", "install", "--server"], in: server, environment: repo.environment
            ).status == 0)
        let refused = try push(repo, "--no-verify")
        #expect(
            refused.status != 0 && refused.stderr.contains("there is no policy to judge it by"), "\(refused.stderr)")
    }

    @Test("under allowed_signers an owner cannot approve their own version by naming someone else as the run's owner")
    func ownerSpoof() throws {
        let keys = try TempRepo(name: "keys-\(#function)")
        let mallory = try SigningKey(keys, "mallory", email: "mallory@example.com")
        let repo = try project(allowedSigners: mallory.allowedSignersLine)
        try repo.git("config", "gpg.format", "ssh")
        try repo.git("config", "user.signingkey", mallory.path)
        let asMallory = ["GIT_AUTHOR_EMAIL": mallory.email, "GIT_AUTHOR_NAME": "Mallory"]
        #expect(
            try repo.gitML(
                ["snapshot", "--seed", "1", "--metric", "acc=0.99", "--artifact", "model.pkl"],
                environment: ["GIT_AUTHOR_EMAIL": "bob@example.com"]
            ).status == 0)
        #expect(
            try repo.gitML(["model", "register", "churn", "--run", try latestRunOf(repo)], environment: asMallory)
                .status == 0)
        #expect(try repo.gitML(["model", "approve", "churn", "2"], environment: asMallory).status == 0)
        let check = try repo.gitML(["gate", "check", "churn", "2", "--to", "production"], environment: asMallory)
        #expect(check.status == 1 && check.stdout.contains("approvals"), "\(check.stdout)")
        #expect(check.stdout.contains("from someone other than"), "mallory registered it, so mallory is an owner")
    }

    @Test("several signed approvals are checked in parallel without a hang")
    func parallelSignatures() throws {
        let keys = try TempRepo(name: "keys-\(#function)")
        let signers = try ["alice", "bob", "carol", "dave"].map { try SigningKey(keys, $0, email: "\($0)@example.com") }
        let repo = try project(allowedSigners: signers.map(\.allowedSignersLine).joined())
        try repo.git("config", "gpg.format", "ssh")
        for signer in signers {
            try repo.git("config", "user.signingkey", signer.path)
            #expect(
                try repo.gitML(["model", "approve", "churn", "1"], environment: ["GIT_AUTHOR_EMAIL": signer.email])
                    .status == 0)
        }
        for _ in 0..<8 {
            let check = try repo.gitML(["gate", "check", "churn", "1", "--to", "production", "--json"])
            #expect(check.status == 0, "\(check.stdout)")
        }
    }

    @Test("deleting a registry file whose name is not a version does not crash the check")
    func oddNamedFile() throws {
        let repo = try project()
        try repo.write(".mlops/models/churn/versions/...", "x")
        try repo.commitAll("odd file")
        #expect(try push(repo, "--no-verify").status == 0)
        try FileManager.default.removeItem(atPath: repo.root + "/.mlops/models/churn/versions/...")
        try repo.commitAll("remove it")
        let range = try repo.gitML(["verify", "--range", "origin/main..HEAD"])
        #expect(range.status == 1 && range.stderr.contains("the push deletes .mlops/models/churn/versions/..."))
    }
}

private func latestRunOf(_ repo: TempRepo) throws -> String {
    try json(try repo.gitML(["log", "--json", "--limit", "1"]).stdout)["runs"]?.array?.first?["id"]?.string ?? ""
}
