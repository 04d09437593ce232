import GitMLBasics

/// Errors of the gates area. A gate that cannot be evaluated fails: these exit 1, like a failed check.
public enum GateError: GitMLError {
    case malformedSpec(String)
    case missingRun(model: String, version: Int, run: String)
    case blocked(count: Int)
    case hookNotOurs(path: String)
    case noGates(stage: String)

    public var message: String {
        switch self {
        case .malformedSpec(let detail): return "gate failed: .mlops/gates.yaml: \(detail)"
        case .missingRun(let model, let version, let run):
            return "gate failed: \(model) version \(version) names run \(run.prefix(12)), which is not in .mlops/runs"
        case .blocked(let count):
            return count == 1
                ? "1 change to the registry is refused" : "\(count) changes to the registry are refused"
        case .hookNotOurs(let path): return "\(path) is not git-ml's hook; left as it is"
        case .noGates(let stage):
            return "gate failed: .mlops/gates.yaml declares no checks for \(stage), so nothing may enter it"
        }
    }

    public var hint: String {
        switch self {
        case .malformedSpec:
            return "fix the entry (docs/registry.md#gates lists the checks), then run git ml gate check again"
        case .missingRun:
            return
                "restore the run record from git (git checkout -- .mlops/runs), or register a version from a run that is here"
        case .blocked: return "run the commands listed above, commit .mlops, and push again"
        case .hookNotOurs: return "remove or edit it yourself"
        case .noGates(let stage):
            return "add checks under \(stage): (docs/registry.md#gates), or `- ungated: true` to let any version in"
        }
    }

    public var code: String {
        switch self {
        case .malformedSpec: return "malformed-gates"
        case .missingRun: return "missing-run"
        case .blocked: return "promotion-blocked"
        case .hookNotOurs: return "hook-not-ours"
        case .noGates: return "no-gates"
        }
    }

    public var exitStatus: Int32 {
        switch self {
        case .hookNotOurs: return ExitStatus.operational
        default: return ExitStatus.checkFailed
        }
    }
}
