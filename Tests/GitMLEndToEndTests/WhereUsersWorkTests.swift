import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

/// A repository with strict production gates, a registered v1 promoted to production without evidence, and a bare
/// remote holding main from before the promotion: any pre-push check that runs git-ml refuses the push.
private func ungatedPromotion(_ name: String = #function) throws -> TempRepo {
    let repo = try TempRepo(name: name)
    repo.putGitMLOnPath()
    #expect(try repo.gitML(["init"]).status == 0)
    try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - metric: acc\n    min: 0.99\n")
    try repo.write("model.pkl", "w")
    try repo.commitAll("gates")
    try repo.addBareRemote()
    try repo.git("push", "-q", "origin", "main")
    #expect(try repo.gitML(["snapshot", "--metric", "acc=0.5", "--artifact", "model.pkl"]).status == 0)
    #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
    #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "production"]).status == 0)
    try repo.commitAll("ungated promotion")
    return repo
}

/// The tools' bin directory first on PATH (and git-ml's), for tools whose hooks call them by name.
private func withTools(_ repo: TempRepo) {
    repo.environment["PATH"] = TestTools.directory + ":" + (repo.environment["PATH"] ?? "/usr/bin:/bin")
}

private let dvcMissing = TestTools.path("dvc") == nil
private let preCommitMissing = TestTools.path("pre-commit") == nil
private let lefthookMissing = TestTools.path("lefthook") == nil
private let skipReason: Comment = "scripts/test-tools could not install it from PyPI (see its output)"

@Suite("Works where users already work")
struct WhereUsersWorkTests {
    @Test("husky 9: git-ml's check goes into .husky/pre-push, husky's own command still runs, uninstall is exact")
    func husky() throws {
        let repo = try ungatedPromotion()
        // The layout husky 9.1 writes (`husky` in package.json's prepare): core.hooksPath=.husky/_, a shim per
        // hook that sources _/h, which runs .husky/<hook> with sh -e.
        let h = """
            #!/usr/bin/env sh
            [ "$HUSKY" = "2" ] && set -x
            n=$(basename "$0")
            s=$(dirname "$(dirname "$0")")/$n

            [ ! -f "$s" ] && exit 0

            i="${XDG_CONFIG_HOME:-$HOME/.config}/husky/init.sh"
            [ -f "$i" ] && . "$i"

            [ "${HUSKY-}" = "0" ] && exit 0

            export PATH="node_modules/.bin:$PATH"
            sh -e "$s" "$@"
            c=$?

            [ $c != 0 ] && echo "husky - $n script failed (code $c)"
            [ $c = 127 ] && echo "husky - command not found in PATH=$PATH"
            exit $c

            """
        try repo.write(".husky/_/h", h)
        try repo.write(".husky/_/pre-push", "#!/usr/bin/env sh\n. \"${0%/*}/h\"")
        for file in ["h", "pre-push"] {
            try FileManager.default.setAttributes(
                [.posixPermissions: 0o755], ofItemAtPath: repo.root + "/.husky/_/\(file)")
        }
        try repo.git("config", "core.hooksPath", ".husky/_")
        let log = repo.root + "-husky.log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let mine =
            "npm test 2>/dev/null || true\necho \"user check ran with $(cat | wc -l) ref line(s)\" >> \"\(log)\"\n"
        try repo.write(".husky/pre-push", mine)
        let install = try repo.gitML(["hook", "install"])
        #expect(install.status == 0 && install.stdout.contains("husky's"), "\(install.stdout)\(install.stderr)")
        #expect(FileManager.default.fileExists(atPath: repo.root + "/.husky/_/pre-push"))
        #expect(!FileManager.default.fileExists(atPath: repo.root + "/.husky/_/pre-push.git-ml-previous"))
        let refused = try repo.gitResult("push", "origin", "main")
        #expect(refused.status != 0 && refused.stderr.contains("blocked: churn 1 -> production"), "\(refused.stderr)")
        #expect(try repo.gitML(["hook", "install"]).stdout.contains("already installed"))
        // With git-ml's check passing, the user's command runs too, and sees git's ref line.
        try repo.write(".mlops/gates.yaml", "version: 1\nproduction:\n  - ungated: true\n")
        try repo.git("reset", "-q", "--hard", "origin/main")
        try repo.commitAll("ungated production")
        #expect(try repo.gitResult("push", "origin", "main").status == 0)
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("user check ran with 1 ref line(s)"))
        #expect(try repo.gitML(["hook", "uninstall"]).status == 0)
        #expect(try repo.read(".husky/pre-push") == mine)
    }

    @Test(
        "the pre-commit framework runs git-ml from its .pre-commit-hooks.yaml on pre-push",
        .disabled(if: preCommitMissing, skipReason))
    func preCommitFramework() throws {
        let repo = try ungatedPromotion()
        withTools(repo)
        // git-ml's hook manifest, served from a repository as pre-commit fetches any hook repository.
        let hooks = try TempRepo(name: "hooks-\(#function)")
        let manifest = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".pre-commit-hooks.yaml")
        try hooks.write(".pre-commit-hooks.yaml", try String(contentsOf: manifest, encoding: .utf8))
        try hooks.commitAll("git-ml hook manifest")
        try repo.write(
            ".pre-commit-config.yaml",
            "repos:\n  - repo: \(hooks.root)\n    rev: \(try hooks.head())\n    hooks:\n      - id: git-ml-promotions\n"
        )
        try repo.commitAll("pre-commit config")
        let environment = ["PRE_COMMIT_HOME": repo.root + "-pre-commit-cache"]
        defer { try? FileManager.default.removeItem(atPath: repo.root + "-pre-commit-cache") }
        let install = try TempRepo.run(
            try #require(TestTools.path("pre-commit")), ["install", "--hook-type", "pre-push"], in: repo.root,
            environment: repo.environment.merging(environment) { _, new in new })
        #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
        var env = repo.environment.merging(environment) { _, new in new }
        env["PATH"] = env["PATH"]
        let refused = try TempRepo.run("/usr/bin/git", ["push", "origin", "main"], in: repo.root, environment: env)
        #expect(refused.status != 0, "\(refused.stdout)\(refused.stderr)")
        #expect((refused.stdout + refused.stderr).contains("blocked: churn 1 -> production"))
    }

    @Test(
        "lefthook's hook keeps running beside git-ml's, after lefthook install",
        .disabled(if: lefthookMissing, skipReason))
    func lefthook() throws {
        let repo = try ungatedPromotion()
        withTools(repo)
        let log = repo.root + "-lefthook.log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        try repo.write("lefthook.yml", "pre-push:\n  commands:\n    mine:\n      run: echo lefthook ran >> \(log)\n")
        try repo.commitAll("lefthook config")
        let lefthook = try #require(TestTools.path("lefthook"))
        let install = try TempRepo.run(lefthook, ["install"], in: repo.root, environment: repo.environment)
        #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
        #expect(try repo.gitML(["hook", "install"]).stdout.contains("your previous hook"))
        let refused = try repo.gitResult("push", "origin", "main")
        #expect(refused.status != 0 && refused.stderr.contains("blocked: churn 1 -> production"))
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("lefthook ran"))
    }

    @Test(
        "reproduce on DVC's layout: a recorded data folder that also holds committed .gitignore and .dvc files",
        .disabled(if: dvcMissing, skipReason))
    func dvcLayout() throws {
        let repo = try TempRepo()
        withTools(repo)
        let dvc = try #require(TestTools.path("dvc"))
        #expect(try TempRepo.run(dvc, ["init", "-q"], in: repo.root, environment: repo.environment).status == 0)
        #expect(try repo.gitML(["init"]).status == 0)
        try repo.write("data/train.csv", "x,y\n1,2\n3,4\n")
        try repo.write("train.py", "open('model.pkl', 'w').write(open('data/train.csv').read())\n")
        let added = try TempRepo.run(
            dvc, ["add", "-q", "data/train.csv"], in: repo.root, environment: repo.environment)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(FileManager.default.fileExists(atPath: repo.root + "/data/train.csv.dvc"))
        try repo.commitAll("dvc-tracked data")
        let run = try repo.gitML([
            "run", "--seed", "1", "--data", "data", "--artifact", "model.pkl", "--json", "--", "python3", "train.py",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(try repo.gitML(["model", "promote", "churn", "1", "--to", "staging"]).status == 0)
        try repo.write("data/README", "the data\n")
        try repo.commitAll("record; and a committed file beside the data")
        let reproduced = try repo.gitML(["reproduce", "churn@staging", "--json"])
        #expect(reproduced.status == 0, "\(reproduced.stdout)\(reproduced.stderr)")
        #expect(try json(reproduced.stdout)["verdict"]?.string == "reproduced")
    }

    @Test("an unpushed ungated promotion is taken back with model undo, named by the hook; a pushed one is not")
    func undo() throws {
        let repo = try ungatedPromotion()
        try repo.gitML(["hook", "install"])
        let refused = try repo.gitResult("push", "origin", "main")
        #expect(refused.stderr.contains("git ml model undo churn"), "the hook names the way back: \(refused.stderr)")
        let undone = try repo.gitML(["model", "undo", "churn"])
        #expect(undone.status == 0 && undone.stdout.contains("took back v1 draft -> production"), "\(undone.stdout)")
        try repo.commitAll("take back the promotion")
        #expect(try repo.gitResult("push", "origin", "main").status == 0)
        let list = try json(try repo.gitML(["model", "list", "--json"]).stdout)
        #expect(list["models"]?.array?.first?["production"] == .null)
        let again = try repo.gitML(["model", "undo", "churn"])
        #expect(again.status == 2 && again.stderr.contains("already on a remote"), "\(again.stderr)")
    }

    @Test("command-line papercuts: -field sorts, mistyped commands, bad values exit 64, short prefixes, .dvc folders")
    func papercuts() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        for acc in ["0.8", "0.9"] { #expect(try repo.gitML(["snapshot", "--metric", "acc=\(acc)"]).status == 0) }
        let sorted = try repo.gitML(["log", "--sort", "-metrics.acc", "--json"])
        #expect(sorted.status == 0, "\(sorted.stderr)")
        #expect(try json(sorted.stdout)["runs"]?.array?.first?["metrics"]?["acc"] == .double(0.9))
        let typo = try repo.gitML(["lgo"])
        #expect(typo.status == 64 && typo.stderr.contains("did you mean log?"))
        let help = try repo.gitML(["help", "nosuch"])
        #expect(help.status == 64 && help.stderr.contains("no such command"))
        for arguments in [
            ["drift", "m", "--current", "x.csv", "--format", "xml"],
            ["drift", "m", "--current", "x.csv", "--threshold", "psi=high"],
            ["reproduce", "abcd", "--tolerance", "-1"], ["card", "m", "--format", "pdf"],
        ] {
            #expect(try repo.gitML(arguments).status == 64, "\(arguments)")
        }
        let short = try repo.gitML(["show", "0b9"])
        #expect(short.status == 2 && short.stderr.contains("too short"))
        try repo.write(".dvc/config", "[core]\n")
        let dvcFolder = try repo.gitML(["snapshot", "--data", ".dvc"])
        #expect(dvcFolder.status == 0, "\(dvcFolder.stderr)")
        let shown = try repo.gitML([
            "show",
            try #require(
                try json(try repo.gitML(["log", "--json", "--limit", "1"]).stdout)["runs"]?.array?.first?["id"]?.string),
        ])
        #expect(shown.status == 0)
    }
}

@Suite("git-ml tracks its own example model")
struct SelfTrackingTests {
    /// This repository's root: its .mlops records the quickstart's example model (docs/format.md).
    private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test("the project's own .mlops is valid: fsck, verify, and the promotions in its history pass their gates")
    func ownLineage() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["GIT_CONFIG_NOSYSTEM"] = "1"
        let fsck = try TempRepo.run(TempRepo.binary, ["fsck"], in: root, environment: environment)
        #expect(fsck.status == 0, "\(fsck.stdout)\(fsck.stderr)")
        let verify = try TempRepo.run(TempRepo.binary, ["verify"], in: root, environment: environment)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let range = try TempRepo.run(
            TempRepo.binary, ["verify", "--range", "..HEAD"], in: root, environment: environment)
        #expect(range.status == 0 && range.stdout.contains("1 promotion"), "\(range.stdout)\(range.stderr)")
    }
}

@Suite("Queries read the index, and give what a scan would")
struct QueryIndexTests {
    @Test("numbers, strings, dotted names, missing fields; new and removed records show at once")
    func queries() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        let runs: [[String]] = [
            ["--metric", "acc=0.95", "--metric", "eval.f1=0.8", "--param", "optimizer=adam", "--param", "lr=0.01"],
            ["--metric", "acc=0.85", "--metric", "eval.f1=0.9", "--param", "optimizer=sgd", "--param", "lr=0.1"],
            ["--metric", "acc=0.99", "--param", "optimizer=adam"],
            ["--metric", "loss=0.3"],
        ]
        for arguments in runs { #expect(try repo.gitML(["snapshot"] + arguments).status == 0) }
        func ids(_ filter: String) throws -> Int {
            let result = try repo.gitML(["log", "--json", "--where", filter])
            #expect(result.status == 0, "\(filter): \(result.stderr)")
            return try json(result.stdout)["runs"]?.array?.count ?? -1
        }
        #expect(try ids("metrics.acc > 0.9") == 2)
        #expect(try ids("metrics.acc >= 0.85 and params.optimizer = 'adam'") == 2)
        #expect(try ids("metrics.eval.f1 > 0.85") == 1)
        #expect(try ids("params.optimizer != 'adam'") == 1)
        #expect(try ids("params.lr = 0.01") == 1)
        #expect(try ids("metrics.nothing > 0") == 0)
        #expect(try ids("status = 'recorded'") == 4)
        // A record added, then one removed: the index follows without waiting.
        #expect(try repo.gitML(["snapshot", "--metric", "acc=0.97"]).status == 0)
        #expect(try ids("metrics.acc > 0.9") == 3)
        let newest = try #require(
            try json(try repo.gitML(["log", "--json", "--limit", "1"]).stdout)["runs"]?.array?.first?["id"]?.string)
        try FileManager.default.removeItem(atPath: repo.root + "/.mlops/runs/\(newest).json")
        #expect(try ids("metrics.acc > 0.9") == 2)
        let sorted = try json(try repo.gitML(["log", "--json", "--sort", "-metrics.acc"]).stdout)["runs"]?.array
        #expect(sorted?.compactMap { $0["metrics"]?["acc"]?.number } == [0.99, 0.95, 0.85])
    }
}

@Suite("Drift between two data files is exact")
struct ExactDriftTests {
    @Test(
        "--reference and --current files need no model; KS, its p-value and Wasserstein match SciPy; CSV = JSON lines")
    func exactDrift() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("GitMLDriftTests/Fixtures/scipy-reference.json")
        let reference = try JSONParser.parse(Array(try Data(contentsOf: fixture)), source: "fixture")
        let sample = try #require(reference["samples"]?.array?.first { $0["name"]?.string == "normal, shifted" })
        let a = (sample["a"]?.array ?? []).compactMap(\.number)
        let b = (sample["b"]?.array ?? []).compactMap(\.number)
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        func csv(_ values: [Double]) -> String { "x\n" + values.map { "\($0)" }.joined(separator: "\n") + "\n" }
        func jsonl(_ values: [Double]) -> String { values.map { "{\"x\": \($0)}" }.joined(separator: "\n") + "\n" }
        let outside = repo.root + "-data"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try csv(a).write(toFile: outside + "/ref.csv", atomically: true, encoding: .utf8)
        try csv(b).write(toFile: outside + "/cur.csv", atomically: true, encoding: .utf8)
        try jsonl(a).write(toFile: outside + "/ref.jsonl", atomically: true, encoding: .utf8)
        try jsonl(b).write(toFile: outside + "/cur.jsonl", atomically: true, encoding: .utf8)
        var outputs: [JSONValue] = []
        for ext in ["csv", "jsonl"] {
            let drift = try repo.gitML([
                "drift", "--reference", "\(outside)/ref.\(ext)", "--current", "\(outside)/cur.\(ext)", "--format",
                "json",
            ])
            #expect(drift.status == 1, "\(drift.stderr)")
            let result = try JSONParser.parse(drift.stdout, source: "drift")
            #expect(result["method"]?.string == "exact")
            let column = try #require(result["columns"]?.array?.first)
            func close(_ value: JSONValue?, _ expected: JSONValue?) -> Bool {
                guard let x = value?.number, let y = expected?.number else { return false }
                return abs(x - y) <= 1e-9 * max(1, abs(y))
            }
            #expect(close(column["statistics"]?["ks"], sample["ks_statistic"]))
            #expect(close(column["statistics"]?["ks_p"], sample["ks_pvalue_scipy_auto"]))
            #expect(close(column["statistics"]?["wasserstein"], sample["wasserstein"]))
            outputs.append(column["statistics"] ?? .null)
        }
        #expect(outputs[0] == outputs[1], "the same numbers from CSV and JSON lines")
        let text = try repo.gitML(["drift", "--reference", "\(outside)/ref.csv", "--current", "\(outside)/cur.csv"])
        #expect(text.stdout.contains("exact: every value of both files"))
        let neither = try repo.gitML(["drift", "--current", "\(outside)/cur.csv"])
        #expect(neither.status == 64)
    }
}
