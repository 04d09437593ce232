import Foundation
import GitMLBasics
import GitMLLineage
import GitMLRegistry
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// The remotes in `.mlops/config.yaml`, and adding one.
public enum Remotes {
    /// The named remote (or the default one) and its reference.
    public static func resolve(_ name: String?, config: Config) throws -> (name: String, reference: OCIReference) {
        guard let name = name ?? config.defaultRemote else {
            throw RemoteError.unknownRemote(name ?? "the default", known: config.remotes.keys.sorted())
        }
        guard let settings = config.remotes[name] else {
            throw RemoteError.unknownRemote(name, known: config.remotes.keys.sorted())
        }
        return (name, try OCIReference(url: settings.url, insecure: settings.insecureHTTP))
    }

    /// Adds a remote to config.yaml, keeping the file's comments: a `remotes:` block gets one more entry (or is
    /// written at the end). The file is read, checked, and replaced atomically under the registry's lock.
    public static func add(name: String, url: String, insecure: Bool, workspace: Workspace) throws {
        guard Config.isRemoteName(name) else {
            throw RemoteError.badURL(name, detail: "a remote's name is letters, digits, . _ and - (like origin)")
        }
        _ = try OCIReference(url: url, insecure: insecure)
        let relative = ".mlops/config.yaml"
        let path = try workspace.files.checked(relative)
        let lock = try FileLock(workspace.cacheDirectory + "/config.lock")
        defer { _ = lock }
        let bytes = FileSystem.exists(path) ? try AtomicFile.read(path, limit: 1 << 20) : []
        let config = try Config.parse(bytes)
        if config.remotes[name] != nil { throw RemoteError.remoteExists(name) }
        var lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let entry = ["  \(name):", "    url: \(url)"] + (insecure ? ["    insecure_http: true"] : [])
        if let start = lines.firstIndex(where: { $0.hasPrefix("remotes:") }) {
            // `remotes: {}` (or nothing after the colon but a comment) becomes a block.
            let rest = lines[start].dropFirst("remotes:".count).trimmingCharacters(in: .whitespaces)
            if !rest.isEmpty && !rest.hasPrefix("#") {
                guard rest == "{}" else {
                    throw InputError.malformed(
                        source: relative, detail: "remotes is written inline; write it as a block to add a remote")
                }
                lines[start] = "remotes:"
            }
            var end = start + 1
            while end < lines.count, lines[end].isEmpty || lines[end].hasPrefix(" ") || lines[end].hasPrefix("#") {
                end += 1
            }
            // After the block's last entry line, before any blank or comment lines that close it.
            while end > start + 1,
                lines[end - 1].trimmingCharacters(in: .whitespaces).isEmpty || lines[end - 1].hasPrefix("#")
            {
                end -= 1
            }
            lines.insert(contentsOf: entry, at: end)
        } else {
            if let last = lines.last, !last.isEmpty { lines.append("") }
            lines += ["# Where git ml push and git ml pull send and fetch artifacts (docs/commands/remote.md)."]
            lines += ["remotes:"] + entry
        }
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        let updated = try Config.parse(text)
        guard updated.remotes[name] == Config.RemoteSettings(url: url, insecureHTTP: insecure) else {
            throw InputError.malformed(source: relative, detail: "could not add the remote to this file's layout")
        }
        try AtomicFile.write(text, to: path)
        // Adding a remote is consent to use it from this clone (remote.push_on_git_push).
        if let sync = try? RemoteSync(workspace: workspace, remote: name, credentials: CredentialSource()) {
            sync.markTrusted()
        }
    }
}

/// What happened to one package on push or pull.
public struct TransferReport: Sendable {
    public var title: String
    public var tag: String
    /// "pushed", "up to date", "pulled", "present".
    public var state: String
    public var sent = 0
    public var skipped = 0
    public var mounted = 0
    public var bytes: Int64 = 0
    public var manifest = ""

    public var json: JSONValue {
        .object([
            "title": .string(title), "tag": .string(tag), "state": .string(state), "blobs_sent": .int(Int64(sent)),
            "blobs_skipped": .int(Int64(skipped)), "blobs_mounted": .int(Int64(mounted)), "bytes": .int(bytes),
            "manifest": manifest.isEmpty ? .null : .string("sha256:" + manifest),
        ])
    }
}

/// Where each package is: all of its objects here, its manifest on the remote.
public struct RemoteStatus: Sendable {
    public var title: String
    public var tag: String
    public var local: Bool
    public var remote: Bool
    public var missingLocally: Int

    public var json: JSONValue {
        .object([
            "title": .string(title), "tag": .string(tag), "local": .bool(local), "remote": .bool(remote),
            "missing_locally": .int(Int64(missingLocally)),
        ])
    }
}

/// Pushing, pulling and comparing packages with one remote.
public final class RemoteSync: @unchecked Sendable {
    public let workspace: Workspace
    public let remoteName: String
    public let session: RegistrySession
    /// Requests in flight at once for many small blobs.
    public var concurrency = 8
    public var progress: (@Sendable (HashProgress) -> Void)?
    private let config: Config

    public init(workspace: Workspace, remote: String?, credentials: CredentialSource) throws {
        self.workspace = workspace
        config = try workspace.config.get()
        let (name, reference) = try Remotes.resolve(remote, config: config)
        remoteName = name
        session = RegistrySession(reference: reference, credentials: credentials)
    }

    /// The packages `targets` name: `model@version` (or `@stage`), a whole model, a run id (or prefix); none: every
    /// model version; `all`: every version and every run with stored artifacts.
    public func packages(_ targets: [String], all: Bool) throws -> [Package] {
        let registry = Registry(source: WorkTreeSource(workspace: workspace))
        var packages: [Package] = []
        if targets.isEmpty {
            for name in try registry.modelNames() {
                for number in try registry.model(name).versions.keys.sorted() {
                    packages.append(try Package.version(name, number, workspace: workspace))
                }
            }
            if all {
                let runs = RunStore(workspace: workspace)
                for id in runs.ids() {
                    let package = try Package.run(id, workspace: workspace)
                    if !package.artifacts.isEmpty { packages.append(package) }
                }
            }
            return packages
        }
        for target in targets {
            let (name, reference) = Registry.split(target)
            if let reference {
                let state = try registry.model(name)
                packages.append(try Package.version(name, try state.resolve(reference), workspace: workspace))
            } else if (try? registry.modelNames().contains(name)) == true {
                for number in try registry.model(name).versions.keys.sorted() {
                    packages.append(try Package.version(name, number, workspace: workspace))
                }
            } else {
                packages.append(
                    try Package.run(try RunStore(workspace: workspace).resolve(target), workspace: workspace))
            }
        }
        return packages
    }

    /// What the pre-push hook does when `remote.push_on_git_push` is set (as git-lfs pushes objects before git's
    /// push goes on): every model version to the default remote; nil when the setting is off.
    /// Only to a remote this machine has used (`git ml remote add` or `git ml push`, recorded in the repository's
    /// own `.git/config`): a committed config.yaml, which whoever pushed chose, cannot send every model to a
    /// registry of theirs on the next `git push`. Otherwise `skipped` says why nothing was sent.
    public static func pushForGitPush(workspace: Workspace, credentials: CredentialSource) throws -> (
        remote: String, reports: [TransferReport], skipped: String?
    )? {
        guard (try? workspace.files.isDirectory(".mlops")) == true, try workspace.config.get().pushOnGitPush else {
            return nil
        }
        // A committed setting that names no usable remote does not block everyone's git push: it is reported.
        let sync: RemoteSync
        do { sync = try RemoteSync(workspace: workspace, remote: nil, credentials: credentials) } catch let error
            as GitMLError
        {
            return ("", [], "not pushing artifacts: \(error.message)")
        }
        guard sync.isTrusted else {
            return (
                sync.remoteName, [],
                "not pushing artifacts to \(sync.session.reference.url): this clone has not used that remote; "
                    + "run git ml push \(sync.remoteName) once to send them and trust it"
            )
        }
        return (sync.remoteName, try sync.push(try sync.packages([], all: false)), nil)
    }

    /// The git config key that lists the remote URLs this clone has used.
    static let trustKey = "gitml.trustedremote"

    /// Whether this clone's user has pushed to (or added) this remote's URL.
    var isTrusted: Bool {
        workspace.repository.config.all(Self.trustKey).contains(session.reference.url)
    }

    /// Records in `.git/config` (never committed) that this clone uses the remote.
    func markTrusted() {
        guard !isTrusted, let git = Executable.find("git", path: ProcessInfo.processInfo.environment["PATH"]) else {
            return
        }
        _ = try? ChildProcess.run(
            executable: git,
            arguments: [
                "git", "--git-dir=\(workspace.repository.gitDirectory)", "config", "--local", "--add", Self.trustKey,
                session.reference.url,
            ],
            environment: ProcessInfo.processInfo.environment, directory: nil, echo: .none)
    }

    private var mountSource: String? {
        // Another remote in the same registry: blobs it has are mounted, not sent.
        config.remotes.filter { $0.key != remoteName }.compactMap { _, settings -> String? in
            guard let other = try? OCIReference(url: settings.url, insecure: settings.insecureHTTP),
                other.host == session.reference.host, other.repository != session.reference.repository
            else { return nil }
            return other.repository
        }.sorted().first
    }

    /// Uploads what the remote lacks, then each manifest; a package whose tag already names the same manifest
    /// sends nothing, and a tag naming another manifest (another lineage's churn@4) is left alone unless `force`.
    /// Objects missing here that the remote lacks too stop the push before a byte is sent.
    public func push(_ packages: [Package], force: Bool = false) throws -> [TransferReport] {
        let client = try RegistryClient(session: session)
        var reports: [TransferReport] = []
        var pending: [(Int, Package)] = []
        for package in packages {
            let manifest = try SHA256.hex(of: package.manifestBytes)
            var report = TransferReport(title: package.title, tag: package.tag, state: "up to date")
            report.manifest = manifest
            let there = try client.manifestDigest(package.tag)
            if there == manifest {
                report.skipped = package.blobs.count
            } else {
                if let there, !force {
                    throw RemoteError.tagTaken(
                        tag: package.tag, title: package.title, remote: remoteName, digest: there)
                }
                report.state = "pushed"
                pending.append((reports.count, package))
            }
            reports.append(report)
        }
        // Each blob once, however many packages hold it.
        var blobs: [Blob] = []
        var owners: [String: [Int]] = [:]
        for (index, package) in pending {
            for blob in package.blobs {
                if owners[blob.digest] == nil { blobs.append(blob) }
                owners[blob.digest, default: []].append(index)
            }
        }
        // What is not here must be there already.
        var missing: [String] = []
        for blob in blobs {
            guard case .file(let path) = blob.source, access(path, R_OK) != 0 else { continue }
            if try client.blobSize(blob.digest) == nil { missing.append(blob.digest) }
        }
        if !missing.isEmpty {
            let titles = pending.filter { $0.1.blobs.contains { missing.contains($0.digest) } }.map(\.1.title)
            throw RemoteError.notLocal(what: titles.joined(separator: ", "), missing: missing)
        }
        markTrusted()
        let mount = mountSource
        let tracker = ProgressTracker(
            files: blobs.count, bytes: Package.total(blobs), verb: "pushing", report: progress)
        let session = self.session
        let toSend = blobs
        let results = try Parallel.mapWaiting(
            count: toSend.count, workers: concurrency, state: { try RegistryClient(session: session) }
        ) { client, index -> RegistryClient.Upload in
            let blob = toSend[index]
            defer { tracker.add(bytes: blob.size, fileDone: true) }
            switch blob.source {
            case .file(let path):
                if access(path, R_OK) != 0 { return .present }  // checked above: the remote has it
                return try client.upload(blob.digest, path: path, size: blob.size, mountFrom: mount)
            case .bytes(let bytes):
                return try client.upload(blob.digest, bytes: bytes, mountFrom: mount)
            }
        }
        tracker.finish()
        for (blob, result) in zip(blobs, results) {
            for index in Set(owners[blob.digest] ?? []) {
                switch result {
                case .present: reports[index].skipped += 1
                case .mounted: reports[index].mounted += 1
                case .sent:
                    reports[index].sent += 1
                    reports[index].bytes = min(Package.maxSize, reports[index].bytes + blob.size)
                }
            }
        }
        for (index, package) in pending {
            reports[index].manifest = try client.putManifest(package.manifestBytes, tag: package.tag)
        }
        return reports
    }

    /// Fetches the objects a package lacks here, each re-hashed before it takes its name. The remote manifest must
    /// agree with the local lineage on every artifact's digest and size, or nothing is fetched.
    public func pull(_ packages: [Package]) throws -> [TransferReport] {
        let client = try RegistryClient(session: session)
        var reports: [TransferReport] = []
        var wanted: [Blob] = []
        var owners: [String: [Int]] = [:]
        for package in packages {
            var report = TransferReport(title: package.title, tag: package.tag, state: "present")
            let missing = lacking(package.artifacts)
            report.skipped = package.artifacts.count - missing.count
            if !missing.isEmpty {
                guard let bytes = try client.manifest(package.tag) else {
                    throw RemoteError.notOnRemote(what: "\(package.title) (\(package.tag))", remote: remoteName)
                }
                try Self.check(remote: bytes, against: package)
                report.manifest = try SHA256.hex(of: bytes)
                report.state = "pulled"
                for blob in missing {
                    if owners[blob.digest] == nil { wanted.append(blob) }
                    owners[blob.digest, default: []].append(reports.count)
                }
            }
            reports.append(report)
        }
        try fetch(wanted)
        for blob in wanted {
            for index in Set(owners[blob.digest] ?? []) {
                reports[index].sent += 1
                reports[index].bytes = min(Package.maxSize, reports[index].bytes + blob.size)
            }
        }
        return reports
    }

    /// Fetches the recorded artifacts of run `id` that are not stored here, by digest (whatever tag carried them),
    /// each verified as `pull` verifies; returns how many were fetched. For `reproduce`, so an auditor's clone has
    /// the recorded bytes to compare the re-made ones with.
    public func fetchArtifacts(ofRun id: String) throws -> Int {
        let wanted = lacking(
            try Package.run(id, workspace: workspace).artifacts.filter { $0.mediaType == MediaType.weight })
        try fetch(wanted)
        return wanted.count
    }

    /// The blobs not stored here, or stored with another size than the recorded one (damaged: fetched again, and
    /// replaced).
    private func lacking(_ blobs: [Blob]) -> [Blob] {
        blobs.filter { (try? Package.fileSize(workspace.objects.path(for: $0.digest))) != $0.size }
    }

    /// Downloads each blob into the store, eight at a time, each verified before it takes its name.
    private func fetch(_ blobs: [Blob]) throws {
        guard !blobs.isEmpty else { return }
        let store = workspace.objects
        store.removeAbandonedTemporaries()
        let tracker = ProgressTracker(
            files: blobs.count, bytes: Package.total(blobs), verb: "pulling", report: progress)
        let session = self.session
        _ = try Parallel.mapWaiting(
            count: blobs.count, workers: concurrency, state: { try RegistryClient(session: session) }
        ) { client, index -> Int64 in
            defer { tracker.add(bytes: blobs[index].size, fileDone: true) }
            return try client.download(blobs[index].digest, size: blobs[index].size, into: store)
        }
        tracker.finish()
    }

    /// Each package: its objects all here, its tag on the remote.
    public func status(_ packages: [Package]) throws -> [RemoteStatus] {
        let client = try RegistryClient(session: session)
        return try packages.map { package in
            let missing = lacking(package.artifacts).count
            let remote = try client.manifestDigest(package.tag) != nil
            return RemoteStatus(
                title: package.title, tag: package.tag, local: missing == 0, remote: remote, missingLocally: missing)
        }
    }

    /// Whether the remote has each of these blobs (for `verify`'s "not local; on remote origin").
    public func remoteHas(_ digests: [String]) throws -> Set<String> {
        let client = try RegistryClient(session: session)
        var found = Set<String>()
        for digest in digests where try client.blobSize(digest) != nil { found.insert(digest) }
        return found
    }

    /// `verify`'s findings, with each artifact that is missing here and has no stored copy said to be on the remote
    /// when it is there. Findings stay as they are when the remote cannot be asked.
    public func annotate(_ findings: [Finding]) -> [Finding] {
        let missing = findings.filter {
            $0.state == "missing" && $0.detail.hasSuffix(Verifier.noStoredCopy)
        }.compactMap { $0.recorded }.filter { SHA256.isDigest($0) }
        guard !missing.isEmpty, let found = try? remoteHas(Array(Set(missing)).sorted()) else { return findings }
        return findings.map { finding in
            guard finding.state == "missing", let digest = finding.recorded, found.contains(digest) else {
                return finding
            }
            var annotated = finding
            annotated.detail =
                String(finding.detail.dropLast(Verifier.noStoredCopy.count))
                + " (not local; on remote \(remoteName): git ml pull)"
            return annotated
        }
    }

    /// The remote manifest lists every artifact of the local package with the same digest and size.
    static func check(remote bytes: [UInt8], against package: Package) throws {
        guard let manifest = try? JSONParser.parse(bytes, source: "manifest \(package.tag)"),
            let layers = manifest["layers"]?.array
        else {
            throw RemoteError.manifestDisagrees(tag: package.tag, detail: "it is not an OCI image manifest")
        }
        var sizes: [String: Int64] = [:]
        for layer in layers {
            guard let digest = layer["digest"]?.string, digest.hasPrefix("sha256:"), let size = layer["size"]?.number,
                size >= 0, size <= 9e15
            else { continue }
            sizes[String(digest.dropFirst("sha256:".count))] = Int64(size)
        }
        for artifact in package.artifacts {
            guard let size = sizes[artifact.digest] else {
                throw RemoteError.manifestDisagrees(
                    tag: package.tag,
                    detail: "\(artifact.path ?? artifact.digest) (sha256 \(artifact.digest.prefix(12))) is not in it")
            }
            guard size == artifact.size else {
                throw RemoteError.manifestDisagrees(
                    tag: package.tag,
                    detail:
                        "\(artifact.path ?? artifact.digest) is \(size) bytes there, \(artifact.size) in the lineage")
            }
        }
    }
}
