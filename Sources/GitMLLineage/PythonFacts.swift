import Foundation
import GitMLBasics
import GitMLStore

#if canImport(Glibc)
    import Glibc
#endif

/// The Python interpreter's version and installed packages, read from the `*.dist-info` folders of its
/// site-packages (no `pip freeze`). Asking the interpreter for its version and search path costs a process
/// (85 ms through a pyenv shim), so that answer is cached in the local index under a fingerprint of
/// everything that selects the interpreter: the file found on PATH and its stat, the real executable's stat,
/// the variables pyenv, venv and conda read, and the pyenv version files.
struct PythonFacts {
    let workspace: Workspace

    func describe(_ command: String) throws -> JSONValue? {
        guard let found = Executable.find(command, path: workspace.environment["PATH"]) else { return nil }
        let fingerprint = try SHA256.hex(of: self.fingerprint(found))
        let database = try workspace.database.get()
        var facts: JSONValue?
        try database.prepare("SELECT facts FROM python_facts WHERE fingerprint = ?").query([.text(fingerprint)]) {
            facts = try? JSONParser.parse($0.text(0) ?? "", source: "python_facts")
        }
        if let cached = facts, let executable = cached["executable"]?.string,
            cached["executable_stat"]?.string == statLine(executable)
        {
            facts = cached
        } else {
            guard let fresh = try ask(found) else { return nil }
            facts = fresh
            try database.prepare("INSERT OR REPLACE INTO python_facts(fingerprint, facts) VALUES (?, ?)")
                .run([.text(fingerprint), .text(JSONWriter.compact(fresh))])
        }
        guard let facts else { return nil }
        var packages: [String: JSONValue] = [:]
        for directory in facts["search_path"]?.array?.compactMap(\.string) ?? [] {
            for name in FileSystem.list(directory) {
                guard let (package, version) = Self.distribution(name) else { continue }
                packages[package] = .string(version)
            }
        }
        return .object([
            "executable": facts["executable"] ?? .null, "version": facts["version"] ?? .null,
            "implementation": facts["implementation"] ?? .null, "packages": .object(packages),
        ])
    }

    /// `numpy-2.4.6.dist-info` -> ("numpy", "2.4.6"), names normalised as PEP 503 says.
    static func distribution(_ folder: String) -> (String, String)? {
        let stem: Substring
        if folder.hasSuffix(".dist-info") {
            stem = folder.dropLast(".dist-info".count)
        } else if folder.hasSuffix(".egg-info") {
            stem = folder.dropLast(".egg-info".count)
        } else {
            return nil
        }
        guard let dash = stem.firstIndex(of: "-") else { return nil }
        var version = stem[stem.index(after: dash)...]
        if let pyTag = version.range(of: "-py") { version = version[..<pyTag.lowerBound] }
        let name = stem[..<dash].lowercased().map { "._-".contains($0) ? "-" : $0 }
        return (String(name), String(version))
    }

    private func statLine(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "missing" }
        return "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    private func fingerprint(_ found: String) -> String {
        var parts = [found, statLine(found), RepositoryPath.real(found) ?? "", workspace.currentDirectory]
        for name in [
            "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYENV_VERSION",
            "PYENV_ROOT", "HOME",
        ] {
            parts.append("\(name)=\(workspace.environment[name] ?? "")")
        }
        let pyenvRoot = workspace.environment["PYENV_ROOT"] ?? ((workspace.environment["HOME"] ?? "") + "/.pyenv")
        var directory = workspace.currentDirectory
        var versionFiles = [pyenvRoot + "/version"]
        while true {
            versionFiles.append(directory + "/.python-version")
            let up = AtomicFile.parent(of: directory)
            if up == directory || directory.isEmpty { break }
            directory = up
        }
        for file in versionFiles {
            if let bytes = try? AtomicFile.read(file, limit: 4096) {
                parts.append(file + ":" + String(decoding: bytes, as: UTF8.self))
            }
        }
        return parts.joined(separator: "\n")
    }

    private static let probe = """
        import sys, site, platform
        print(sys.executable)
        print(platform.python_version())
        print(platform.python_implementation())
        paths = list(sys.path) + list(site.getsitepackages())
        if site.ENABLE_USER_SITE is not False:
            paths.append(site.getusersitepackages())
        for p in paths:
            print(p)
        """

    /// What the interpreter is asked with: what selects it and its packages (PATH, HOME, PYTHON*, VIRTUAL_ENV,
    /// CONDA_*, PYENV_*), never the rest of the caller's environment (its tokens).
    static func probeEnvironment(_ environment: [String: String]) -> [String: String] {
        environment.filter { name, _ in
            ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV"].contains(name)
                || ["PYTHON", "CONDA_", "PYENV_"].contains { name.hasPrefix($0) }
        }
    }

    private func ask(_ executable: String) throws -> JSONValue? {
        guard
            let output = try? Executable.output(
                executable, ["-c", Self.probe], environment: Self.probeEnvironment(workspace.environment)),
            !output.isEmpty
        else { return nil }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3 else { return nil }
        var seen = Set<String>()
        let search = lines.dropFirst(3).filter { !$0.isEmpty && FileSystem.isDirectory($0) && seen.insert($0).inserted }
        return .object([
            "executable": .string(lines[0]), "version": .string(lines[1]), "implementation": .string(lines[2]),
            "search_path": .array(search.map(JSONValue.string)), "executable_stat": .string(statLine(lines[0])),
        ])
    }
}
