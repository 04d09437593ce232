import GitMLBasics
import GitMLLineage
import GitMLStore

/// `git ml fsck` for the registry: every version and event file parses, is named for what it holds, and refers
/// to things that exist (the version's run, the event's version and that version's exact bytes).
public struct RegistryFsck {
    let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    /// Problems only, plus how many files were checked.
    public func check() throws -> (problems: [Finding], checked: Int) {
        let source = WorkTreeSource(workspace: workspace)
        let registry = Registry(source: source)
        let runs = Set(RunStore(workspace: workspace).ids())
        var problems: [Finding] = []
        var checked = 0
        func problem(_ subject: String, _ state: String, _ detail: String) {
            problems.append(
                Finding(subject: subject, state: state, recorded: nil, actual: nil, detail: "\(subject): \(detail)"))
        }
        for name in try source.names(in: Registry.root) where !name.hasPrefix(".") {
            let directory = "\(Registry.root)/\(name)"
            if (try? Registry.validate(name: name)) == nil {
                problem(directory, "unexpected", "is not a valid model name"); continue
            }
            var digests: [Int: String] = [:]
            for file in try source.names(in: directory + "/versions") where !file.hasPrefix(".") {
                let path = "\(directory)/versions/\(file)"
                checked += 1
                guard let bytes = try source.contents(of: path) else { continue }
                do {
                    let version = try ModelVersion(bytes: bytes, file: path)
                    guard version.model == name, "\(version.version).json" == file else {
                        problem(path, "corrupt", "holds \(version.model) version \(version.version)")
                        continue
                    }
                    digests[version.version] = version.digest
                    if !runs.contains(version.run) {
                        problem(path, "dangling", "run \(version.run.prefix(12)) is not in .mlops/runs")
                    }
                } catch let error as GitMLError {
                    problem(path, "corrupt", error.message)
                }
            }
            if let state = try? registry.model(name) {
                for ignored in state.ignored where state.versions[ignored.event.version] != nil {
                    problem("\(directory)/events/\(ignored.event.id).json", "invalid", "the event \(ignored.reason)")
                }
            }
            for file in try source.names(in: directory + "/events") where !file.hasPrefix(".") {
                let path = "\(directory)/events/\(file)"
                checked += 1
                if file.hasSuffix(".json.sig") {
                    if try source.contents(of: String(path.dropLast(4))) == nil {
                        problem(path, "dangling", "is a signature of an event that is not there")
                    }
                    continue
                }
                guard let bytes = try source.contents(of: path) else { continue }
                // The name ends in the first 12 hex digits of the file's SHA-256: an edit shows.
                let suffix = file.hasSuffix(".json") ? String(file.dropLast(5).split(separator: "-").last ?? "") : ""
                if suffix != String(try SHA256.hex(of: bytes).prefix(12)) {
                    problem(path, "corrupt", "content does not match its name: the event was modified")
                    continue
                }
                do {
                    guard let event = try registry.event(at: path) else { continue }
                    guard let digest = digests[event.version] else {
                        problem(path, "dangling", "names version \(event.version), which has no version file")
                        continue
                    }
                    if !event.versionDigest.isEmpty && event.versionDigest != digest {
                        problem(
                            path, "modified", "version \(event.version)'s file changed after this event was recorded")
                    }
                } catch let error as GitMLError {
                    problem(path, "corrupt", error.message)
                }
            }
        }
        return (problems, checked)
    }
}
