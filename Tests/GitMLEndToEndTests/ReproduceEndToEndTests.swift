import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

/// A stdlib-only training script: its score is the data's sum, plus a seeded random term when `seeded`.
private func trainer(seeded: Bool, offset: Double = 0) -> String {
    """
    import os, json, random
    random.seed(int(os.environ["GIT_ML_SEED"]))
    rows = open("data/train.csv").read().split()[1:]
    score = sum(int(r) for r in rows) / 100 + \(offset)\(seeded ? " + random.random()" : "")
    open("model.txt", "w").write(repr(score))
    with open(os.environ["GIT_ML_METRICS"], "a") as f:
        f.write(json.dumps({"score": score}) + "\\n")

    """
}

/// A repository with data (ignored by git, as data usually is), the trainer committed, and one recorded run.
private func recorded(_ name: String = #function, seeded: Bool, dirtyOffset: Double? = nil) throws -> (TempRepo, String)
{
    let repo = try TempRepo(name: name)
    #expect(try repo.gitML(["init"]).status == 0)
    try repo.write("data/train.csv", "x\n1\n2\n3\n")
    try repo.write(".gitignore", "data/\nmodel.txt\n")
    try repo.write("train.py", trainer(seeded: seeded))
    try repo.git("add", "-A")
    try repo.git("commit", "-qm", "trainer")
    if let dirtyOffset { try repo.write("train.py", trainer(seeded: seeded, offset: dirtyOffset)) }
    let run = try repo.gitML([
        "run", "--json", "--data", "data", "--artifact", "model.txt", "--", "python3", "train.py",
    ])
    #expect(run.status == 0, "\(run.stderr)")
    let id = try #require(try json(String(run.stdout.split(separator: "\n").last ?? ""))["id"]?.string)
    try repo.git("add", ".mlops")
    try repo.git("commit", "-qm", "record the run")
    return (repo, id)
}

/// HEAD, the index's bytes, `git status` with ignored files, and every file of the work tree with its bytes.
private func checkoutState(_ repo: TempRepo) throws -> [String: Data] {
    var state: [String: Data] = [
        "HEAD": Data(try repo.git("rev-parse", "HEAD").utf8),
        "index": try Data(contentsOf: URL(fileURLWithPath: repo.root + "/.git/index")),
        "status": Data(try repo.git("status", "--porcelain", "--ignored", "--untracked-files=all").utf8),
    ]
    let walker = FileManager.default.enumerator(atPath: repo.root)
    while let path = walker?.nextObject() as? String {
        if path == ".git" { walker?.skipDescendants(); continue }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: repo.root + "/" + path, isDirectory: &isDirectory),
            !isDirectory.boolValue
        {
            state["file " + path] = try Data(contentsOf: URL(fileURLWithPath: repo.root + "/" + path))
        }
    }
    return state
}

@Suite("Reproduce end to end")
struct ReproduceEndToEndTests {
    @Test("a deterministic run reproduces exactly, and the user's checkout is byte-identical afterwards")
    func exact() throws {
        let (repo, id) = try recorded(seeded: false)
        let before = try checkoutState(repo)
        let result = try repo.gitML(["reproduce", String(id.prefix(8)), "--json"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let report = try json(result.stdout)
        #expect(report["verdict"]?.string == "reproduced")
        #expect(report["metrics"]?.array?.first?["result"]?.string == "exact")
        #expect(report["artifacts"]?.array?.first?["equal"]?.bool == true)
        #expect(try checkoutState(repo) == before)
        let markdown = try String(contentsOfFile: try #require(report["report"]?.string), encoding: .utf8)
        #expect(markdown.contains("**Verdict: reproduced**") && markdown.contains("| score |"))
        let newRun = try #require(report["new_run"]?.string)
        let newRecord = try json(
            try String(
                contentsOfFile: AtomicFileParent.of(report["report"]?.string ?? "") + "/\(newRun).json", encoding: .utf8
            ))
        #expect(newRecord["reproduces"]?.string == id)
    }

    @Test("a metric that depends on the seed reproduces because the seed is replayed")
    func seeded() throws {
        let (repo, id) = try recorded(seeded: true)
        let result = try repo.gitML(["reproduce", id, "--json"])
        #expect(result.status == 0)
        #expect(try json(result.stdout)["verdict"]?.string == "reproduced")
    }

    @Test("changing a data file after the run makes reproduction refuse, naming the file and both digests")
    func changedData() throws {
        let (repo, id) = try recorded(seeded: false)
        try repo.write("data/train.csv", "x\n1\n2\n4\n")
        let result = try repo.gitML(["reproduce", id])
        #expect(result.status == 2)
        #expect(result.stdout.contains("could not run") && result.stdout.contains("data/train.csv: recorded "))
        #expect(result.stdout.contains(", now "))
    }

    @Test("a run recorded on a dirty tree reproduces from its patch")
    func dirtyTree() throws {
        let (repo, id) = try recorded(seeded: false, dirtyOffset: 5)
        try repo.git("checkout", "--", "train.py")
        let result = try repo.gitML(["reproduce", id, "--json"])
        #expect(result.status == 0, "\(result.stdout)")
        let report = try json(result.stdout)
        #expect(report["patch_applied"]?.bool == true)
        #expect(report["verdict"]?.string == "reproduced")
    }

    @Test("a metric outside tolerance is not reproduced; a per-metric tolerance accepts it")
    func tolerance() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        // The score moves with an environment variable the record does not pin: a stand-in for nondeterminism.
        try repo.write(
            "noisy.py",
            "import os, json\nwith open(os.environ['GIT_ML_METRICS'], 'a') as f:\n    f.write(json.dumps({'score': 0.9 + float(os.environ.get('BUMP', '0')), 'steps': 10}))\n"
        )
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "noisy")
        let run = try repo.gitML(["run", "--json", "--", "python3", "noisy.py"])
        let id = try #require(try json(String(run.stdout.split(separator: "\n").last ?? ""))["id"]?.string)
        // The auditor's environment does not reach the re-run unless passed on purpose.
        let isolated = try repo.gitML(["reproduce", id, "--json"], environment: ["BUMP": "0.001"])
        #expect(try json(isolated.stdout)["verdict"]?.string == "reproduced", "\(isolated.stdout)")
        let strict = try repo.gitML(
            ["reproduce", id, "--json", "--pass-env", "BUMP"], environment: ["BUMP": "0.001"])
        #expect(strict.status == 1)
        #expect(try json(strict.stdout)["verdict"]?.string == "not reproduced")
        let lenient = try repo.gitML(
            ["reproduce", id, "--json", "--tolerance", "score=0.01", "--pass-env", "BUMP"],
            environment: ["BUMP": "0.001"])
        #expect(lenient.status == 0)
        let report = try json(lenient.stdout)
        #expect(report["verdict"]?.string == "reproduced within tolerance")
        #expect(
            report["metrics"]?.array?.map { $0["result"]?.string ?? "" } == ["within", "exact"], "score, then steps")
    }

    @Test("--data-root finds the data elsewhere, and without it missing data stops the reproduction")
    func dataRoot() throws {
        let (repo, id) = try recorded(seeded: false)
        let archive = repo.root + "-archive"
        try FileManager.default.createDirectory(atPath: archive + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: archive) }
        try "x\n1\n2\n3\n".write(toFile: archive + "/data/train.csv", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: repo.root + "/data")
        let fromArchive = try repo.gitML(["reproduce", id, "--data-root", archive, "--json"])
        #expect(fromArchive.status == 0, "\(fromArchive.stdout)\(fromArchive.stderr)")
        #expect(try repo.gitML(["reproduce", id]).status == 2, "without --data-root the data is missing")
    }

    @Test("a failing command gives could not run with its stderr tail in the report")
    func failingCommand() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        try repo.write(
            "fail.py", "import sys\nprint('step 1')\nprint('boom: out of memory', file=sys.stderr)\nsys.exit(3)\n")
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "a failing script")
        let run = try repo.gitML(["run", "--json", "--", "python3", "fail.py"])
        #expect(run.status == 3)
        let id = try #require(try json(String(run.stdout.split(separator: "\n").last ?? ""))["id"]?.string)
        let result = try repo.gitML(["reproduce", id, "--json"])
        #expect(result.status == 2)
        let report = try json(result.stdout)
        #expect(report["verdict"]?.string == "could not run")
        #expect(report["stderr_tail"]?.string?.contains("boom: out of memory") == true)
        let markdown = try String(contentsOfFile: try #require(report["report"]?.string), encoding: .utf8)
        #expect(markdown.contains("boom: out of memory"))
    }

    @Test("a snapshot and a commit that no longer exists are clear errors")
    func unreproducible() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        let snapshot = try json(try repo.gitML(["snapshot", "--json", "--metric", "a=1"]).stdout)
        let snap = try repo.gitML(["reproduce", snapshot["id"]?.string ?? ""])
        #expect(snap.status == 2 && snap.stderr.contains("is a snapshot"))
        try repo.write("x.py", "print(1)\n")
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "to be rewritten")
        let run = try repo.gitML(["run", "--json", "--", "python3", "x.py"])
        let id = try #require(try json(String(run.stdout.split(separator: "\n").last ?? ""))["id"]?.string)
        try repo.git("commit", "-q", "--amend", "-m", "rewritten")
        try repo.git("reflog", "expire", "--expire=now", "--all")
        try repo.git("gc", "-q", "--prune=now")
        let gone = try repo.gitML(["reproduce", id])
        #expect(gone.status == 2 && gone.stderr.contains("is not in this repository"))
    }
}

private enum AtomicFileParent {
    static func of(_ path: String) -> String { URL(fileURLWithPath: path).deletingLastPathComponent().path }
}
