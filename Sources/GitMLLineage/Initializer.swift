import GitMLBasics
import GitMLStore

/// `git ml init`: creates `.mlops/` with its configuration, gates, card template and `.gitignore`.
/// Existing files are kept as they are, so running it again only adds what is missing.
public enum Initializer {
    /// The files `init` writes, relative to `.mlops/`, with their default contents.
    public static let files: [(path: String, text: String)] = [
        ("config.yaml", Config.defaultText),
        ("gates.yaml", gatesText),
        ("templates/model-card.md", modelCardTemplate),
        (".gitignore", gitignoreText),
    ]

    /// Writes the missing files; returns the ones it created (relative to the repository root).
    public static func initialize(_ workspace: Workspace) throws -> [String] {
        var created: [String] = []
        for (path, text) in files {
            let absolute = "\(workspace.mlops)/\(path)"
            if FileSystem.exists(absolute) { continue }
            try AtomicFile.write(Array(text.utf8), to: absolute)
            created.append(".mlops/" + path)
        }
        for directory in [workspace.runsDirectory, workspace.manifestsDirectory, workspace.patchesDirectory] {
            try AtomicFile.makeDirectories(directory)
        }
        _ = try workspace.database.get()
        return created
    }

    static let gitignoreText = """
        # Local only: the rebuildable index, the stat cache and the artifact store.
        cache/
        # Temporary files of interrupted atomic writes.
        .*.tmp-*

        """

    static let gatesText = """
        # Quality gates per target stage (docs/registry.md#gates). `git ml gate check` evaluates them and records
        # the evidence; the pre-push hook and `git ml verify --range` block a promotion without passing evidence.
        # Checks: metric/latency/cost (min, max, min_samples), regression (max_drop, max_drop_pct, direction),
        # schema, lineage, approvals (distinct_from_owner). For example:
        #   production:
        #     - metric: accuracy
        #       min: 0.9
        #     - regression: accuracy
        #       max_drop: 0.01
        #     - lineage: true
        #     - approvals: 1
        #       distinct_from_owner: true
        version: 1
        staging: []
        production: []

        """

    /// The model card template shipped with git-ml (templates/model-card.md in its source tree).
    public static let modelCardTemplate = """
        {{% CONTENT_TYPE: TEXT}}
        # Model card: {{name}} v{{version}}

        ## Model details
        - Stage: {{stage}}
        - Owner: {{owner}}
        - Commit: {{commit}}
        - Run: {{run_id}}

        ## Intended use
        {{intended_use}}

        ## Training data
        {{#data}}
        - `{{path}}` sha256 `{{sha256}}` ({{files}} files, {{size}} bytes)
        {{/data}}

        ## Evaluation
        | metric | value |
        |---|---|
        {{#metrics}}
        | {{name}} | {{value}} |
        {{/metrics}}

        ## How to reproduce
        `git ml reproduce {{run_id}}`

        ## Limitations
        {{limitations}}

        """
}
