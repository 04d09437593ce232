import ArgumentParser
import GitMLBasics
import GitMLCards
import GitMLLineage
import GitMLServe
import GitMLStore

struct ServeCommand: GitMLCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the registry's model versions over HTTP, each only after its artifacts are re-hashed.",
        discussion: """
            Reads .mlops/serve.yaml (docs/format.md#serve-yaml). For each model, the version its stage names \
            (default production) has its gates evaluated again and every artifact hashed from the object store; \
            only then is its backend started on that verified copy and health-checked. A mismatch refuses the \
            version: its routes answer 503 lineage-mismatch. Routes: POST /v1/models/<m>:predict (KServe v1), \
            /v2/models/<m>/infer (KServe v2), /invocations (MLflow), /v1/chat/completions and /v1/completions \
            (OpenAI, streams passed through); GET /v1/models, /healthz, /readyz, /metrics (Prometheus).

            The registry is read again every reload_seconds and on SIGHUP (which also re-reads serve.yaml): a \
            new version is verified and health-checked before it takes traffic, and a failed one leaves the last \
            good version serving. SIGTERM drains: no new connections, in-flight requests finish, backends stop, \
            exit 0. Requests are logged to .mlops/cache/serve.sqlite (git ml drift <model> --from-log). \
            GIT_ML_SERVE_TOKEN (or --token-file) makes every route but /healthz and /readyz need \
            Authorization: Bearer <token>.

            Examples:
              git ml serve
              git ml serve --port 9000
              curl -s localhost:8080/v1/models/churn:predict -d '{"instances": [[0.1, 3, 7.5]]}'
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: ArgumentHelp("The gateway's settings, in the work tree.", valueName: "file"))
    var config = ServeConfig.path
    @Option(
        help: ArgumentHelp(
            "The address to listen on (default: serve.yaml's listen, else 127.0.0.1).", valueName: "host"))
    var host: String?
    @Option(help: ArgumentHelp("The port (0 picks a free one and prints it).", valueName: "port"))
    var port: Int?
    @Option(help: ArgumentHelp("A file holding the bearer token (instead of GIT_ML_SERVE_TOKEN).", valueName: "file"))
    var tokenFile: String?

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port takes 0 to 65535") }
    }

    func execute() throws -> Int32 {
        let context = try Context(common)
        let workspace = try context.workspace()
        var token = context.environment["GIT_ML_SERVE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let tokenFile {
            let bytes = try AtomicFile.read(workspace.inputPath(tokenFile), limit: 4096)
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else {
                throw LineageError.badArgument("\(tokenFile) is empty", hint: "write the token into it")
            }
            token = text
        }
        let relative = config == ServeConfig.path ? config : try workspace.resolve(config)
        return try Gateway.serve(
            Gateway.Options(
                root: workspace.root, configPath: relative, host: host, port: port, token: token,
                environment: context.environment, cardExaminer: cardExaminer))
    }
}
