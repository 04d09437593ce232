import GitMLBasics
import GitMLStore

/// One finding of `verify` or `fsck`.
public struct Finding: Sendable {
    /// What the finding is about: a data path, an artifact, a record file.
    public var subject: String
    /// "ok", "modified", "missing", "added", "corrupt", "dangling", "invalid", "unexpected".
    public var state: String
    /// The recorded digest, when there is one.
    public var recorded: String?
    /// The digest found now, when there is one.
    public var actual: String?
    /// A sentence for the user.
    public var detail: String

    public init(subject: String, state: String, recorded: String?, actual: String?, detail: String) {
        self.subject = subject
        self.state = state
        self.recorded = recorded
        self.actual = actual
        self.detail = detail
    }

    /// True for anything but "ok".
    public var isProblem: Bool { state != "ok" }

    public var json: JSONValue {
        .object([
            "subject": .string(subject), "state": .string(state), "recorded": recorded.map(JSONValue.string) ?? .null,
            "actual": actual.map(JSONValue.string) ?? .null, "detail": .string(detail),
        ])
    }
}

/// Re-hashes a run's data and artifacts and compares them with its record, naming each file that differs.
public struct Verifier {
    let workspace: Workspace
    let progress: (@Sendable (HashProgress) -> Void)?

    /// How a missing artifact's finding ends when the store has no copy of it either.
    public static let noStoredCopy = " (and no stored copy is here)"

    public init(workspace: Workspace, progress: (@Sendable (HashProgress) -> Void)? = nil) {
        self.workspace = workspace
        self.progress = progress
    }

    /// Findings for run `id` (its record's own integrity first).
    public func verify(_ id: String) throws -> [Finding] {
        let record = ".mlops/runs/\(id).json"
        let run: StoredRun
        do { run = try RunStore(workspace: workspace).read(id) } catch let error as LineageError {
            return [Finding(subject: record, state: "corrupt", recorded: id, actual: nil, detail: error.message)]
        } catch let error as InputError {
            return [Finding(subject: record, state: "corrupt", recorded: id, actual: nil, detail: error.message)]
        }
        // The subject names the file; findings print as "<state> <subject>: <detail>".
        var findings = [Finding(subject: record, state: "ok", recorded: id, actual: id, detail: "record intact")]
        findings += try check(run.data, section: "data")
        findings += try check(run.artifacts, section: "artifact")
        if try workspace.config.get().hardLinkArtifacts {
            // Hard-linked copies share the work tree file's inode: a write there reaches the store too.
            for item in run.artifacts where item["type"]?.string == "file" {
                guard let digest = item["sha256"]?.string, let path = item["path"]?.string,
                    workspace.objects.contains(digest)
                else { continue }
                findings.append(
                    checkContentAddressed(
                        workspace.objects.path(for: digest),
                        subject: ".mlops/cache/objects/\(digest.prefix(12)) (\(path))",
                        digest: digest))
            }
        }
        if let patch = run.record["git"]?["patch"]?.string {
            findings.append(
                checkContentAddressed(
                    "\(workspace.patchesDirectory)/\(patch)", subject: ".mlops/patches/\(patch)", digest: patch))
        }
        return findings
    }

    /// Findings for recorded data or artifact pointers (`section` is "data" or "artifact"), every byte re-read.
    public func check(_ items: [JSONValue], section: String) throws -> [Finding] {
        var findings: [Finding] = []
        let hasher = DataHasher(workspace: workspace, useCache: false, writeManifests: false, progress: progress)
        for item in items {
            guard let path = item["path"]?.string else { continue }
            if item["missing"]?.bool == true { continue }
            let recorded = item["sha256"]?.string ?? ""
            guard FileSystem.exists(workspace.absolute(path)) else {
                findings.append(
                    Finding(
                        subject: path, state: "missing", recorded: recorded, actual: nil,
                        detail: "\(section) \(path) is missing"
                            + storedCopyNote(section, recorded)))
                continue
            }
            let now = try hasher.hash([path])[0]
            if now.sha256 == recorded {
                findings.append(
                    Finding(
                        subject: path, state: "ok", recorded: recorded, actual: now.sha256, detail: "\(section) matches"
                    ))
            } else if item["type"]?.string == "directory" {
                findings += try compareDirectory(path, recorded: recorded, now: now, section: section)
            } else {
                findings.append(
                    Finding(
                        subject: path, state: "modified", recorded: recorded, actual: now.sha256,
                        detail: "\(section) \(path) has changed since the run" + storedCopyNote(section, recorded)))
            }
        }
        return findings
    }

    private func storedCopyNote(_ section: String, _ digest: String) -> String {
        guard section == "artifact" else { return "" }
        return workspace.objects.contains(digest)
            ? " (the recorded bytes are in .mlops/cache/objects/\(digest.prefix(12)))" : Self.noStoredCopy
    }

    private func compareDirectory(_ path: String, recorded: String, now: DataPointer, section: String) throws
        -> [Finding]
    {
        guard try workspace.files.exists(".mlops/manifests/\(recorded)") else {
            return [
                Finding(
                    subject: path, state: "modified", recorded: recorded, actual: now.sha256,
                    detail:
                        "\(section) directory \(path) has changed (its manifest .mlops/manifests/\(recorded.prefix(12)) is missing, so files cannot be named)"
                )
            ]
        }
        let old = try Manifest.stored(recorded, in: workspace)
        let before = Dictionary(old.entries.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary((now.manifest?.entries ?? []).map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var findings: [Finding] = []
        for (name, entry) in before.sorted(by: { $0.key < $1.key }) {
            let full = path.isEmpty ? name : path + "/" + name
            if let current = after[name] {
                if current.sha256 != entry.sha256 {
                    findings.append(
                        Finding(
                            subject: full, state: "modified", recorded: entry.sha256, actual: current.sha256,
                            detail: "\(full) has changed since the run"))
                }
            } else {
                findings.append(
                    Finding(
                        subject: full, state: "missing", recorded: entry.sha256, actual: nil,
                        detail: "\(full) is missing"))
            }
        }
        for (name, entry) in after.sorted(by: { $0.key < $1.key }) where before[name] == nil {
            let full = path.isEmpty ? name : path + "/" + name
            findings.append(
                Finding(
                    subject: full, state: "added", recorded: nil, actual: entry.sha256,
                    detail: "\(full) was added after the run"))
        }
        return findings
    }

    func checkContentAddressed(_ absolute: String, subject: String, digest: String) -> Finding {
        guard FileSystem.exists(absolute) else {
            return Finding(
                subject: subject, state: "dangling", recorded: digest, actual: nil,
                detail: "\(subject) is referenced but missing")
        }
        let actual = (try? FileHasher().hash(path: absolute).sha256) ?? "unreadable"
        return actual == digest
            ? Finding(subject: subject, state: "ok", recorded: digest, actual: actual, detail: "intact")
            : Finding(
                subject: subject, state: "corrupt", recorded: digest, actual: actual,
                detail: "\(subject) does not match its name")
    }
}
