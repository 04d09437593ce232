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
        for (path, text) in files where try workspace.files.create(Array(text.utf8), at: ".mlops/" + path, mode: 0o644)
        {
            created.append(".mlops/" + path)
        }
        for directory in ["runs", "manifests", "patches"] { try workspace.files.makeDirectories(".mlops/" + directory) }
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
        # schema, lineage, approvals (distinct_from_owner), card (sections). A stage with no checks blocks every
        # promotion to it; `- ungated: true` lets any version in, on purpose. For example:
        #   production:
        #     - metric: accuracy
        #       min: 0.9
        #     - regression: accuracy
        #       max_drop: 0.01
        #     - lineage: true
        #     - approvals: 1
        #       distinct_from_owner: true
        version: 1
        staging:
          - ungated: true
        production: []

        """

    /// The model card template shipped with git-ml (templates/model-card.md in its source tree).
    public static let modelCardTemplate = """
        {{% CONTENT_TYPE: MARKDOWN}}
        # Model card: {{model}} version {{version}}

        ## Model details
        | Detail | Value |
        |---|---|
        | Model | {{model}} |
        | Version | {{version}} |
        | Stage | {{stage}} |
        | Owner | {{owner_name}} ({{owner_email}}) |
        | Commit | {{commit}}{{#dirty}} with uncommitted changes{{/dirty}} |
        | Run | {{run_id}} ({{run_kind}}, {{run_created}}) |
        {{#artifacts}}
        | Artifact | {{path}} sha256 {{sha256}} ({{size}} bytes) |
        {{/artifacts}}

        ## Intended use
        {{#card.intended_use}}
        {{.}}

        {{/card.intended_use}}
        {{#card.out_of_scope}}
        Out of scope: {{.}}

        {{/card.out_of_scope}}

        ## Training data
        | path | type | files | bytes | sha256 | pointer |
        |---|---|---|---|---|---|
        {{#data}}
        | {{path}} | {{type}} | {{files}} | {{size}} | {{sha256_short}} | {{pointer}} |
        {{/data}}

        ## Evaluation
        {{#has_champion}}
        Compared with the champion, {{model}} version {{champion_version}} (in production).

        {{/has_champion}}
        | metric | value | champion | delta |
        |---|---|---|---|
        {{#metrics}}
        | {{name}} | {{value}} | {{champion}} | {{delta}} |
        {{/metrics}}
        {{#has_slices}}

        ### Slices
        | metric | slice | value | champion | delta |
        |---|---|---|---|---|
        {{#slices}}
        | {{metric}} | {{slice}} | {{value}} | {{champion}} | {{delta}} |
        {{/slices}}
        {{/has_slices}}

        ## Gate results
        {{#gate}}
        Gates for {{stage}} {{outcome}} at {{time}}.
        {{#has_checks}}

        | check | observed | threshold | result | detail |
        |---|---|---|---|---|
        {{#checks}}
        | {{check}} | {{observed}} | {{threshold}} | {{result}} | {{detail}} |
        {{/checks}}
        {{/has_checks}}
        {{/gate}}
        {{^gate}}
        No gates have been evaluated for this version yet.
        {{/gate}}

        ## Approvals and history
        {{#approvals}}
        - Approved by {{name}} ({{email}}) at {{time}}{{#comment}}: {{comment}}{{/comment}}
        {{/approvals}}
        {{^approvals}}
        - No approvals recorded.
        {{/approvals}}
        {{#history}}
        - {{time}}: {{description}}
        {{/history}}

        ## Environment and reproduction
        | Item | Recorded |
        |---|---|
        | OS | {{environment.os}} |
        | CPU | {{environment.cpu}} |
        | GPUs | {{environment.gpus}} |
        | Python | {{environment.python}} |
        | Container | {{environment.container}} |
        | Seed | {{seed}} |
        | Lockfiles | {{environment.lockfiles}} |

        Python packages ({{environment.package_count}}): {{environment.packages}}

        Reproduce the run: git ml reproduce {{run_id}}

        ## Latency and cost
        {{#performance}}
        - {{name}}: {{value}}
        {{/performance}}
        {{^performance}}
        No latency or cost metrics were recorded.
        {{/performance}}

        ## Failure modes and limitations
        {{#card.limitations}}
        - {{.}}
        {{/card.limitations}}
        {{#card.failure_modes}}
        - {{.}}
        {{/card.failure_modes}}

        ## Safety notes
        {{#card.safety}}
        - {{.}}
        {{/card.safety}}

        """
}
