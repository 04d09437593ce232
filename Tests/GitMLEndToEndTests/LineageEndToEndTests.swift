import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

private func initialized(_ name: String = #function) throws -> TempRepo {
    let repo = try TempRepo(name: name)
    let result = try repo.gitML(["init"])
    guard result.status == 0 else { throw TestFailure("init failed: \(result.stderr)") }
    return repo
}

private func recordIDs(_ repo: TempRepo) -> [String] {
    repo.files(under: ".mlops/runs").filter { $0.hasSuffix(".json") && !$0.contains(".tmp-") }
}

@Suite("Lineage end to end")
struct LineageEndToEndTests {
    @Test("a user runs a seeded training command and reads it back with log, show and verify")
    func runLogShowVerify() throws {
        let repo = try initialized()
        try repo.write("data/a.csv", "x,y\n1,2\n")
        try repo.write("data/sub/b.csv", "x,y\n3,4\n")
        try repo.write("params.yaml", "train:\n  lr: 0.01\n  epochs: 3\n")
        try repo.write(
            "train.py",
            """
            import os, json
            assert os.environ["PYTHONHASHSEED"] == os.environ["GIT_ML_SEED"] == "42"
            open("model.pkl", "wb").write(b"weights")
            with open(os.environ["GIT_ML_METRICS"], "a") as f:
                for step, loss in enumerate([0.9, 0.5, 0.2]): f.write(json.dumps({"step": step, "loss": loss}) + "\\n")
            print("hello from training")
            """)
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "code")
        let run = try repo.gitML([
            "run", "--json", "--seed", "42", "--data", "data", "--artifact", "model.pkl", "--metric", "acc=0.93", "--",
            "python3", "train.py", "--lr", "0.01",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("hello from training"))
        let summary = try json(String(run.stdout.split(separator: "\n").last ?? ""))
        let id = try #require(summary["id"]?.string)

        let show = try json(try repo.gitML(["show", String(id.prefix(7)), "--json"]).stdout)
        #expect(show["id"]?.string == id)
        #expect(show["kind"]?.string == "run" && show["status"]?.string == "succeeded")
        #expect(show["git"]?["dirty"]?.bool == false)
        #expect(
            show["git"]?["commit"]?.string
                == (try repo.git("rev-parse", "HEAD")).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(show["seed"]?["value"] == .int(42))
        #expect(show["params"]?["train.lr"] == .double(0.01))
        #expect(show["metrics"]?["acc"] == .double(0.93))
        #expect(show["metrics"]?["loss"] == .double(0.2))
        #expect(show["metric_steps"]?["loss"]?.array?.count == 3)
        #expect(show["command"]?["argv"] == .array(["python3", "train.py", "--lr", "0.01"].map(JSONValue.string)))
        #expect(show["data"]?.array?.first?["files"] == .int(2))
        #expect(show["environment"]?["python"]?["version"]?.string?.hasPrefix("3.") == true)
        let artifact = try #require(show["artifacts"]?.array?.first?["sha256"]?.string)
        #expect(FileManager.default.fileExists(atPath: repo.root + "/.mlops/cache/objects/" + artifact))
        let stdoutLog = try #require(show["command"]?["stdout"]?["sha256"]?.string)
        #expect(
            try String(contentsOfFile: repo.root + "/.mlops/cache/objects/" + stdoutLog, encoding: .utf8)
                == "hello from training\n")

        let log = try json(try repo.gitML(["log", "--json", "--where", "metrics.acc > 0.9"]).stdout)
        #expect(log["runs"]?.array?.map { $0["id"]?.string } == [id])
        #expect(
            try json(try repo.gitML(["log", "--json", "--where", "metrics.acc > 0.95"]).stdout)["runs"]?.array?.isEmpty
                == true)

        #expect(try repo.gitML(["verify", id]).status == 0)
        try repo.write("data/sub/b.csv", "x,y\n3,5\n")
        let verify = try repo.gitML(["verify", id])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("modified  data/sub/b.csv"))
        #expect(try repo.gitML(["fsck"]).status == 0)
    }

    @Test("a failed command is recorded as failed and run exits with its status")
    func failedRun() throws {
        let repo = try initialized()
        let result = try repo.gitML(["run", "--json", "--", "sh", "-c", "echo oops >&2; exit 3"])
        #expect(result.status == 3)
        let id = try #require(try json(String(result.stdout.split(separator: "\n").last ?? ""))["id"]?.string)
        let show = try json(try repo.gitML(["show", id, "--json"]).stdout)
        #expect(show["status"]?.string == "failed")
        #expect(show["command"]?["exit_status"] == .int(3))
        #expect(show["seed"]?["source"]?.string == "generated")
    }

    @Test("snapshot from a subdirectory reads metrics files and records a dirty tree's patch")
    func snapshotFromSubdirectory() throws {
        let repo = try initialized()
        try repo.write("src/model.py", "print('v1')\n")
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "v1")
        try repo.write("src/model.py", "print('v2')\n")
        try repo.write("src/metrics.json", "{\"eval\": {\"acc\": 0.8, \"name\": \"x\"}, \"loss\": NaN}")
        let result = try repo.gitML(
            ["snapshot", "--json", "--metrics-file", "metrics.json", "--param", "lr=0.1"], in: "src")
        #expect(result.status == 0, "\(result.stderr)")
        let id = try #require(try json(result.stdout)["id"]?.string)
        let show = try json(try repo.gitML(["show", id, "--json"]).stdout)
        #expect(show["metrics"]?["eval.acc"] == .double(0.8))
        #expect(show["metrics"]?["eval.name"] == nil)
        #expect(show["metrics"]?["loss"] == .string("NaN"))
        #expect(show["git"]?["dirty"]?.bool == true)
        let patch = try #require(show["git"]?["patch"]?.string)
        let text = try repo.read(".mlops/patches/" + patch)
        #expect(text.contains("+print('v2')"))
        // The stored patch restores the exact code on a clean checkout.
        let saved = repo.root + "-restore.patch"
        try text.write(toFile: saved, atomically: true, encoding: .utf8)
        try repo.git("stash", "-u")
        try repo.git("apply", saved)
        #expect(try repo.read("src/model.py") == "print('v2')\n")
    }

    @Test("outside a repository and before init, the error says what to do", arguments: [false, true])
    func notInitialized(_ insideRepo: Bool) throws {
        let repo = try TempRepo()
        let directory = insideRepo ? repo.root : FileManager.default.temporaryDirectory.path
        let result = try TempRepo.run(
            TempRepo.binary, ["log"], in: directory,
            environment: repo.environment.merging([
                "GIT_CEILING_DIRECTORIES": FileManager.default.temporaryDirectory.path
            ]) { _, b in b })
        #expect(result.status == 2)
        #expect(result.stderr.contains(insideRepo ? "has no .mlops directory" : "not a git repository"))
        #expect(result.stderr.contains("hint: "))
    }

    @Test("GIT_DIR and GIT_WORK_TREE are respected")
    func gitEnvironment() throws {
        let repo = try initialized()
        let elsewhere = FileManager.default.temporaryDirectory.path
        let result = try TempRepo.run(
            TempRepo.binary, ["snapshot", "--metric", "a=1"], in: elsewhere,
            environment: repo.environment.merging(["GIT_DIR": repo.root + "/.git", "GIT_WORK_TREE": repo.root]) {
                _, b in b
            })
        #expect(result.status == 0, "\(result.stderr)")
        #expect(recordIDs(repo).count == 1)
    }

    @Test(
        "paths leaving the repository are refused and nothing is written",
        arguments: [
            ["--data", "../outside"], ["--data", "/etc/hostname"], ["--data", "link-out"], ["--artifact", "../x.pkl"],
            ["--artifact", "link-out"],
        ])
    func escapes(_ arguments: [String]) throws {
        let repo = try initialized()
        let outside = repo.root + "-outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: repo.root + "/../outside", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/link-out", withDestinationPath: outside)
        let before = repo.files(under: ".mlops").filter { !$0.contains("/cache/") }.sorted()
        let result = try repo.gitML(["snapshot"] + arguments)
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").first?.hasPrefix("error: ") == true)
        #expect(result.stderr.contains("outside the repository"))
        #expect(repo.files(under: ".mlops").filter { !$0.contains("/cache/") }.sorted() == before)
    }

    @Test("a symbolic link inside a data directory is recorded as a link and not followed")
    func linksInsideData() throws {
        let repo = try initialized()
        try repo.write("data/a.csv", "1\n")
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/data/etc", withDestinationPath: "/etc")
        let result = try repo.gitML(["snapshot", "--json", "--data", "data"])
        #expect(result.status == 0, "\(result.stderr)")
        let id = try #require(try json(result.stdout)["id"]?.string)
        let show = try json(try repo.gitML(["show", id, "--json"]).stdout)
        let manifest = try repo.read(".mlops/manifests/" + (show["data"]?.array?.first?["sha256"]?.string ?? ""))
        #expect(manifest.contains(" l etc\n"))
        #expect(show["data"]?.array?.first?["files"] == .int(2))
    }

    @Test("a record edited by one byte is reported by fsck and verify with its file name")
    func tampering() throws {
        let repo = try initialized()
        let id = try #require(
            try json(try repo.gitML(["snapshot", "--json", "--metric", "acc=0.5"]).stdout)["id"]?.string)
        let path = repo.root + "/.mlops/runs/\(id).json"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: "0.5", with: "0.9").write(toFile: path, atomically: false, encoding: .utf8)
        let fsck = try repo.gitML(["fsck"])
        #expect(fsck.status == 1)
        #expect(fsck.stdout.contains(".mlops/runs/\(id).json"))
        let verify = try repo.gitML(["verify", id])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains(".mlops/runs/\(id).json"))
    }

    @Test("ambiguous and unknown run ids are errors listing candidates")
    func prefixes() throws {
        let repo = try initialized()
        let a = "abcd1" + String(repeating: "0", count: 59)
        let b = "abcd2" + String(repeating: "0", count: 59)
        for id in [a, b] { try repo.write(".mlops/runs/\(id).json", "{}") }
        let ambiguous = try repo.gitML(["show", "abcd"])
        #expect(ambiguous.status == 2)
        #expect(
            ambiguous.stderr.contains("ambiguous") && ambiguous.stderr.contains("abcd10000000")
                && ambiguous.stderr.contains("abcd20000000"))
        let unknown = try repo.gitML(["show", "abce"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("run abce not found (did you mean abcd1 or abcd2?)"))
    }

    @Test("16 concurrent snapshots all succeed and all 16 records exist")
    func concurrentSnapshots() async throws {
        let repo = try initialized()
        try repo.write("data/a.csv", "1,2\n")
        let results = try await withThrowingTaskGroup(of: ProcessOutput.self) { group in
            for i in 0..<16 { group.addTask { try repo.gitML(["snapshot", "--data", "data", "--metric", "i=\(i)"]) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for result in results { #expect(result.status == 0, "\(result.stderr)") }
        #expect(recordIDs(repo).count == 16)
        #expect(try repo.gitML(["fsck"]).status == 0)
    }

    @Test("a snapshot killed with SIGKILL leaves no record or a complete one, and fsck stays clean")
    func killedSnapshot() throws {
        let repo = try initialized()
        try repo.write("data/big.bin", Data(repeating: 7, count: 64 << 20))
        for delay in [0.0, 0.02, 0.05, 0.1, 0.2] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TempRepo.binary)
            process.arguments = ["snapshot", "--data", "data", "--artifact", "data/big.bin"]
            process.currentDirectoryURL = URL(fileURLWithPath: repo.root)
            process.environment = repo.environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let fsck = try repo.gitML(["fsck"])
        #expect(fsck.status == 0, "\(fsck.stdout)")
        let status = try repo.git("status", "--porcelain", "--untracked-files=all", ".mlops")
        #expect(!status.contains(".tmp-"))
    }

    @Test("seeded secrets never reach anything under .mlops")
    func secrets() throws {
        let repo = try initialized()
        try repo.write(".mlops/config.yaml", "environment:\n  variables: [GITHUB_TOKEN, INNOCENT, DATABASE_URL]\n")
        try repo.git(
            "remote", "add", "origin", "https://bob:ghp_remoteTOKENremoteTOKENremoteTOKEN12@github.com/o/r.git")
        let secrets = [
            "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "sk-proj-0123456789abcdefghijklmn", "s3cr3t-db-pass", "ghp_innocentINNOCENTinnocentINNOCENT1234",
            "ghp_remoteTOKENremoteTOKENremoteTOKEN12", "ghp_paramPARAMparamPARAMparamPARAM123456",
        ]
        let env = [
            "AWS_ACCESS_KEY_ID": secrets[0], "AWS_SECRET_ACCESS_KEY": secrets[1], "GITHUB_TOKEN": secrets[2],
            "OPENAI_API_KEY": secrets[3], "DATABASE_URL": "postgres://app:\(secrets[4])@db/x", "INNOCENT": secrets[5],
        ]
        try repo.write(
            "train.py", "import os\nprint(os.environ['GITHUB_TOKEN'])\nprint('key', os.environ['OPENAI_API_KEY'])\n")
        let run = try repo.gitML(
            [
                "run", "--param", "hub=\(secrets[7])", "--param", "api_token=plain", "--", "python3", "train.py",
                "--token", secrets[2],
            ], environment: env)
        #expect(run.status == 0, "\(run.stderr)")
        let snap = try repo.gitML(["snapshot", "--param", "x=\(secrets[7])"], environment: env)
        #expect(snap.status == 0, "\(snap.stderr)")
        var found: [String] = []
        for file in repo.files(under: ".mlops") {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: repo.root + "/" + file))) ?? Data()
            let text = String(decoding: bytes, as: UTF8.self)
            for secret in secrets + ["plain"] where text.contains(secret) { found.append("\(secret) in \(file)") }
        }
        #expect(found.isEmpty, "\(found)")
    }

    @Test(
        "malformed metrics and params files give one line naming the file",
        arguments: [
            ("metrics.json", "{\"acc\": 0.9,"), ("metrics.json", String(repeating: "[", count: 100_000)),
            ("params.yaml", "a: [1, 2\n"),
            (
                "params.yaml",
                "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
                    + (1...9).map {
                        "a\($0): &a\($0) ["
                            + Array(repeating: "*a\($0 == 1 ? "" : String($0 - 1))", count: 10).joined(separator: ",")
                            + "]"
                    }.joined(separator: "\n")
            ),
            ("params.yaml", String(repeating: "- ", count: 100_000) + "x"),
        ])
    func malformedFiles(_ file: (String, String)) throws {
        let repo = try initialized()
        try repo.write(file.0, file.1)
        let arguments = file.0 == "metrics.json" ? ["snapshot", "--metrics-file", "metrics.json"] : ["snapshot"]
        let result = try repo.gitML(arguments)
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.first?.hasPrefix("error: \(file.0)") == true, "\(result.stderr)")
        #expect(lines.count <= 2)
        #expect(recordIDs(repo).isEmpty)
    }

    @Test("diff shows params and metrics side by side with deltas")
    func diff() throws {
        let repo = try initialized()
        let a = try #require(
            try json(try repo.gitML(["snapshot", "--json", "--param", "lr=0.1", "--metric", "acc=0.8"]).stdout)["id"]?
                .string)
        let b = try #require(
            try json(try repo.gitML(["snapshot", "--json", "--param", "lr=0.2", "--metric", "acc=0.9"]).stdout)["id"]?
                .string)
        let rows = try json(try repo.gitML(["diff", a, b, "--json"]).stdout)["rows"]?.array ?? []
        let acc = try #require(rows.first { $0["section"]?.string == "metrics" && $0["key"]?.string == "acc" })
        #expect(abs((acc["delta"]?.number ?? 0) - 0.1) < 1e-9)
        #expect(
            rows.contains {
                $0["section"]?.string == "params" && $0["key"]?.string == "lr" && $0["changed"]?.bool == true
            })
    }

    @Test("profile and snapshot --profile store a content-addressed profile that the record references and fsck checks")
    func profiles() throws {
        let repo = try initialized()
        var csv = "age,country\n"
        for i in 0..<500 { csv += "\(20 + i % 50),\(["DE", "FR", "US"][i % 3])\n" }
        try repo.write("data/train.csv", csv)
        let profiled = try json(try repo.gitML(["profile", "data/train.csv", "--json"]).stdout)
        let id = try #require(profiled["id"]?.string)
        #expect(profiled["profile"]?["rows"] == .int(500) && profiled["profile"]?["columns"] == .int(2))
        let snapshot = try json(
            try repo.gitML(["snapshot", "--json", "--profile", "data/train.csv", "--metric", "a=1"]).stdout)
        let record = try json(try repo.gitML(["show", snapshot["id"]?.string ?? "", "--json"]).stdout)
        #expect(record["profiles"]?.array?.first?["sha256"]?.string == id, "the same table gives the same profile")
        #expect(try repo.gitML(["fsck"]).status == 0)
        let path = repo.root + "/.mlops/profiles/\(id).json"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        try (try String(contentsOfFile: path, encoding: .utf8)).replacingOccurrences(
            of: "\"rows\": 500", with: "\"rows\": 501"
        )
        .write(toFile: path, atomically: false, encoding: .utf8)
        let fsck = try repo.gitML(["fsck"])
        #expect(fsck.status == 1 && fsck.stdout.contains(".mlops/profiles/\(id).json"))
        let outside = try repo.gitML(["profile", "../elsewhere.csv"])
        #expect(outside.status == 2)
        try repo.write("bad.csv", "a,b\n1,2,3\n")
        let bad = try repo.gitML(["profile", "bad.csv"])
        #expect(bad.status == 2 && bad.stderr.contains("bad.csv: row 2: 3 fields, but the header names 2 columns"))
    }

    @Test("GIT_ML_TRACE_PERFORMANCE prints phase timings on stderr, and only when set")
    func performanceTrace() throws {
        let repo = try initialized()
        try repo.write("data/a.csv", "a\n")
        let traced = try repo.gitML(["snapshot", "--data", "data"], environment: ["GIT_ML_TRACE_PERFORMANCE": "1"])
        #expect(traced.status == 0)
        let phases = traced.stderr.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("performance: "), let colon = line.range(of: " s: ") else { return nil }
            #expect(Double(line.dropFirst("performance: ".count).prefix(upTo: colon.lowerBound)) != nil, "\(line)")
            return String(line[colon.upperBound...])
        }
        for phase in ["git state", "walk data", "hash data", "environment", "write record", "git ml snapshot"] {
            #expect(phases.contains(phase), "no \(phase) in \(phases)")
        }
        let quiet = try repo.gitML(["snapshot", "--data", "data"])
        #expect(quiet.status == 0 && !quiet.stderr.contains("performance:"))
    }

    @Test("help reaches the tool: git ml -h, git ml help <cmd>, and the man page for --help")
    func help() throws {
        let repo = try TempRepo()
        let short = try repo.gitML(["-h"])
        #expect(short.status == 0 && short.stdout.contains("SUBCOMMANDS"))
        let sub = try repo.gitML(["help", "run"])
        #expect(sub.status == 0 && sub.stdout.contains("GIT_ML_SEED"))
        let manDir =
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path + "/docs/man"
        let page = try String(contentsOfFile: manDir + "/git-ml.1", encoding: .utf8)
        #expect(page.contains(".Nm git-ml"))
        for command in ["init", "run", "snapshot", "log", "show", "diff", "verify", "fsck"] {
            #expect(page.contains(command), "man page lacks \(command): run scripts/gen-man")
        }
    }
}
