import Foundation
import GitMLBasics
import GitMLLineage
import GitMLRegistry
import GitMLStore

/// Everything a card shows, gathered from the registry, the run records and `card.yaml`, and turned into the
/// template's context (plain values: the template escapes them).
struct CardFacts {
    let model: String
    let version: Int
    let state: ModelState
    let entry: ModelState.VersionState
    let run: StoredRun
    let champion: (version: Int, run: StoredRun)?
    let card: [String: [String]]
    let cardYAMLDigest: String

    init(workspace: Workspace, model: String, reference: String) throws {
        let state = try Registry(source: WorkTreeSource(workspace: workspace)).model(model)
        try self.init(workspace: workspace, state: state, version: try state.resolve(reference))
    }

    /// The facts of one version of an already folded model (rendering many versions reads the registry once).
    init(workspace: Workspace, state: ModelState, version: Int) throws {
        let model = state.name
        guard let entry = state.versions[version] else {
            throw RegistryError.versionNotFound(model: model, reference: String(version), known: [])
        }
        let runs = RunStore(workspace: workspace)
        self.model = model
        self.version = version
        self.state = state
        self.entry = entry
        run = try runs.read(entry.file.run)
        if let production = state.production, production != version, let file = state.versions[production]?.file,
            runs.ids().contains(file.run)
        {
            champion = (production, try runs.read(file.run))
        } else {
            champion = nil
        }
        let cardPath = "\(Registry.root)/\(model)/card.yaml"
        let bytes = try workspace.files.exists(cardPath) ? try workspace.files.read(cardPath, limit: 1 << 20) : []
        card = try Self.parseCard(bytes, file: cardPath)
        cardYAMLDigest = try SHA256.hex(of: bytes)
    }

    /// card.yaml: each field text or a list of text.
    static func parseCard(_ bytes: [UInt8], file: String) throws -> [String: [String]] {
        guard !bytes.isEmpty else { return [:] }
        let value = try YAMLReader.parse(bytes, source: file)
        guard case .object(let fields) = value else {
            if value == .null { return [:] }
            throw CardError.malformedCardFile(file: file, detail: "expected a mapping of card fields")
        }
        var card: [String: [String]] = [:]
        for (key, field) in fields {
            switch field {
            case .null: continue
            case .array(let items): card[key] = items.map { $0.string ?? $0.description }
            case .object: throw CardError.malformedCardFile(file: file, detail: "\(key) must be text or a list of text")
            default:
                // A paragraph per blank-line-separated block, so a field keeps its paragraphs.
                let text = field.string ?? field.description
                card[key] = text.components(separatedBy: "\n\n").map {
                    $0.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                .filter { !$0.isEmpty }
            }
        }
        return card
    }

    /// The events that shape this version's card, in order.
    var versionEvents: [RegistryEvent] { state.events.filter { $0.version == version } }

    /// SHA-256 over what the card is made from: when any of it changes, a committed card is stale.
    func lineageDigest(templateDigest: String) throws -> String {
        let value: JSONValue = .object([
            "version_digest": .string(entry.file.digest), "run": .string(run.id),
            "events": .array(versionEvents.map { .string($0.id) }),
            "champion": champion.map { .object(["version": .int(Int64($0.version)), "run": .string($0.run.id)]) }
                ?? .null,
            "card_yaml": .string(cardYAMLDigest), "template": .string(templateDigest),
        ])
        return try SHA256.hex(of: JSONWriter.compact(value))
    }

    /// Metrics that are not slices, and slices (`name@slice`), each with the champion's value and the delta.
    var metricRows: (plain: [[String: Any]], slices: [[String: Any]], performance: [[String: Any]]) {
        let mine = run.metrics
        let theirs = champion?.run.metrics ?? [:]
        var plain: [[String: Any]] = []
        var slices: [[String: Any]] = []
        var performance: [[String: Any]] = []
        for name in mine.keys.sorted() {
            guard let value = mine[name]?.number else { continue }
            let other = theirs[name]?.number
            var row: [String: Any] = [
                "name": name, "value": NumberText.format(value), "champion": other.map { NumberText.format($0) } ?? "",
                "delta": other.map { NumberText.delta(value - $0) } ?? "",
            ]
            if let at = name.firstIndex(of: "@") {
                row["metric"] = String(name[..<at])
                row["slice"] = String(name[name.index(after: at)...])
                slices.append(row)
            } else {
                plain.append(row)
            }
            let lower = name.lowercased()
            if lower.contains("latency") || lower.contains("cost") || lower.contains("throughput") {
                performance.append(["name": name, "value": NumberText.format(value)])
            }
        }
        return (plain, slices, performance)
    }

    /// The template's context.
    var context: [String: Any] {
        let record = run.record
        let (plain, slices, performance) = metricRows
        let owner = entry.file.owner
        let environment = record["environment"] ?? .null
        let gpus = (environment["gpus"]?.array ?? []).compactMap { $0["name"]?.string }
        var context: [String: Any] = [
            "model": model, "version": String(version), "stage": entry.stage.rawValue,
            "owner_name": owner["name"]?.string ?? record["owner"]?["name"]?.string ?? "unknown",
            "owner_email": owner["email"]?.string ?? record["owner"]?["email"]?.string ?? "unknown",
            "commit": record["git"]?["commit"]?.string ?? "none",
            "commit_short": String(record["git"]?["commit"]?.string?.prefix(10) ?? "none"),
            "dirty": record["git"]?["dirty"]?.bool == true, "branch": record["git"]?["branch"]?.string ?? "",
            "run_id": run.id, "run_short": String(run.id.prefix(12)), "run_kind": run.kind, "run_created": run.created,
            "artifacts": entry.file.artifacts.map { ["path": $0.path, "sha256": $0.sha256, "size": String($0.size)] },
            "data": run.data.map { item -> [String: Any] in
                var pointer = ""
                if let md5 = item["dvc"]?["md5"]?.string ?? item["dvc"]?["hash"]?.string { pointer = "dvc \(md5)" }
                if let oid = item["lfs"]?["oid"]?.string { pointer = "lfs \(oid)" }
                return [
                    "path": item["path"]?.string ?? "", "type": item["type"]?.string ?? "",
                    "files": item["files"]?.description ?? "1", "size": item["size"]?.description ?? "0",
                    "sha256": item["sha256"]?.string ?? "",
                    "sha256_short": String(item["sha256"]?.string?.prefix(12) ?? ""),
                    "pointer": pointer,
                ]
            },
            "metrics": plain, "slices": slices, "has_slices": !slices.isEmpty, "performance": performance,
            "has_champion": champion != nil, "champion_version": champion.map { String($0.version) } ?? "",
            "approvals": entry.approvals.filter { $0.versionDigest == entry.file.digest }.map {
                event -> [String: Any] in
                ["name": event.actorName, "email": event.actorEmail, "time": event.time, "comment": event.reason]
            },
            "history": versionEvents.map { ["time": $0.time, "description": $0.summary] },
            "environment": [
                "os": environment["os"]?["name"]?.string ?? "unknown",
                "cpu":
                    "\(environment["cpu"]?["model"]?.string ?? "unknown") (\(environment["cpu"]?["count"]?.description ?? "?") cores)",
                "gpus": gpus.isEmpty ? "none" : gpus.joined(separator: ", "),
                "python": environment["python"]?["version"]?.string ?? "none",
                "container": Self.container(environment["container"]),
                "packages": Self.packages(environment["python"]?["packages"]),
                "package_count": String(environment["python"]?["packages"]?.object?.count ?? 0),
                "lockfiles": (environment["lockfiles"]?.object ?? [:]).keys.sorted().joined(separator: ", ")
                    .nonEmpty ?? "none",
            ],
            "seed": record["seed"]?["value"]?.description ?? "not recorded",
            "card": card,
        ]
        if let gate = entry.gates.last {
            let checks = (gate.value["checks"]?.array ?? []).map { row -> [String: Any] in
                [
                    "check": row["check"]?.string ?? "", "observed": row["observed"]?.string ?? "",
                    "threshold": row["threshold"]?.string ?? "",
                    "result": row["passed"]?.bool == true ? "pass" : "FAIL",
                    "detail": row["detail"]?.string ?? "",
                ]
            }
            context["gate"] =
                [
                    "stage": gate.value["stage"]?.string ?? "", "outcome": gate.passed ? "passed" : "failed",
                    "time": gate.time,
                    "checks": checks, "has_checks": !checks.isEmpty,
                    "failed_count": String(checks.filter { ($0["result"] as? String) == "FAIL" }.count),
                ] as [String: Any]
        }
        return context
    }

    /// What the record says of the container: the image (with its runtime), else the runtime alone.
    static func container(_ value: JSONValue?) -> String {
        let image = value?["image"]?.string ?? ""
        let runtime = value?["runtime"]?.string ?? ""
        switch (image.isEmpty, runtime.isEmpty) {
        case (false, false): return "\(image) (\(runtime))"
        case (false, true): return image
        case (true, false): return "\(runtime) (image not recorded: set GIT_ML_IMAGE)"
        case (true, true): return "none"
        }
    }

    /// Every recorded package with its version, sorted by name: `numpy 2.4.6, scipy 1.17.1`.
    static func packages(_ value: JSONValue?) -> String {
        let items = (value?.object ?? [:]).sorted { $0.key.lowercased() < $1.key.lowercased() }
        return items.isEmpty
            ? "none recorded" : items.map { "\($0.key) \($0.value.description)" }.joined(separator: ", ")
    }
}

extension String {
    /// Nil for the empty string.
    var nonEmpty: String? { isEmpty ? nil : self }
}
