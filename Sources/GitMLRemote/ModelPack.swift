import GitMLBasics
import GitMLLineage
import GitMLRegistry
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// The media types git-ml pushes (docs/format.md, "On a remote"): CNCF ModelPack for the model, its own for lineage.
public enum MediaType {
    public static let artifact = "application/vnd.oci.image.manifest.v1+json"
    public static let modelManifest = "application/vnd.cncf.model.manifest.v1+json"
    public static let modelConfig = "application/vnd.cncf.model.config.v1+json"
    /// An artifact's bytes, untarred: the layer digest is git-ml's sha256 of the file.
    public static let weight = "application/vnd.cncf.model.weight.v1.raw"
    public static let run = "application/vnd.gitml.run.v1+json"
    public static let version = "application/vnd.gitml.model.version.v1+json"
    public static let log = "application/vnd.gitml.run.log.v1"
}

/// Where a blob's bytes are read from when it is pushed.
public enum BlobSource: Sendable {
    case file(String)
    case bytes([UInt8])
}

/// One blob of a package.
public struct Blob: Sendable {
    public let mediaType: String
    public let digest: String
    public let size: Int64
    /// The recorded path, for artifacts (a layer annotation); nil for lineage blobs.
    public let path: String?
    public let source: BlobSource
}

/// What one manifest holds: a model version (tag `<model>-v<N>`) or a run (tag `run-<id>`), with its config blob
/// and layers, laid out so the same lineage always gives the same manifest bytes (a second push sends nothing).
public struct Package: Sendable {
    public let tag: String
    /// How messages name it: churn@3, run 95af1af3fa5d.
    public let title: String
    public let config: Blob
    public let layers: [Blob]
    public let annotations: [String: String]

    /// The artifacts: layers whose bytes live in `.mlops/cache/objects`.
    public var artifacts: [Blob] { layers.filter { $0.mediaType == MediaType.weight || $0.mediaType == MediaType.log } }

    /// The manifest exactly as pushed: compact JSON, keys sorted.
    public var manifestBytes: [UInt8] {
        func descriptor(_ blob: Blob) -> JSONValue {
            var members: [String: JSONValue] = [
                "mediaType": .string(blob.mediaType), "digest": .string("sha256:" + blob.digest),
                "size": .int(blob.size),
            ]
            if let path = blob.path {
                members["annotations"] = .object([
                    "org.cncf.model.filepath": .string(path), "org.opencontainers.image.title": .string(path),
                ])
            }
            return .object(members)
        }
        let manifest: JSONValue = .object([
            "schemaVersion": .int(2), "mediaType": .string(MediaType.artifact),
            "artifactType": .string(MediaType.modelManifest), "config": descriptor(config),
            "layers": .array(layers.map(descriptor)),
            "annotations": .object(annotations.mapValues { .string($0) }),
        ])
        return Array(JSONWriter.compact(manifest).utf8)
    }

    /// The blobs to push: config first, then the layers.
    public var blobs: [Blob] { [config] + layers }

    /// A model version: its artifacts (a directory artifact as one layer per file), the run record and the
    /// version file. Annotations name model, version, run and commit.
    public static func version(_ name: String, _ number: Int, workspace: Workspace) throws -> Package {
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(name)
        guard let version = state.versions[number]?.file else {
            throw RegistryError.versionNotFound(
                model: name, reference: String(number), known: state.versions.keys.sorted().map(String.init))
        }
        let versionPath = ModelVersion.path(model: name, version: number)
        let versionBytes = try AtomicFile.read(try workspace.files.checked(versionPath), limit: 16 << 20)
        let run = try RunStore(workspace: workspace).read(version.run)
        var layers: [Blob] = []
        for artifact in version.artifacts {
            guard artifact.size <= maxSize else {
                throw RemoteError.manifestDisagrees(
                    tag: "\(name)-v\(number)",
                    detail: "\(artifact.path) records \(artifact.size) bytes, more than any file")
            }
            layers += try artifactLayers(
                path: artifact.path, sha256: artifact.sha256, size: artifact.size,
                type: run.artifacts.first { $0["path"]?.string == artifact.path }?["type"]?.string ?? "file",
                workspace: workspace)
        }
        layers.append(
            Blob(
                mediaType: MediaType.run, digest: run.id, size: Int64(run.bytes.count), path: nil,
                source: .bytes(run.bytes)))
        layers.append(
            Blob(
                mediaType: MediaType.version, digest: try SHA256.hex(of: versionBytes), size: Int64(versionBytes.count),
                path: nil, source: .bytes(versionBytes)))
        let commit = run.record["git"]?["commit"]?.string ?? ""
        return try make(
            tag: "\(name)-v\(number)", title: "\(name)@\(number)", name: name, version: String(number),
            commit: commit, created: version.created, run: run.id, layers: layers)
    }

    /// A run: its stored artifacts, its logs when they are stored, and the record.
    public static func run(_ id: String, workspace: Workspace) throws -> Package {
        let run = try RunStore(workspace: workspace).read(id)
        var layers: [Blob] = []
        for artifact in run.artifacts where artifact["stored"]?.bool == true {
            guard let path = artifact["path"]?.string, let sha256 = artifact["sha256"]?.string, SHA256.isDigest(sha256)
            else { continue }
            guard let size = artifact["size"]?.integer(in: 0...Package.maxSize) else {
                throw RemoteError.notLocal(
                    what: "run \(id.prefix(12)): artifact \(path) records no usable size", missing: [])
            }
            layers += try artifactLayers(
                path: path, sha256: sha256, size: size, type: artifact["type"]?.string ?? "file", workspace: workspace)
        }
        for stream in ["stdout", "stderr"] {
            guard let digest = run.record["command"]?[stream]?["sha256"]?.string, SHA256.isDigest(digest),
                workspace.objects.contains(digest)
            else { continue }
            layers.append(
                Blob(
                    mediaType: MediaType.log, digest: digest, size: try fileSize(workspace.objects.path(for: digest)),
                    path: stream, source: .file(workspace.objects.path(for: digest))))
        }
        layers.append(
            Blob(
                mediaType: MediaType.run, digest: run.id, size: Int64(run.bytes.count), path: nil,
                source: .bytes(run.bytes)))
        return try make(
            tag: "run-\(run.id)", title: "run \(run.id.prefix(12))", name: "run-\(run.id.prefix(12))", version: run.id,
            commit: run.record["git"]?["commit"]?.string ?? "", created: run.created, run: run.id, layers: layers)
    }

    /// A file artifact is one layer; a directory one layer per file of its manifest (`.mlops/manifests`).
    static func artifactLayers(path: String, sha256: String, size: Int64, type: String, workspace: Workspace) throws
        -> [Blob]
    {
        guard type == "directory" else {
            return [
                Blob(
                    mediaType: MediaType.weight, digest: sha256, size: size, path: path,
                    source: .file(workspace.objects.path(for: sha256)))
            ]
        }
        return try Manifest.stored(sha256, in: workspace).entries.filter { $0.type == "f" }.map { entry in
            Blob(
                mediaType: MediaType.weight, digest: entry.sha256, size: entry.size, path: path + "/" + entry.path,
                source: .file(workspace.objects.path(for: entry.sha256)))
        }
    }

    private static func make(
        tag: String, title: String, name: String, version: String, commit: String, created: String, run: String,
        layers: [Blob]
    ) throws -> Package {
        // Several paths may share bytes: one layer per digest (a manifest lists a blob once).
        var seen = Set<String>()
        let layers = layers.filter { seen.insert($0.digest).inserted }
        let weights = layers.filter { $0.mediaType == MediaType.weight }.map { JSONValue.string("sha256:" + $0.digest) }
        let config: JSONValue = .object([
            "descriptor": .object([
                "name": .string(name), "version": .string(version), "revision": .string(commit),
                "createdAt": .string(created),
            ]),
            "modelfs": .object(["type": .string("layers"), "diffIds": .array(weights)]),
            "config": .object([:]),
        ])
        let configBytes = Array(JSONWriter.compact(config).utf8)
        var annotations = [
            "org.opencontainers.image.revision": commit, "org.opencontainers.image.created": created,
            "dev.git-ml.run": run,
        ]
        if !tag.hasPrefix("run-") {
            annotations["dev.git-ml.model"] = name
            annotations["dev.git-ml.version"] = version
        }
        guard OCIReference.isTag(tag) else {
            throw RemoteError.badURL(tag, detail: "is not a valid OCI tag (letters, digits, . _ -; at most 128)")
        }
        return Package(
            tag: tag, title: title,
            config: Blob(
                mediaType: MediaType.modelConfig, digest: try SHA256.hex(of: configBytes),
                size: Int64(configBytes.count), path: nil, source: .bytes(configBytes)),
            layers: layers, annotations: annotations)
    }

    /// The largest blob size believed (2^53: exact in a JSON number; far past any model).
    public static let maxSize: Int64 = 1 << 53

    /// Sums sizes without overflowing (every size is at most `maxSize`; a sum past it is reported as it).
    static func total(_ blobs: [Blob]) -> Int64 {
        blobs.reduce(Int64(0)) { min(maxSize, $0 + min(maxSize, max(0, $1.size))) }
    }

    static func fileSize(_ path: String) throws -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StoreError("stat", path: path) }
        return Int64(info.st_size)
    }
}
