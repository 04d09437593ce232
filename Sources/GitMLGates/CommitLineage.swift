import GitMLBasics
import GitMLGit
import GitMLLineage
import GitMLRegistry
import GitMLStore

/// The `lineage` gate's "verify" row for a push: a run's artifacts and data re-hashed from what exists here, never
/// taken from the record. Each file is read from the first place that has its bytes: the pushed commit (a blob, or
/// the git-lfs object its pointer names), the local object store (artifacts), or the work tree of the clone doing
/// the check. A file none of them has cannot be re-hashed on this machine, and that fails the row (fail closed).
struct CommitLineage {
    let tree: CommitTree
    /// The clone's work tree and object store; nil on a server's bare repository.
    let workspace: Workspace?

    /// One line per problem; empty when every byte matched.
    func problems(run: StoredRun, artifacts: [ModelArtifact]) throws -> [String] {
        var problems: [String] = []
        for artifact in artifacts {
            if let problem = try check(
                path: artifact.path, sha256: artifact.sha256, section: "artifact", item: nil, storedCopy: true)
            {
                problems.append(problem)
            }
        }
        for item in run.data where item["missing"]?.bool != true {
            guard let path = item["path"]?.string, let sha256 = item["sha256"]?.string else { continue }
            if let problem = try check(path: path, sha256: sha256, section: "data", item: item, storedCopy: false) {
                problems.append(problem)
            }
        }
        if let patch = run.record["git"]?["patch"]?.string {
            let path = ".mlops/patches/\(patch)"
            guard let bytes = try tree.contents(of: path) else {
                problems.append("missing \(path): the dirty-tree patch is not in the pushed commit")
                return problems
            }
            if try SHA256.hex(of: bytes) != patch { problems.append("modified \(path): it does not match its name") }
        }
        return problems
    }

    private func check(path: String, sha256: String, section: String, item: JSONValue?, storedCopy: Bool) throws
        -> String?
    {
        // A file committed in the pushed commit, or the git-lfs pointer standing for it.
        if let entry = tree.entry(at: path), !entry.isDirectory, !entry.isLink, let bytes = try tree.contents(of: path)
        {
            if let pointer = LFSPointer.parse(bytes) {
                return pointer.oid == "sha256:\(sha256)"
                    ? nil : "modified \(path): its git-lfs pointer names \(pointer.oid.suffix(64).prefix(12))"
            }
            let actual = try SHA256.hex(of: bytes)
            return actual == sha256
                ? nil
                : "modified \(path): \(section) sha256 \(actual.prefix(12)) in the pushed commit, \(sha256.prefix(12)) recorded"
        }
        guard let workspace else {
            return
                "unverifiable \(path): the \(section) is neither in the pushed commit nor on this host, so it cannot be re-hashed here"
        }
        if storedCopy, workspace.objects.contains(sha256) {
            let actual = try FileHasher().hash(path: workspace.objects.path(for: sha256)).sha256
            return actual == sha256
                ? nil
                : "corrupt .mlops/cache/objects/\(sha256.prefix(12)): the stored copy of \(path) no longer matches"
        }
        guard !workspace.repository.isBare, FileSystem.exists(workspace.absolute(path)) else {
            return
                "unverifiable \(path): no copy of the \(section) here (not in the pushed commit, the object store or the work tree)"
        }
        let record: JSONValue = item ?? .object(["path": .string(path), "sha256": .string(sha256)])
        let findings = try Verifier(workspace: workspace).check([record], section: section)
        return findings.first(where: \.isProblem).map { "\($0.state) \($0.subject)" }
    }
}
