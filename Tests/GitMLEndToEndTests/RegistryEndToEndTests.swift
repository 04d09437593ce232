import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

private let gates = """
    version: 1
    staging:
      - metric: acc
        min: 0.5
    production:
      - metric: acc
        min: 0.9
      - lineage: true
      - approvals: 1
        distinct_from_owner: true

    """

/// A repository with git-ml initialised, the gates above, a committed model file, one seeded run that recorded
/// it, the pre-push hook installed, and a bare remote `origin` holding main.
private func project(_ name: String = #function) throws -> TempRepo {
    let repo = try TempRepo(name: name)
    repo.putGitMLOnPath()
    #expect(try repo.gitML(["init", "--hooks"]).status == 0)
    try repo.write(".mlops/gates.yaml", gates)
    try repo.write("train.py", "print('training')\n")
    try repo.write("model.pkl", "weights v1")
    try repo.git("add", "-A")
    try repo.git("commit", "-qm", "code and model")
    let run = try repo.gitML(["snapshot", "--seed", "1", "--metric", "acc=0.95", "--artifact", "model.pkl"])
    #expect(run.status == 0, "\(run.stderr)")
    try repo.git("add", "-A")
    try repo.git("commit", "-qm", "record run")
    try repo.addBareRemote()
    try repo.git("push", "-q", "origin", "main")
    return repo
}

/// Approves as someone other than the run's owner.
private func approveAsReviewer(_ repo: TempRepo, _ model: String, _ version: String) throws {
    try repo.git("config", "user.email", "reviewer@example.com")
    defer { _ = try? repo.git("config", "--unset", "user.email") }
    let approval = try repo.gitML(["model", "approve", model, version, "--comment", "looked at the card"])
    #expect(approval.status == 0, "\(approval.stderr)")
}

@Suite("Registry, gates and the pre-push hook end to end")
struct RegistryEndToEndTests {
    @Test("an ungated production promotion is refused and the remote does not move; it passes once gated and approved")
    func ungatedPromotionRefused() throws {
        let repo = try project()
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        let promote = try repo.gitML(["model", "promote", "churn", "1", "--to", "production"])
        #expect(promote.status == 0 && promote.stdout.contains("no passing gate evidence"))
        try repo.commitAll("promote churn 1")
        let before = try repo.remoteTip()
        let refused = try repo.gitResult("push", "origin", "main")
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("blocked: churn 1 -> production"))
        #expect(refused.stderr.contains("no gate evidence for production"))
        #expect(refused.stderr.contains("fix: git ml"))
        #expect(try repo.remoteTip() == before)
        // Tags and branch deletions carry no promotion to judge.
        try repo.git("tag", "v1")
        #expect(try repo.gitResult("push", "-q", "origin", "v1").status == 0)
        try repo.git("push", "-q", "origin", "\(before):refs/heads/scratch")
        #expect(try repo.gitResult("push", "-q", "origin", ":scratch").status == 0)
        let range = try repo.gitML(["verify", "--range", "\(before)..HEAD", "--json"])
        #expect(range.status == 1)
        #expect(try json(range.stdout)["blocked"]?.array?.count == 1)

        // The gate fails without an approval from someone other than the owner, then passes with one.
        let early = try repo.gitML(["gate", "check", "churn", "1", "--to", "production", "--json"])
        #expect(early.status == 1)
        let failing = try json(early.stdout)["checks"]?.array?.filter { $0["passed"]?.bool == false }.compactMap {
            $0["check"]?.string
        }
        #expect(failing == ["approvals"])
        try approveAsReviewer(repo, "churn", "1")
        let check = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("lineage verify") && check.stdout.contains("passed"))
        try repo.commitAll("gate evidence and approval")
        let pushed = try repo.gitResult("push", "origin", "main")
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(try repo.remoteTip() == (try repo.head()))
        #expect(try repo.gitML(["verify", "--range", "\(before)..HEAD"]).status == 0)
        let shown = try json(try repo.gitML(["model", "show", "churn@production", "--json"]).stdout)
        #expect(shown["version"] == .int(1) && shown["stage"]?.string == "production")
    }

    @Test("a promotion whose artifact was modified after registration is refused")
    func modifiedArtifactRefused() throws {
        let repo = try project()
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(try repo.gitML(["gate", "check", "churn", "1", "--to", "staging"]).status == 0)
        // The stored copy is a read-only hard link; replacing the file is what an accidental overwrite does.
        try FileManager.default.removeItem(atPath: repo.root + "/model.pkl")
        try repo.write("model.pkl", "weights, retrained by hand")
        let promote = try repo.gitML(["model", "promote", "churn", "1", "--to", "staging"])
        #expect(promote.stdout.contains("warning: model.pkl differs from the registered artifact"))
        try repo.commitAll("promote churn 1 to staging")
        let refused = try repo.gitResult("push", "origin", "main")
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("artifact model.pkl was modified after registration"))
    }

    @Test("an existing pre-push hook keeps running after install and is restored exactly on uninstall")
    func chainsExistingHook() throws {
        let repo = try TempRepo()
        repo.putGitMLOnPath()
        #expect(try repo.gitML(["init"]).status == 0)
        try repo.commitAll("init")
        let hooks = repo.root + "/.git/hooks"
        let log = repo.root + "-user-hook.log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let mine = "#!/bin/sh\n# the user's own hook\necho \"ran for $1\" >> \"\(log)\"\ncat >> \"\(log)\"\n"
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        try mine.write(toFile: hooks + "/pre-push", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o750], ofItemAtPath: hooks + "/pre-push")
        let install = try repo.gitML(["hook", "install"])
        #expect(install.status == 0 && install.stdout.contains("your previous hook is now"))
        #expect(try repo.gitML(["hook", "install"]).stdout.contains("already installed"))
        try repo.addBareRemote()
        #expect(try repo.gitResult("push", "-q", "origin", "main").status == 0)
        // It ran with git's arguments and got git's ref lines on stdin.
        let ran = try String(contentsOfFile: log, encoding: .utf8)
        #expect(ran.hasPrefix("ran for origin\nrefs/heads/main "))
        let uninstall = try repo.gitML(["hook", "uninstall"])
        #expect(uninstall.status == 0 && uninstall.stdout.contains("restored"))
        #expect(try String(contentsOfFile: hooks + "/pre-push", encoding: .utf8) == mine)
        let mode = try FileManager.default.attributesOfItem(atPath: hooks + "/pre-push")[.posixPermissions] as? Int
        #expect(mode == 0o750)
        #expect(!FileManager.default.fileExists(atPath: hooks + "/pre-push.git-ml-previous"))
    }

    @Test("core.hooksPath is respected")
    func hooksPath() throws {
        let repo = try TempRepo()
        try repo.git("config", "core.hooksPath", ".githooks")
        let install = try repo.gitML(["hook", "install"])
        #expect(install.status == 0)
        #expect(FileManager.default.isExecutableFile(atPath: repo.root + "/.githooks/pre-push"))
        #expect(!FileManager.default.fileExists(atPath: repo.root + "/.git/hooks/pre-push"))
    }

    @Test("a clone made elsewhere, pushing from a subdirectory, is checked the same way")
    func cloneElsewhere() throws {
        let repo = try project()
        let clone = try TempRepo(name: "clone-of-\(#function)", commit: false)
        clone.putGitMLOnPath()
        try clone.git("remote", "add", "origin", repo.root + "-origin.git")
        try clone.git("fetch", "-q", "origin")
        try clone.git("checkout", "-q", "-b", "main", "origin/main")
        #expect(try clone.gitML(["hook", "install"]).status == 0)
        #expect(try clone.gitML(["model", "register", "churn"], in: "").status == 0)
        try clone.write("sub/notes.txt", "a subdirectory\n")
        #expect(try clone.gitML(["model", "promote", "churn", "1", "--to", "staging"], in: "sub").status == 0)
        try clone.commitAll("promote from the clone")
        let refused = try TempRepo.run(
            "/usr/bin/git", ["push", "origin", "main"], in: clone.root + "/sub", environment: clone.environment)
        #expect(refused.status != 0 && refused.stderr.contains("blocked: churn 1 -> staging"))
        #expect(try clone.gitML(["gate", "check", "churn", "1", "--to", "staging"], in: "sub").status == 0)
        try clone.commitAll("gate evidence")
        let pushed = try TempRepo.run(
            "/usr/bin/git", ["push", "origin", "main"], in: clone.root + "/sub", environment: clone.environment)
        #expect(pushed.status == 0, "\(pushed.stderr)")
    }

    @Test("promotions and approvals on two branches merge without conflict and history shows both")
    func concurrentBranchesMerge() throws {
        let repo = try project()
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        try repo.commitAll("register")
        try repo.git("checkout", "-q", "-b", "alice")
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "staging", "--reason", "alice"]).status == 0)
        try repo.commitAll("alice promotes")
        try repo.git("checkout", "-q", "main")
        try repo.git("checkout", "-q", "-b", "bob")
        try approveAsReviewer(repo, "churn", "1")
        #expect(
            try repo.gitML(["model", "promote", "churn", "1", "--to", "production", "--reason", "bob"]).status == 0)
        try repo.commitAll("bob approves and promotes")
        let merge = try repo.gitResult("merge", "-q", "--no-edit", "alice")
        #expect(merge.status == 0, "\(merge.stdout)\(merge.stderr)")
        let history = try json(try repo.gitML(["model", "history", "churn", "--json"]).stdout)["events"]?.array ?? []
        let reasons = history.compactMap { $0["reason"]?.string }
        #expect(reasons.contains("alice") && reasons.contains("bob"))
        #expect(history.contains { $0["kind"]?.string == "approval" })
    }

    @Test("rollback returns to the previous champion and never back to a rolled-back version unless named")
    func rollback() throws {
        let repo = try project()
        for _ in 0..<3 { #expect(try repo.gitML(["model", "register", "churn"]).status == 0) }
        for version in ["1", "2", "3"] {
            #expect(try repo.gitML(["model", "promote", "churn", version, "--to", "production"]).status == 0)
        }
        let first = try repo.gitML(["model", "rollback", "churn", "--json"])
        #expect(first.status == 0)
        #expect(try json(first.stdout)["event"]?["version"] == .int(2))
        #expect(try json(first.stdout)["event"]?["rolled_back"] == .int(3))
        let second = try json(try repo.gitML(["model", "rollback", "churn", "--json"]).stdout)
        #expect(second["event"]?["version"] == .int(1), "3 was rolled back, so the next target is 1, not 3")
        let named = try repo.gitML(["model", "rollback", "churn", "--to", "3"])
        #expect(named.status == 0)
        let list = try json(try repo.gitML(["model", "list", "--json"]).stdout)
        #expect(list["models"]?.array?.first?["production"] == .int(3))
    }

    @Test("a card is written for review, checked by --check and by a card gate, and goes stale when lineage moves")
    func cards() throws {
        let repo = try project()
        try repo.write(
            ".mlops/gates.yaml", "version: 1\nstaging:\n  - card: required\n    sections: [Intended use, Evaluation]\n")
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        let missing = try repo.gitML(["card", "churn@1", "--check"])
        #expect(missing.status == 1 && missing.stderr.contains("no card is committed at .mlops/cards/churn/v1.md"))
        #expect(try repo.gitML(["gate", "check", "churn", "1", "--to", "staging"]).status == 1)
        #expect(try repo.gitML(["card", "churn@1", "--write"]).stdout.contains("wrote .mlops/cards/churn/v1.md"))
        let empty = try repo.gitML(["card", "churn@1", "--check"])
        #expect(empty.status == 1 && empty.stderr.contains("section \"Intended use\" is empty"))
        try repo.write(".mlops/models/churn/card.yaml", "intended_use: Ranking customers for retention offers.\n")
        #expect(try repo.gitML(["card", "churn@1", "--check"]).stderr.contains("the card is stale"))
        #expect(try repo.gitML(["card", "churn@1", "--write"]).status == 0)
        #expect(try repo.gitML(["card", "churn@1", "--check"]).status == 0)
        let gate = try repo.gitML(["gate", "check", "churn", "1", "--to", "staging"])
        #expect(gate.status == 0, "\(gate.stdout)")
        // The gate event changes the version's lineage, so the committed card is stale again until re-rendered.
        #expect(try repo.gitML(["card", "churn@1", "--check"]).status == 1)
        let html = try repo.gitML(["card", "churn@1", "--format", "html", "-o", "card.html"])
        #expect(html.status == 0)
        #expect(try repo.read("card.html").hasPrefix("<!DOCTYPE html>"))
        // A path typed on the command line is the user's to choose, as with git format-patch -o ...
        let outsidePath = repo.root + "-card.md"
        defer { try? FileManager.default.removeItem(atPath: outsidePath) }
        let outside = try repo.gitML(["card", "churn@1", "-o", outsidePath])
        #expect(outside.status == 0 && FileManager.default.fileExists(atPath: outsidePath))
        // ... but a committed link inside the repository does not carry a write out of it.
        let elsewhere = repo.root + "-elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/outdir", withDestinationPath: elsewhere)
        let linked = try repo.gitML(["card", "churn@1", "-o", "outdir/y.html", "--format", "html"])
        #expect(linked.status == 2 && linked.stderr.contains("outdir is a symbolic link"))
        #expect(!FileManager.default.fileExists(atPath: elsewhere + "/y.html"))
        let pr = try repo.gitML(["card", "churn", "--pr"])
        #expect(pr.status == 0 && pr.stdout.hasPrefix("### Model card: churn version 1 (draft)"))
    }

    @Test("drift compares current data with the profile the production version's run recorded; exit 0, 1 or 2")
    func drift() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        func table(_ shift: Int, _ categories: [String]) -> String {
            var text = "age,country\n"
            for i in 0..<3000 { text += "\(18 + (i * 7919) % 50 + shift),\(categories[i % categories.count])\n" }
            return text
        }
        try repo.write("train.csv", table(0, ["DE", "FR", "US"]))
        try repo.write("same.csv", table(0, ["DE", "FR", "US"]))
        try repo.write("moved.csv", table(20, ["DE", "FR", "US", "=cmd|' /C calc'!A0"]))
        try repo.write("model.pkl", "weights")
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "data")
        #expect(try repo.gitML(["snapshot", "--artifact", "model.pkl", "--metric", "acc=1"]).status == 0)
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
        let noProfile = try repo.gitML(["drift", "churn", "--current", "same.csv"])
        #expect(noProfile.status == 2 && noProfile.stderr.contains("recorded no data profile"))
        #expect(
            try repo.gitML(["snapshot", "--artifact", "model.pkl", "--metric", "acc=1", "--profile", "train.csv"])
                .status == 0)
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(try repo.gitML(["model", "promote", "churn", "2", "--to", "production"]).status == 0)
        let calm = try repo.gitML(["drift", "churn", "--current", "same.csv"])
        #expect(calm.status == 0 && calm.stdout.contains("0 of 2 columns drifted"), "\(calm.stdout)\(calm.stderr)")
        let moved = try repo.gitML(["drift", "churn", "--current", "moved.csv", "--format", "json"])
        #expect(moved.status == 1)
        let result = try JSONParser.parse(moved.stdout, source: "drift")
        #expect(result["drifted"] == .int(2))
        #expect(
            result["columns"]?.array?.first { $0["column"]?.string == "country" }?["new_categories"]
                == .array([.string("=cmd|' /C calc'!A0")]))
        let csv = try repo.gitML(["drift", "churn", "--current", "moved.csv", "--format", "csv"])
        #expect(csv.stdout.contains(",'=cmd|' /C calc'!A0,"), "a formula-leading cell is neutralized")
        #expect(
            try repo.gitML(["drift", "churn", "--current", "moved.csv", "--format", "html", "-o", "drift.html"]).status
                == 1)
        let html = try repo.read("drift.html")
        #expect(html.contains("<svg") && !html.contains("<script"))
        let lenient = try repo.gitML([
            "drift", "churn", "--current", "moved.csv", "--columns", "age", "--threshold", "psi=100", "--threshold",
            "p=0",
        ])
        #expect(
            lenient.status == 0 && lenient.stdout.contains("0 of 1 columns drifted"),
            "only age, and thresholds no shift can reach")
    }

    @Test("fsck names an edited event file and a version whose run is gone")
    func fsckRegistry() throws {
        let repo = try project()
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(try repo.gitML(["model", "approve", "churn", "1"]).status == 0)
        #expect(try repo.gitML(["fsck"]).status == 0)
        let run = try #require(try json(try repo.gitML(["model", "show", "churn@1", "--json"]).stdout)["run"]?.string)
        let events = repo.files(under: ".mlops/models/churn/events").sorted()
        let approval = try #require(events.last { (try? repo.read($0))?.contains("\"approval\"") == true })
        let path = repo.root + "/" + approval
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        try (try repo.read(approval)).replacingOccurrences(of: "approval", with: "apprOval").write(
            toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: repo.root + "/.mlops/runs/\(run).json")
        let fsck = try repo.gitML(["fsck"])
        #expect(fsck.status == 1)
        #expect(fsck.stdout.contains("\(approval): content does not match its name: the event was modified"))
        #expect(
            fsck.stdout.contains(".mlops/models/churn/versions/1.json: run \(run.prefix(12)) is not in .mlops/runs"))
    }

    @Test("bad input: a malformed gates file, an unknown metric, a missing run and bad names fail clearly")
    func badInput() throws {
        let repo = try project()
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - metrik: acc\n")
        let malformed = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(malformed.status == 1)
        #expect(malformed.stderr.contains("gate failed: .mlops/gates.yaml: production[0] is not a check"))
        try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - metric: f1\n    min: 0.5\n")
        let unknown = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(unknown.status == 1 && unknown.stdout.contains("the run recorded no metric f1 (it has: acc)"))
        let run = try #require(try json(try repo.gitML(["model", "show", "churn@1", "--json"]).stdout)["run"]?.string)
        try FileManager.default.removeItem(atPath: repo.root + "/.mlops/runs/\(run).json")
        let missing = try repo.gitML(["gate", "check", "churn", "1", "--to", "production"])
        #expect(missing.status == 1 && missing.stderr.contains("which is not in .mlops/runs"))
        let badName = try repo.gitML(["model", "register", "../escape"])
        #expect(badName.status == 2 && badName.stderr.contains("is not a model name"))
        #expect(!FileManager.default.fileExists(atPath: repo.root + "/.mlops/escape"))
        let unknownVersion = try repo.gitML(["model", "promote", "churn", "9", "--to", "staging"])
        #expect(unknownVersion.status == 2 && unknownVersion.stderr.contains("churn has no version 9 (versions: 1)"))
        let badStage = try repo.gitML(["model", "promote", "churn", "1", "--to", "prod-ish"])
        #expect(badStage.status == 64 && badStage.stderr.contains("'prod-ish' is invalid for '--to <stage>'"))
        #expect(badStage.stderr.contains("'staging' and 'production'"))
    }
}
