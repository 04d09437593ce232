import Foundation
import GitMLBasics
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// Describes the machine and software a run used: OS, kernel, CPU, memory, GPUs, Python and its packages,
/// lockfile digests, container image, and the allow-listed environment variables (secrets redacted).
extension Workspace {
    /// The environment as a record would hold it now, for `interpreter` (secrets redacted).
    public func currentEnvironment(interpreter: String?) throws -> JSONValue {
        let config = try self.config.get()
        return try EnvironmentCapture(workspace: self, config: config, scanner: SecretScanner(environment: environment))
            .capture(interpreter: interpreter ?? config.python)
    }
}

struct EnvironmentCapture {
    let workspace: Workspace
    let config: Config
    let scanner: SecretScanner

    /// Lockfiles whose digests pin the software: found among tracked files and at the root.
    static let lockfileNames: Set<String> = [
        "poetry.lock", "uv.lock", "Pipfile.lock", "pdm.lock", "environment.yml", "environment.yaml",
        "conda-lock.yml", "Package.resolved", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "Cargo.lock",
        "go.sum", "Gemfile.lock", "renv.lock", "pyproject.toml",
    ]

    static func isLockfile(_ name: String) -> Bool {
        lockfileNames.contains(name) || (name.hasPrefix("requirements") && name.hasSuffix(".txt"))
            || (name.hasPrefix("constraints") && name.hasSuffix(".txt"))
    }

    /// `interpreter` is the Python the command runs (or the configured one).
    func capture(interpreter: String) throws -> JSONValue {
        var environment: [String: JSONValue] = [
            "os": operatingSystem(),
            "cpu": cpu(),
            "memory_bytes": .int(memoryBytes()),
            "gpus": .array(gpus()),
            "python": try PerformanceTrace.measure("python facts") {
                try PythonFacts(workspace: workspace).describe(interpreter)
            } ?? .null,
            "lockfiles": .object(try PerformanceTrace.measure("lockfiles") { try lockfiles() }),
            "container": container(),
            "git_ml_version": .string(GitMLVersion.current),
        ]
        var variables: [String: JSONValue] = [:]
        for name in config.environmentVariables {
            if let value = workspace.environment[name] {
                // The names come from the repository's config.yaml, so the value must also not look like a
                // credential, whatever the variable is called.
                let clean = scanner.redact(value: value, name: name)
                variables[name] = .string(SecretScanner.looksLikeCredential(clean) ? SecretScanner.redacted : clean)
            }
        }
        environment["variables"] = .object(variables)
        return .object(environment)
    }

    private func operatingSystem() -> JSONValue {
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            CText.string(fixed: value)
        }
        var release: [String: String] = [:]
        if let bytes = try? AtomicFile.read("/etc/os-release", limit: 65536) {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                release[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(
                    in: CharacterSet(charactersIn: "\""))
            }
        }
        return .object([
            "system": .string(field(names.sysname)), "kernel": .string(field(names.release)),
            "arch": .string(field(names.machine)), "name": .string(release["PRETTY_NAME"] ?? field(names.sysname)),
            "id": .string(release["ID"] ?? ""), "version": .string(release["VERSION_ID"] ?? ""),
        ])
    }

    private func cpu() -> JSONValue {
        var model = ""
        if let bytes = try? AtomicFile.read("/proc/cpuinfo", limit: 16 << 20) {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("model name")
            {
                model =
                    line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                break
            }
        }
        return .object([
            "model": .string(model), "count": .int(Int64(ProcessInfo.processInfo.activeProcessorCount)),
        ])
    }

    private func memoryBytes() -> Int64 { Int64(ProcessInfo.processInfo.physicalMemory) }

    /// NVIDIA GPUs through nvidia-smi, only when it is on PATH.
    private func gpus() -> [JSONValue] {
        guard let smi = Executable.find("nvidia-smi", path: workspace.environment["PATH"]),
            let output = try? Executable.output(
                smi, ["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
                environment: workspace.environment)
        else { return [] }
        return output.split(separator: "\n").map { line in
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            return .object([
                "name": .string(fields.first ?? ""),
                "memory_mib": fields.count > 1 ? JSONValue.inferred(from: fields[1]) : .null,
                "driver": .string(fields.count > 2 ? fields[2] : ""),
            ])
        }
    }

    private func lockfiles() throws -> [String: JSONValue] {
        var paths = Set(try workspace.repository.indexedPaths(whereFileName: Self.isLockfile))
        for name in FileSystem.list(workspace.root) where Self.isLockfile(name) { paths.insert(name) }
        var digests: [String: JSONValue] = [:]
        // Read beneath the work tree: a lockfile linked out of it is not hashed (and so cannot reveal a file).
        for path in paths where (try? workspace.files.exists(path)) == true {
            if let bytes = try? workspace.files.read(path) {
                digests[path] = .string(try SHA256.hex(of: bytes))
            }
        }
        return digests
    }

    /// The container image: `GIT_ML_IMAGE` when set, else what can be detected from inside.
    private func container() -> JSONValue {
        let image = workspace.environment["GIT_ML_IMAGE"].map { scanner.redact($0) }
        var runtime: String?
        if FileSystem.exists("/.dockerenv") {
            runtime = "docker"
        } else if FileSystem.exists("/run/.containerenv") {
            runtime = "podman"
        } else if workspace.environment["KUBERNETES_SERVICE_HOST"] != nil {
            runtime = "kubernetes"
        }
        guard image != nil || runtime != nil else { return .null }
        return .object([
            "image": image.map(JSONValue.string) ?? .null, "runtime": runtime.map(JSONValue.string) ?? .null,
        ])
    }
}

/// The version of this tool, recorded in every run.
public enum GitMLVersion {
    public static let current = "0.1.0"
}
