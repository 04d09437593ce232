import GitMLBasics
import GitMLStore

/// Checks the whole `.mlops` store: every content-addressed file matches its name, every record parses and
/// follows the schema, and every reference (patch, manifest, parent run) resolves.
public struct Fsck {
    let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Problems only (an empty list means the store is sound), plus how many files were checked.
    public func check() throws -> (problems: [Finding], checked: Int) {
        var problems: [Finding] = []
        var checked = 0
        let verifier = Verifier(workspace: workspace)
        let store = RunStore(workspace: workspace)
        let runIDs = Set(store.ids())
        for name in FileSystem.list(workspace.runsDirectory).sorted() {
            let subject = ".mlops/runs/\(name)"
            if Self.isTemporary(name) { continue }
            guard name.hasSuffix(".json"), SHA256.isDigest(name.dropLast(5)) else {
                problems.append(
                    Finding(
                        subject: subject, state: "unexpected", recorded: nil, actual: nil,
                        detail: "\(subject) is not named <sha256>.json"))
                continue
            }
            checked += 1
            let id = String(name.dropLast(5))
            let run: StoredRun
            do { run = try store.read(id) } catch let error as GitMLError {
                problems.append(
                    Finding(subject: subject, state: "corrupt", recorded: id, actual: nil, detail: error.message))
                continue
            }
            if let patch = run.record["git"]?["patch"]?.string {
                let finding = verifier.checkContentAddressed(
                    "\(workspace.patchesDirectory)/\(patch)", subject: ".mlops/patches/\(patch)", digest: patch)
                if finding.isProblem {
                    problems.append(
                        Finding(
                            subject: subject, state: finding.state, recorded: patch, actual: finding.actual,
                            detail: "\(subject): \(finding.detail)"))
                }
            }
            for item in run.data + run.artifacts where item["type"]?.string == "directory" {
                guard let digest = item["sha256"]?.string else { continue }
                if !FileSystem.exists("\(workspace.manifestsDirectory)/\(digest)") {
                    problems.append(
                        Finding(
                            subject: subject, state: "dangling", recorded: digest, actual: nil,
                            detail:
                                "\(subject): manifest .mlops/manifests/\(digest) of \(item["path"]?.string ?? "?") is missing"
                        ))
                }
            }
            for profile in run.record["profiles"]?.array ?? [] {
                guard let digest = profile["sha256"]?.string,
                    !FileSystem.exists("\(workspace.profilesDirectory)/\(digest).json")
                else { continue }
                problems.append(
                    Finding(
                        subject: subject, state: "dangling", recorded: digest, actual: nil,
                        detail:
                            "\(subject): profile .mlops/profiles/\(digest.prefix(12)).json of \(profile["path"]?.string ?? "?") is missing"
                    ))
            }
            for parent in run.record["parents"]?.array?.compactMap(\.string) ?? [] where !runIDs.contains(parent) {
                problems.append(
                    Finding(
                        subject: subject, state: "dangling", recorded: parent, actual: nil,
                        detail: "\(subject): parent run \(parent.prefix(12)) does not exist"))
            }
        }
        let stores = [
            (workspace.manifestsDirectory, ".mlops/manifests", ""), (workspace.patchesDirectory, ".mlops/patches", ""),
            (workspace.profilesDirectory, ".mlops/profiles", ".json"),
            (workspace.objects.directory, ".mlops/cache/objects", ""),
        ]
        for (directory, label, suffix) in stores {
            for file in FileSystem.list(directory).sorted() where !Self.isTemporary(file) {
                let subject = "\(label)/\(file)"
                let name = file.hasSuffix(suffix) ? String(file.dropLast(suffix.count)) : file
                guard SHA256.isDigest(name) else {
                    problems.append(
                        Finding(
                            subject: subject, state: "unexpected", recorded: nil, actual: nil,
                            detail: "\(subject) is not named by a sha256"))
                    continue
                }
                checked += 1
                let finding = verifier.checkContentAddressed("\(directory)/\(file)", subject: subject, digest: name)
                if finding.isProblem {
                    problems.append(finding)
                } else if label == ".mlops/profiles" {
                    // A profile is read field by field (drift relies on it): one that is not valid is a problem too.
                    do { _ = try ProfileStore(workspace: workspace).read(id: name) } catch let error as GitMLError {
                        problems.append(
                            Finding(
                                subject: subject, state: "invalid", recorded: name, actual: nil, detail: error.message))
                    }
                }
            }
        }
        return (problems, checked)
    }

    /// Temporary files an interrupted write leaves (`.<name>.tmp-<pid>-<n>`): ignored by git and by fsck.
    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.contains(".tmp-") }
}
