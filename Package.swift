// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "git-ml",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "git-ml", targets: ["git-ml"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        // The serving gateway only (GitMLServe): an HTTP server, an HTTP client for its backends, Prometheus.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0", traits: []),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.30.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
    ],
    targets: [
        /** The executable: hands the command line to GitMLCommands and nothing else. */
        .executableTarget(name: "git-ml", dependencies: ["GitMLCommands"]),
        /** The CLI: parses arguments, calls the libraries, renders text or --json, maps errors to exit codes. */
        .target(
            name: "GitMLCommands",
            dependencies: [
                "GitMLServe", "GitMLRollout", "GitMLDrift", "GitMLReproduce", "GitMLCards", "GitMLRegistry",
                "GitMLGates",
                "GitMLRemote",
                "GitMLLineage",
                "GitMLGit", "GitMLStore", "GitMLBasics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        /** The serving gateway: lineage-verified model versions behind KServe, MLflow and OpenAI routes, metrics. */
        .target(
            name: "GitMLServe",
            dependencies: [
                "GitMLRollout", "GitMLGates", "GitMLRegistry", "GitMLLineage", "GitMLDrift", "GitMLStore",
                "GitMLBasics",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        /** Rollouts, pure and without HTTP: the plan file, canary analysis, key routing, agreement, golden probes,
            export to Argo Rollouts and KServe. GitMLServe drives it. */
        .target(name: "GitMLRollout", dependencies: ["GitMLBasics"]),
        /** Reproduction: a temporary checkout of the recorded commit, data verification, environment diff, re-run, verdict. */
        .target(
            name: "GitMLReproduce",
            dependencies: ["GitMLLineage", "GitMLGit", "GitMLMarkdown", "GitMLStore", "GitMLBasics"]),
        /** Model cards: the context from lineage and card.yaml, Mustache -> Markdown (HF front matter) -> HTML, checks. */
        .target(
            name: "GitMLCards",
            dependencies: [
                "GitMLRegistry", "GitMLLineage", "GitMLMarkdown", "GitMLStore", "GitMLBasics",
                .product(name: "Mustache", package: "swift-mustache"),
            ]),
        /** cmark-gfm behind Swift: safe HTML with GitHub's extensions, and the section outline of a document. */
        .target(name: "GitMLMarkdown", dependencies: ["CCmarkGFM", "GitMLBasics"]),
        /** Quality gates: the gates.yaml spec, pure evaluation, evidence, pre-push verification, the hook installer. */
        .target(
            name: "GitMLGates",
            dependencies: ["GitMLRegistry", "GitMLProvenance", "GitMLLineage", "GitMLGit", "GitMLStore", "GitMLBasics"]),
        /** The model registry: versions, stage events and their fold, approvals, references like churn@production. */
        .target(
            name: "GitMLRegistry",
            dependencies: ["GitMLProvenance", "GitMLLineage", "GitMLGit", "GitMLStore", "GitMLBasics"]),
        /** Run records: snapshot, run, data pointers, environment, seeds, secrets, verify, fsck, index. */
        .target(name: "GitMLLineage", dependencies: ["GitMLDrift", "GitMLGit", "GitMLStore", "GitMLBasics"]),
        /** Remotes: artifacts pushed to and pulled from OCI registries by digest (ModelPack manifests, libcurl). */
        .target(
            name: "GitMLRemote",
            dependencies: ["GitMLRegistry", "GitMLLineage", "GitMLStore", "GitMLBasics", "CCurlShims", "CSystemShims"]),
        /** Data profiles and drift: streaming CSV and JSON-lines reading, quantile sketches, frequency tables. */
        .target(name: "GitMLDrift", dependencies: ["GitMLMarkdown", "GitMLStore", "GitMLBasics", "CSystemShims"]),
        /** Signatures: registry events signed with the SSH key git signs commits with, checked against allowed_signers. */
        .target(name: "GitMLProvenance", dependencies: ["GitMLGit", "GitMLStore", "GitMLBasics"]),
        /** libgit2 behind Swift types: repository discovery, HEAD, status, diff as patch, remotes, identity. */
        .target(name: "GitMLGit", dependencies: ["CGit2", "GitMLBasics"]),
        /** Atomic files, SHA-256 (OpenSSL), the content-addressed object store and SQLite. */
        .target(name: "GitMLStore", dependencies: ["CSQLite", "COpenSSL", "CSystemShims", "GitMLBasics"]),
        /** Shared vocabulary: the error protocol, JSON and YAML values, repository-relative paths. */
        .target(name: "GitMLBasics", dependencies: ["CYAML", "CSystemShims"]),
        /** The few libc calls Swift cannot see (glibc's _GNU_SOURCE extensions), wrapped in plain C. */
        .target(name: "CSystemShims"),
        /** libcurl from Debian's libcurl4-openssl-dev, behind non-variadic C calls Swift can make. */
        .target(name: "CCurlShims", linkerSettings: [.linkedLibrary("curl")]),
        /** libgit2 from Debian's libgit2-dev. */
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        /** SQLite from Debian's libsqlite3-dev. */
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        /** OpenSSL's libcrypto (SHA-256) from Debian's libssl-dev. */
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        /** cmark-gfm and its extensions from Debian's libcmark-gfm-dev and libcmark-gfm-extensions-dev. */
        .systemLibrary(
            name: "CCmarkGFM", pkgConfig: "libcmark-gfm",
            providers: [.apt(["libcmark-gfm-dev", "libcmark-gfm-extensions-dev"])]),
        /** libyaml's event parser from Debian's libyaml-dev. */
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        /** Test helpers: isolated temporary git repositories, bare remotes, running the built binary. */
        .target(name: "GitMLTestSupport", dependencies: ["GitMLBasics"], path: "Sources/GitMLTestSupport"),
        .testTarget(name: "GitMLBasicsTests", dependencies: ["GitMLBasics"]),
        .testTarget(
            name: "GitMLLineageTests",
            dependencies: ["GitMLLineage", "GitMLGit", "GitMLStore", "GitMLTestSupport"]),
        .testTarget(name: "GitMLDriftTests", dependencies: ["GitMLDrift", "GitMLBasics"], exclude: ["Fixtures"]),
        .testTarget(name: "GitMLGatesTests", dependencies: ["GitMLGates", "GitMLRegistry", "GitMLBasics"]),
        .testTarget(
            name: "GitMLCardsTests",
            dependencies: [
                "GitMLCards", "GitMLMarkdown", "GitMLRegistry", "GitMLLineage", "GitMLStore", "GitMLTestSupport",
                "GitMLBasics",
            ],
            exclude: ["Snapshots"]),
        .testTarget(name: "GitMLServeTests", dependencies: ["GitMLServe", "GitMLRegistry", "GitMLBasics"]),
        .testTarget(
            name: "GitMLRolloutTests", dependencies: ["GitMLRollout", "GitMLBasics", "GitMLTestSupport"],
            exclude: ["Schemas", "Golden"]),
        .testTarget(name: "GitMLRemoteTests", dependencies: ["GitMLRemote", "GitMLLineage", "GitMLBasics"]),
        .testTarget(
            name: "GitMLEndToEndTests", dependencies: ["GitMLTestSupport", "GitMLBasics"], exclude: ["Fixtures"]),
        .testTarget(
            name: "GitMLFuzzTests",
            dependencies: ["GitMLDrift", "GitMLGates", "GitMLLineage", "GitMLRegistry", "GitMLBasics"],
            exclude: ["Fixtures"]),
    ]
)
