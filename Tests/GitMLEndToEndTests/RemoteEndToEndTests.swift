import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private let noRegistry: Comment = "docker-registry is not installed (scripts/bootstrap installs it)"

/// A project with one registered model version whose artifact (model.pkl, `bytes` long) is not committed to git,
/// as models usually are not, and a remote `origin` on `registry`.
private func project(
    _ registry: RegistryServer, bytes: Int = 4096, name: String = #function, repository: String = "team/churn"
) throws -> TempRepo {
    let repo = try TempRepo(name: name)
    repo.putGitMLOnPath()
    #expect(try repo.gitML(["init"]).status == 0)
    try repo.write(".gitignore", "model.pkl\n")
    var model = [UInt8](repeating: 0, count: bytes)
    for i in model.indices { model[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
    try repo.write("model.pkl", Data(model))
    let run = try repo.gitML(["snapshot", "--seed", "1", "--metric", "acc=0.95", "--artifact", "model.pkl"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
    let add = try repo.gitML(["remote", "add", "origin", "oci://\(registry.host)/\(repository)", "--insecure-http"])
    #expect(add.status == 0, "\(add.stderr)")
    try repo.commitAll("model and remote")
    return repo
}

/// A clone of `repo` (through a bare remote), with git-ml's store empty, as a teammate or an auditor has it.
private func clone(_ repo: TempRepo, name: String = #function) throws -> TempRepo {
    let bare = try repo.addBareRemote()
    try repo.git("push", "-q", "origin", "main")
    let other = try TempRepo(name: name + "clone", commit: false)
    try FileManager.default.removeItem(atPath: other.root)
    let cloned = try TempRepo.run(
        "/usr/bin/git", ["clone", "-q", bare, other.root], in: "/", environment: other.environment)
    #expect(cloned.status == 0, "\(cloned.stderr)")
    other.putGitMLOnPath()
    return other
}

private func objects(_ repo: TempRepo) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: repo.root + "/.mlops/cache/objects")) ?? []
}

private func modelDigest(_ repo: TempRepo) throws -> String {
    try TempRepo.sha256(Array(try Data(contentsOf: URL(fileURLWithPath: repo.root + "/model.pkl"))))
}

@Suite("Remotes: artifacts through a real OCI registry", .enabled(if: RegistryServer.executable != nil, noRegistry))
struct RemoteEndToEndTests {
    @Test("push, a fresh clone pulls the exact bytes, a second push sends nothing, status and verify say where")
    func roundTrip() throws {
        let registry = try RegistryServer()
        let repo = try project(registry)
        let first = try repo.gitML(["push", "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        let pushed = try json(first.stdout)["packages"]?.array?.first
        #expect(pushed?["state"]?.string == "pushed" && pushed?["tag"]?.string == "churn-v1")
        #expect((pushed?["blobs_sent"]?.number ?? 0) >= 3, "config, model, run record, version file")
        let digest = try modelDigest(repo)
        #expect(FileManager.default.fileExists(atPath: registry.blobPath(digest)), "the layer digest is the sha256")

        let again = try repo.gitML(["push", "--json"])
        let second = try json(again.stdout)["packages"]?.array?.first
        #expect(second?["state"]?.string == "up to date" && second?["blobs_sent"]?.number == 0)

        let other = try clone(repo)
        #expect(!objects(other).contains(digest))
        let status = try other.gitML(["remote", "status", "--json"])
        let row = try json(status.stdout)["packages"]?.array?.first
        #expect(row?["local"]?.bool == false && row?["remote"]?.bool == true, "\(status.stdout)\(status.stderr)")
        let verify = try other.gitML(["verify"])
        #expect(
            verify.stdout.contains("not local; on remote origin")
                || verify.stderr.contains("not local; on remote origin"), "\(verify.stdout)\(verify.stderr)")

        let pull = try other.gitML(["pull", "churn@1"])
        #expect(pull.status == 0, "\(pull.stderr)")
        #expect(pull.stdout.contains("churn@1: pulled churn-v1"))
        let stored = other.root + "/.mlops/cache/objects/" + digest
        #expect(try TempRepo.sha256(Array(try Data(contentsOf: URL(fileURLWithPath: stored)))) == digest)
        #expect(objects(other).allSatisfy { !$0.hasPrefix(".") }, "no temporary file left")
        let twice = try other.gitML(["pull", "churn@1"])
        #expect(twice.stdout.contains("churn@1: present"))
        // The clone can now put the artifact back and reproduce from it.
        let restored = try other.gitML(["remote", "status", "--json"])
        #expect(try json(restored.stdout)["packages"]?.array?.first?["local"]?.bool == true)
    }

    @Test("an auditor's clone reproduces a version: the recorded artifact is pulled first, and the re-made one matches")
    func reproduceFromRemote() throws {
        let registry = try RegistryServer()
        let repo = try TempRepo()
        repo.putGitMLOnPath()
        #expect(try repo.gitML(["init"]).status == 0)
        try repo.write(".gitignore", "model.pkl\n")
        try repo.write("train.sh", "printf 'weights %s' 42 > model.pkl\n")
        try repo.commitAll("training")
        let run = try repo.gitML(["run", "--artifact", "model.pkl", "--", "sh", "train.sh"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try repo.gitML(["model", "register", "churn"]).status == 0)
        #expect(
            try repo.gitML(["remote", "add", "origin", "oci://\(registry.host)/team/churn", "--insecure-http"]).status
                == 0)
        try repo.commitAll("run and remote")
        #expect(try repo.gitML(["push"]).status == 0)
        let other = try clone(repo)
        let reproduce = try other.gitML(["reproduce", "churn@1"])
        #expect(reproduce.status == 0, "\(reproduce.stdout)\(reproduce.stderr)")
        #expect(reproduce.stderr.contains("pulled 1 recorded artifact(s) of run"), "\(reproduce.stderr)")
        #expect(objects(other).contains(try modelDigest(repo)))
    }

    @Test("what git-ml pushes oras pulls byte-identical; what oras pushes with the same media types git-ml pulls")
    func orasInterop() throws {
        guard let python = TestTools.path("python"), TestTools.path("pip") != nil,
            (try? TempRepo.run(python, ["-c", "import oras"], in: "/", environment: [:]).status) == 0
        else {
            withKnownIssue("oras is not installed (scripts/test-tools installs it from PyPI)") {
                throw TestFailure("skip")
            }
            return
        }
        let registry = try RegistryServer()
        let repo = try project(registry)
        #expect(try repo.gitML(["push"]).status == 0)
        let out = repo.root + "-oras"
        let pull = try TempRepo.run(
            python,
            [
                "-c",
                """
                import oras.client, sys
                c = oras.client.OrasClient(hostname="\(registry.host)", insecure=True)
                print(c.pull(target="\(registry.host)/team/churn:churn-v1", outdir=sys.argv[1]))
                """, out,
            ], in: "/", environment: [:])
        #expect(pull.status == 0, "\(pull.stderr)")
        let pulled = try Data(contentsOf: URL(fileURLWithPath: out + "/model.pkl"))
        #expect(try TempRepo.sha256(Array(pulled)) == (try modelDigest(repo)))

        // oras pushes the same model under another repository; git-ml pulls it from there.
        let other = try clone(repo)
        try FileManager.default.copyItem(atPath: repo.root + "/model.pkl", toPath: out + "/upload.pkl")
        try #"{"descriptor":{"name":"churn","version":"1"},"modelfs":{"type":"layers","diffIds":[]},"config":{}}"#
            .write(toFile: out + "/config.json", atomically: true, encoding: .utf8)
        let push = try TempRepo.run(
            python,
            [
                "-c",
                """
                import oras.client
                c = oras.client.OrasClient(hostname="\(registry.host)", insecure=True)
                r = c.push(target="\(registry.host)/team/from-oras:churn-v1",
                           files=["upload.pkl:application/vnd.cncf.model.weight.v1.raw"],
                           manifest_config="config.json:application/vnd.cncf.model.config.v1+json",
                           disable_path_validation=True)
                print(r.status_code)
                """,
            ], in: out, environment: [:])
        #expect(push.status == 0 && push.stdout.contains("201"), "\(push.stdout)\(push.stderr)")
        #expect(
            try other.gitML(["remote", "add", "oras", "oci://\(registry.host)/team/from-oras", "--insecure-http"])
                .status == 0)
        let fetched = try other.gitML(["pull", "oras", "churn@1"])
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(objects(other).contains(try modelDigest(repo)))
        try? FileManager.default.removeItem(atPath: out)
    }

    @Test(
        "basic auth: no credentials is one clear error; git's credential helper or docker's config.json lets it through"
    )
    func basicAuth() throws {
        let registry = try RegistryServer(user: ("ci", "s3cret-pass"))
        let repo = try project(registry)
        let refused = try repo.gitML(["push"], environment: ["HOME": repo.root + "-home"])
        #expect(refused.status == 2)
        #expect(
            refused.stderr.contains("not authorized") && refused.stderr.contains("docker login"), "\(refused.stderr)")
        // git's own credential store, as `git credential approve` leaves it.
        try "http://ci:s3cret-pass@\(registry.host)\n".write(
            toFile: repo.root + "-credentials", atomically: true, encoding: .utf8)
        try repo.git("config", "credential.helper", "store --file=\(repo.root)-credentials")
        let pushed = try repo.gitML(["push"])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        try repo.git("config", "--unset", "credential.helper")
        // docker login's config.json, in a clone.
        let other = try clone(repo)
        let docker = other.root + "-docker"
        try FileManager.default.createDirectory(atPath: docker, withIntermediateDirectories: true)
        let auth = Data("ci:s3cret-pass".utf8).base64EncodedString()
        try #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#.write(
            toFile: docker + "/config.json", atomically: true, encoding: .utf8)
        let pulled = try other.gitML(["pull", "churn@1"], environment: ["DOCKER_CONFIG": docker])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        for output in [refused, pushed, pulled] {
            #expect(!(output.stdout + output.stderr).contains("s3cret-pass"))
        }
        let leaked = try TempRepo.run(
            "/usr/bin/grep", ["-r", "-l", "s3cret-pass", other.root + "/.mlops", repo.root + "/.mlops"], in: "/",
            environment: [:])
        #expect(leaked.stdout.isEmpty, "a credential reached .mlops: \(leaked.stdout)")
        try? FileManager.default.removeItem(atPath: docker)
        try? FileManager.default.removeItem(atPath: repo.root + "-credentials")
    }

    @Test("remote add keeps config.yaml's comments, adds to an existing block, and refuses duplicates and bad URLs")
    func remoteAdd() throws {
        let registry = try RegistryServer()
        let repo = try project(registry)
        let before = try repo.read(".mlops/config.yaml")
        #expect(
            try repo.gitML(["remote", "add", "backup", "oci://\(registry.host)/team/backup", "--insecure-http"]).status
                == 0)
        let after = try repo.read(".mlops/config.yaml")
        #expect(after.hasPrefix(before.components(separatedBy: "remotes:")[0]), "comments and settings kept")
        let listed = try json(try repo.gitML(["remote", "ls", "--json"]).stdout)["remotes"]?.array ?? []
        #expect(listed.compactMap { $0["name"]?.string } == ["backup", "origin"])
        #expect(listed.first?["insecure_http"]?.bool == true && listed.last?["default"]?.bool == true)
        let duplicate = try repo.gitML(["remote", "add", "origin", "oci://\(registry.host)/x"])
        #expect(duplicate.status == 2 && duplicate.stderr.contains("already configured"), "\(duplicate.stderr)")
        let bad = try repo.gitML(["remote", "add", "x", "https://\(registry.host)/x"])
        #expect(bad.status == 2 && bad.stderr.contains("oci://"), "\(bad.stderr)")
        #expect(try repo.read(".mlops/config.yaml") == after, "a refused add changes nothing")
        // A blob another remote of the same registry holds is mounted, not sent.
        #expect(try repo.gitML(["push"]).status == 0)
        let backup = try repo.gitML(["push", "backup", "--json"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let mounted = try json(backup.stdout)["packages"]?.array?.first
        #expect((mounted?["blobs_mounted"]?.number ?? 0) >= 1, "\(backup.stdout)")
    }

    @Test("with remote.push_on_git_push, git push sends the artifacts from the pre-push hook, as git-lfs does")
    func pushOnGitPush() throws {
        let registry = try RegistryServer()
        let repo = try project(registry)
        let config = try repo.read(".mlops/config.yaml")
        try repo.write(".mlops/config.yaml", config + "remote:\n  push_on_git_push: true\n")
        #expect(try repo.gitML(["hook", "install"]).status == 0)
        try repo.commitAll("push artifacts with git push")
        try repo.addBareRemote()
        let push = try repo.gitResult("push", "origin", "main")
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stderr.contains("git-ml: pushed churn@1 to origin"), "\(push.stderr)")
        #expect(FileManager.default.fileExists(atPath: registry.blobPath(try modelDigest(repo))))

        // A clone got remote and setting from the committed config.yaml: it sends nothing until its user has used
        // that remote (a hostile config must not ship every model to a registry of its author's choosing).
        let other = try TempRepo(name: "pushOnGitPushClone", commit: false)
        try FileManager.default.removeItem(atPath: other.root)
        _ = try TempRepo.run(
            "/usr/bin/git", ["clone", "-q", repo.root + "-origin.git", other.root], in: "/",
            environment: other.environment)
        other.putGitMLOnPath()
        #expect(try other.gitML(["hook", "install"]).status == 0)
        try other.write("notes.txt", "more\n")
        try other.commitAll("more")
        let quiet = try other.gitResult("push", "origin", "main")
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(quiet.stderr.contains("not pushing artifacts to oci://\(registry.host)/team/churn"), "\(quiet.stderr)")
        #expect(try other.gitML(["push"]).status == 0, "an explicit push is consent")
        try other.write("notes.txt", "more still\n")
        try other.commitAll("more still")
        let trusted = try other.gitResult("push", "origin", "main")
        #expect(!trusted.stderr.contains("not pushing artifacts"), "\(trusted.stderr)")
    }

    @Test("the Bearer token flow (realm, service, scope) and a redirected blob that never sees the credentials")
    func bearerTokenAndRedirect() throws {
        let registry = try RegistryServer()
        let repo = try project(registry)
        let port = registry.port + 2
        let log = repo.root + "-proxy.log"
        // A token-guarded front for the registry, as GHCR or Harbor are: a 401 with a Bearer challenge, a token
        // service that wants basic credentials, and blob downloads redirected to another host (a CDN).
        let proxy = try TempRepo.start(
            "/usr/bin/python3",
            [
                "-c",
                """
                import http.server, urllib.request, base64, sys
                PORT, REG, LOG = \(port), "127.0.0.1:\(registry.port)", sys.argv[1]
                def note(line):
                    with open(LOG, "a") as f: f.write(line + "\\n")
                class H(http.server.BaseHTTPRequestHandler):
                    protocol_version = "HTTP/1.1"
                    def send(self, status, body=b"", headers=()):
                        self.send_response(status)
                        for k, v in headers: self.send_header(k, v)
                        self.send_header("Content-Length", str(len(body))); self.end_headers()
                        if self.command != "HEAD": self.wfile.write(body)
                    def body(self):
                        n = int(self.headers.get("Content-Length") or 0)
                        return self.rfile.read(n) if n else None
                    def handle_any(self):
                        data = self.body()
                        if self.path.startswith("/token"):
                            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"ci:tok-pass").decode()
                            note("token " + self.path)
                            return self.send(200, b'{"token": "T-granted"}') if ok else self.send(401)
                        if self.path.startswith("/redirected/"):
                            note("redirect authorization=" + ("yes" if self.headers.get("Authorization") else "no"))
                            repo, digest = self.path[len("/redirected/"):].split("@")
                            blob = urllib.request.urlopen("http://%s/v2/%s/blobs/%s" % (REG, repo, digest)).read()
                            return self.send(200, blob)
                        if self.headers.get("Authorization") != "Bearer T-granted":
                            challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="test",scope="repository:team/churn:pull,push"' % PORT
                            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}', [("WWW-Authenticate", challenge)])
                        if self.command == "GET" and "/blobs/sha256:" in self.path:
                            repo = self.path[len("/v2/"):self.path.index("/blobs/")]
                            digest = self.path.split("/blobs/")[1]
                            return self.send(307, b"", [("Location", "http://localhost:%d/redirected/%s@%s" % (PORT, repo, digest))])
                        request = urllib.request.Request("http://" + REG + self.path, data=data, method=self.command)
                        for k in ("Content-Type", "Accept", "Content-Range"):
                            if self.headers.get(k): request.add_header(k, self.headers[k])
                        try:
                            response = urllib.request.urlopen(request)
                        except urllib.error.HTTPError as e:
                            response = e
                        headers = [(k, v.replace("http://" + REG, "http://127.0.0.1:%d" % PORT)) for k, v in response.headers.items() if k.lower() not in ("content-length", "connection", "transfer-encoding")]
                        self.send(response.status if hasattr(response, "status") else response.code, response.read(), headers)
                    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = handle_any
                    def log_message(self, *a): pass
                http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
                """, log,
            ], in: "/", environment: [:])
        defer { proxy.kill() }
        // Up once it answers anything, however long a busy machine takes to start Python.
        #expect(try ServeProcess.eventually(20) { try HTTPExchange.send("http://127.0.0.1:\(port)/v2/").status != 0 })
        #expect(
            try repo.gitML(["remote", "add", "guarded", "oci://127.0.0.1:\(port)/team/churn", "--insecure-http"]).status
                == 0)
        let anonymous = try repo.gitML(["push", "guarded"])
        #expect(anonymous.status == 2 && anonymous.stderr.contains("not authorized"), "\(anonymous.stderr)")
        try "http://ci:tok-pass@127.0.0.1:\(port)\n".write(
            toFile: repo.root + "-credentials", atomically: true, encoding: .utf8)
        try repo.git("config", "credential.helper", "store --file=\(repo.root)-credentials")
        let pushed = try repo.gitML(["push", "guarded"])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        try FileManager.default.removeItem(atPath: repo.root + "/.mlops/cache/objects/" + (try modelDigest(repo)))
        let pulled = try repo.gitML(["pull", "guarded", "churn@1"])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(objects(repo).contains(try modelDigest(repo)))
        let lines = try String(contentsOfFile: log, encoding: .utf8)
        #expect(lines.contains("token /token?service=test&scope=repository%3Ateam%2Fchurn%3Apull%2Cpush"), "\(lines)")
        #expect(
            lines.contains("redirect authorization=no") && !lines.contains("redirect authorization=yes"), "\(lines)")
        try? FileManager.default.removeItem(atPath: log)
        try? FileManager.default.removeItem(atPath: repo.root + "-credentials")
    }

    @Test("a blob corrupted on the registry's disk is refused on pull and nothing is stored under any name")
    func corruptedBlob() throws {
        let registry = try RegistryServer()
        let repo = try project(registry)
        #expect(try repo.gitML(["push"]).status == 0)
        let digest = try modelDigest(repo)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: registry.blobPath(digest))))
        bytes[100] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: registry.blobPath(digest)))
        let other = try clone(repo)
        let pull = try other.gitML(["pull", "churn@1"])
        #expect(pull.status == 2)
        #expect(pull.stderr.contains("sha256 expected \(digest)"), "\(pull.stderr)")
        #expect(objects(other).isEmpty, "\(objects(other))")
    }

    @Test(
        "nothing pushed is not on the remote; a registry answering 500 is one error naming it; a full disk stores nothing"
    )
    func failures() throws {
        let registry = try RegistryServer()
        let repo = try project(registry)
        let other = try clone(repo)
        let missing = try other.gitML(["pull", "churn@1"])
        #expect(missing.status == 2 && missing.stderr.contains("is not on remote origin"), "\(missing.stderr)")

        // A server that fails every request the way registries report errors.
        let port = registry.port + 1
        let server = try TempRepo.start(
            "/usr/bin/python3",
            [
                "-c",
                """
                import http.server
                class H(http.server.BaseHTTPRequestHandler):
                    def do_HEAD(self):
                        self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
                    def reply(self):
                        body = b'{"errors":[{"code":"UNKNOWN","message":"storage is on fire"}]}'
                        self.send_response(500); self.send_header("Content-Length", str(len(body))); self.end_headers()
                        self.wfile.write(body)
                    do_GET = do_POST = do_PUT = do_PATCH = reply
                    def log_message(self, *a): pass
                http.server.HTTPServer(("127.0.0.1", \(port)), H).serve_forever()
                """,
            ], in: "/", environment: [:])
        defer { server.kill() }
        // Up once it answers (its 500), however long a busy machine takes to start Python.
        #expect(try ServeProcess.eventually(20) { try HTTPExchange.send("http://127.0.0.1:\(port)/v2/").status == 500 })
        #expect(
            try repo.gitML(["remote", "add", "broken", "oci://127.0.0.1:\(port)/team/churn", "--insecure-http"]).status
                == 0)
        let failed = try repo.gitML(["push", "broken"])
        #expect(failed.status == 2)
        #expect(failed.stderr.contains("HTTP 500 UNKNOWN: storage is on fire"), "\(failed.stderr)")
        #expect(failed.stderr.contains("the registry failed; try again later"), "\(failed.stderr)")

        // A full disk while pulling (the file size limit stands in for it): the write fails, nothing is stored.
        #expect(try repo.gitML(["push"]).status == 0)
        let big = try project(registry, bytes: 3 << 20, name: "bigmodel", repository: "team/big")
        #expect(try big.gitML(["push"]).status == 0)
        let bigClone = try clone(big, name: "bigclone")
        let full = try TempRepo.run(
            "/bin/sh", ["-c", "trap '' XFSZ; ulimit -f 1024; exec \"$0\" pull churn@1", TempRepo.binary],
            in: bigClone.root, environment: bigClone.environment)
        #expect(full.status == 2, "\(full.stderr)")
        #expect(full.stderr.contains("too large") || full.stderr.contains("No space"), "\(full.stderr)")
        #expect(objects(bigClone).isEmpty, "\(objects(bigClone))")
    }

    @Test(
        "the registry killed mid-upload: the push fails clearly, and run again it completes without re-sending finished blobs"
    )
    func killedMidUpload() throws {
        let registry = try RegistryServer()
        let repo = try project(registry, bytes: 96 << 20)
        // A second, small artifact recorded by another run and version, so one blob finishes early.
        try repo.write("small.bin", "small weights")
        #expect(
            try repo.gitML(["snapshot", "--seed", "2", "--metric", "acc=0.9", "--artifact", "small.bin"]).status == 0)
        #expect(try repo.gitML(["model", "register", "tiny"]).status == 0)
        try repo.commitAll("tiny model")
        let push = try TempRepo.start(
            TempRepo.binary, ["push", "--json"], in: repo.root, environment: repo.environment)
        let uploads = registry.storage + "/docker/registry/v2/repositories/team/churn/_uploads"
        var killed = false
        for _ in 0..<400 where !killed {
            usleep(20_000)
            let sizes =
                (try? FileManager.default.subpathsOfDirectory(atPath: uploads))?.compactMap { path -> Int? in
                    guard path.hasSuffix("/data") else { return nil }
                    return (try? FileManager.default.attributesOfItem(atPath: uploads + "/" + path)[.size] as? Int)
                        ?? nil
                } ?? []
            if sizes.contains(where: { $0 > 8 << 20 }) {
                registry.kill()
                killed = true
            }
        }
        #expect(killed, "the upload was seen in progress")
        let cut = try push.wait()
        #expect(cut.status == 2, "\(cut.stdout)\(cut.stderr)")
        try registry.restart()
        let again = try repo.gitML(["push", "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        let packages = try json(again.stdout)["packages"]?.array ?? []
        let skipped = packages.reduce(0.0) { $0 + ($1["blobs_skipped"]?.number ?? 0) }
        #expect(skipped >= 1, "finished blobs are not sent again: \(again.stdout)")
        let digest = try modelDigest(repo)
        #expect(
            try TempRepo.sha256(Array(try Data(contentsOf: URL(fileURLWithPath: registry.blobPath(digest))))) == digest)
    }
}
