import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real OCI registry for a test: Debian's `docker-registry` (CNCF distribution) as a process of its own on
/// 127.0.0.1 and a free port, storing under a temporary directory, optionally behind an htpasswd (bcrypt) file.
/// Stopped when released.
public final class RegistryServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    public var storage: String { directory + "/data" }
    public var host: String { "127.0.0.1:\(port)" }
    private var process: Process?
    private let config: String

    /// Nil when `docker-registry` is not installed (scripts/bootstrap installs it).
    public static var executable: String? {
        ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Starts the registry; with `user`, only that user (bcrypt htpasswd) may push or pull.
    public init(user: (name: String, password: String)? = nil) throws {
        guard let executable = Self.executable else { throw TestFailure("docker-registry is not installed") }
        directory = FileManager.default.temporaryDirectory.path + "/git-ml-registry-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        port = try Self.freePort()
        var auth = ""
        if let user {
            let htpasswd = try TempRepo.run(
                "/usr/bin/htpasswd", ["-Bbn", user.name, user.password], in: directory, environment: [:])
            guard htpasswd.status == 0 else { throw TestFailure("htpasswd: \(htpasswd.stderr)") }
            try htpasswd.stdout.write(toFile: directory + "/htpasswd", atomically: true, encoding: .utf8)
            auth = "auth:\n  htpasswd:\n    realm: git-ml-test\n    path: \(directory)/htpasswd\n"
        }
        config = directory + "/config.yml"
        // A fixed secret keeps upload sessions valid across a restart (an interrupted push resumes).
        try """
        version: 0.1
        log:
          level: error
        storage:
          filesystem:
            rootdirectory: \(directory)/data
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:\(port)
          secret: git-ml-test-secret
        \(auth)
        """.write(toFile: config, atomically: true, encoding: .utf8)
        try start(executable)
    }

    private func start(_ executable: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        // Ready when /v2/ answers (200, or 401 behind auth).
        for _ in 0..<200 {
            if let status = try? TempRepo.run(
                "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://\(host)/v2/"], in: "/",
                environment: [:]), status.stdout == "200" || status.stdout == "401"
            {
                return
            }
            usleep(25_000)
        }
        throw TestFailure("docker-registry did not start on \(host)")
    }

    /// Kills the registry at once (SIGKILL), as a crash or a pulled plug would.
    public func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Starts it again on the same port and storage.
    public func restart() throws {
        kill()
        guard let executable = Self.executable else { throw TestFailure("docker-registry is not installed") }
        try start(executable)
    }

    /// The file holding a blob's bytes on the registry's disk.
    public func blobPath(_ digest: String) -> String {
        "\(storage)/docker/registry/v2/blobs/sha256/\(digest.prefix(2))/\(digest)/data"
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A port nothing listens on now (the kernel's choice for port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TestFailure("bind") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        guard
            withUnsafeMutablePointer(
                to: &address,
                {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
                }) == 0
        else { throw TestFailure("getsockname") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
