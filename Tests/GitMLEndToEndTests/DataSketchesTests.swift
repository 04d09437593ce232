import Foundation
import GitMLBasics
import GitMLTestSupport
import Testing

private let python = TestTools.path("python")
private let hasDataSketches: Bool = {
    guard let python else { return false }
    let result = try? TempRepo.run(
        python, ["-c", "import datasketches"], in: "/", environment: ["PATH": "/usr/bin:/bin"])
    return result?.status == 0
}()

/// Half of a table profiled by the `datasketches` package (as Spark or a Python job would), written in git-ml's
/// profile format; git-ml's own sketches read back by the package; quantiles checked against the data.
private let script = #"""
    import base64, csv, json, sys
    import numpy as np
    from datasketches import kll_doubles_sketch

    k = int(sys.argv[1])
    rows = list(csv.DictReader(open("b.csv")))
    x = np.array([float(r["x"]) for r in rows])
    sketch = kll_doubles_sketch(k)
    sketch.update(x)
    counts = {}
    for r in rows:
        counts[r["c"]] = counts.get(r["c"], 0) + 1
    values = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    profile = {
        "schema_version": 2, "name": "b", "source": "spark://part-2", "rows": len(rows), "target": None,
        "columns": [
            {"name": "x", "type": "numeric", "count": len(rows), "missing": 0, "invalid": 0, "non_finite": 0,
             "min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "std": float(x.std()),
             "sketch": {"kind": "kll", "encoding": "datasketches", "k": k, "count": len(rows),
                        "rank_error": sketch.normalized_rank_error(False),
                        "bytes": base64.b64encode(sketch.serialize()).decode()}},
            {"name": "c", "type": "categorical", "count": len(rows), "missing": 0,
             "values": [[v, n] for v, n in values], "other": 0, "count_error": 0, "tracked": len(values)},
        ],
    }
    json.dump(profile, open("b-profile.json", "w"))
    """#

private let check = #"""
    import base64, csv, json, sys
    import numpy as np
    from datasketches import kll_doubles_sketch

    def sketch(path):
        column = next(c for c in json.load(open(path))["columns"] if c["name"] == "x")
        return kll_doubles_sketch.deserialize(base64.b64decode(column["sketch"]["bytes"])), column["sketch"]
    merged, merged_json = sketch(sys.argv[1])
    whole, _ = sketch(sys.argv[2])
    data = np.sort(np.array([float(r["x"]) for r in csv.DictReader(open("whole.csv"))]))
    eps = merged_json["rank_error"]
    worst_true, worst_whole = 0.0, 0.0
    for q in np.linspace(0.01, 0.99, 99):
        m = merged.get_quantile(q, True)
        w = whole.get_quantile(q, True)
        rank_m = np.searchsorted(data, m, side="right") / len(data)
        rank_w = np.searchsorted(data, w, side="right") / len(data)
        worst_true = max(worst_true, abs(rank_m - q))
        worst_whole = max(worst_whole, abs(rank_m - rank_w))
    # The package merges git-ml's sketch too (the other direction), and serializes it back byte for byte.
    again = kll_doubles_sketch.deserialize(whole.serialize())
    again.merge(merged)
    print(json.dumps({"n": merged.n, "k": merged.k, "eps": eps, "worst_true": worst_true,
                      "worst_whole": worst_whole, "double_n": again.n,
                      "roundtrip": whole.serialize() == base64.b64decode(
                          next(c for c in json.load(open(sys.argv[2]))["columns"]
                               if c["name"] == "x")["sketch"]["bytes"])}))
    """#

@Suite("Profiles merge with Apache DataSketches")
struct DataSketchesTests {
    @Test(
        "half a table sketched by the datasketches package merges with git-ml's profile of the other half, within the stated error",
        .enabled(if: hasDataSketches, "scripts/test-tools could not install datasketches from PyPI (see its output)"))
    func mergeWithDataSketches() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        // 200,000 rows: x from a skewed mixture, c from three categories; a.csv and b.csv are the two halves.
        var state: UInt64 = 42
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        var whole = "x,c\n"
        var a = "x,c\n"
        var b = "x,c\n"
        for i in 0..<200_000 {
            let x = uniform() < 0.7 ? -log(uniform()) * 3 : 10 + uniform() * 5
            let c = ["red", "green", "blue"][Int(uniform() * 2.9)]
            let row = "\(x),\(c)\n"
            whole += row
            if i < 100_000 { a += row } else { b += row }
        }
        try repo.write("whole.csv", whole)
        try repo.write("a.csv", a)
        try repo.write("b.csv", b)
        try repo.write("half.py", script)
        try repo.write("check.py", check)

        let profileA = try repo.gitML(["profile", "a.csv", "--json"])
        #expect(profileA.status == 0, "\(profileA.stderr)")
        let idA = try #require(try JSONParser.parse(profileA.stdout, source: "a")["id"]?.string)
        let k = try #require(
            try JSONParser.parse(repo.read(".mlops/profiles/\(idA).json"), source: "a")["columns"]?.array?.first?[
                "sketch"]?["k"]?.integer())
        #expect(k == 1404, "the default k states a rank error of at most 0.2 %")
        let python = try #require(python)
        let half = try TempRepo.run(python, ["half.py", String(k)], in: repo.root, environment: repo.environment)
        #expect(half.status == 0, "\(half.stderr)")

        let merged = try repo.gitML(["profile", "--merge", idA, "b-profile.json", "--name", "whole", "--json"])
        #expect(merged.status == 0, "\(merged.stderr)")
        let mergedID = try #require(try JSONParser.parse(merged.stdout, source: "merged")["id"]?.string)
        let wholeProfile = try repo.gitML(["profile", "whole.csv", "--json"])
        let wholeID = try #require(try JSONParser.parse(wholeProfile.stdout, source: "whole")["id"]?.string)

        let result = try TempRepo.run(
            python, ["check.py", ".mlops/profiles/\(mergedID).json", ".mlops/profiles/\(wholeID).json"],
            in: repo.root, environment: repo.environment)
        #expect(result.status == 0, "\(result.stderr)")
        let figures = try JSONParser.parse(result.stdout, source: "check.py")
        let eps = try #require(figures["eps"]?.number)
        #expect(eps <= 0.002)
        #expect(figures["n"]?.integer() == 200_000)
        #expect(figures["double_n"]?.integer() == 400_000)
        #expect(figures["roundtrip"] == .bool(true), "the package writes git-ml's sketch back byte for byte")
        #expect(try #require(figures["worst_true"]?.number) <= eps, "merged quantiles against the data")
        #expect(try #require(figures["worst_whole"]?.number) <= 2 * eps, "merged against the profile of the whole")

        // Counts, mean, std and categories of the merge are those of the whole.
        let m = try JSONParser.parse(repo.read(".mlops/profiles/\(mergedID).json"), source: "merged")
        let w = try JSONParser.parse(repo.read(".mlops/profiles/\(wholeID).json"), source: "whole")
        #expect(m["rows"] == w["rows"])
        let (mx, wx) = (try #require(m["columns"]?.array?[0]), try #require(w["columns"]?.array?[0]))
        for key in ["mean", "std", "min", "max"] {
            let (got, want) = (try #require(mx[key]?.number), try #require(wx[key]?.number))
            #expect(abs(got - want) <= 1e-9 * max(1, abs(want)), "\(key): \(got) vs \(want)")
        }
        #expect(m["columns"]?.array?[1]["values"] == w["columns"]?.array?[1]["values"])
        // And git-ml reads the merge as the reference for drift: the whole table has not drifted from it.
        let drift = try repo.gitML(["drift", "--reference", String(mergedID.prefix(8)), "--current", "whole.csv"])
        #expect(drift.status == 0, "\(drift.stdout)\(drift.stderr)")
    }

    @Test("merging refuses parts whose column types disagree, and a damaged sketch, saying what is wrong")
    func mergeErrors() throws {
        let repo = try TempRepo()
        #expect(try repo.gitML(["init"]).status == 0)
        try repo.write("a.csv", "x\n1\n2\n")
        try repo.write("b.csv", "x\nred\nblue\n")
        let a = try JSONParser.parse(try repo.gitML(["profile", "a.csv", "--json"]).stdout, source: "a")
        let b = try JSONParser.parse(try repo.gitML(["profile", "b.csv", "--json"]).stdout, source: "b")
        let (idA, idB) = (try #require(a["id"]?.string), try #require(b["id"]?.string))
        let types = try repo.gitML(["profile", "--merge", idA, idB])
        #expect(types.status == 2)
        #expect(types.stderr.contains("column x is categorical here but numeric in an earlier part"), "\(types.stderr)")

        var text = try repo.read(".mlops/profiles/\(idA).json")
        let bytes = try #require(text.range(of: #""bytes" : ""#) ?? text.range(of: #""bytes": ""#))
        text.replaceSubrange(bytes.upperBound..<text.index(bytes.upperBound, offsetBy: 4), with: "AAAA")
        try repo.write("damaged.json", text)
        let damaged = try repo.gitML(["profile", "--merge", "damaged.json", idA])
        #expect(damaged.status == 2)
        #expect(
            damaged.stderr.hasPrefix(
                "error: damaged.json column 1: not a DataSketches KLL doubles sketch: family 0, not 15 (KLL)"),
            "\(damaged.stderr)")
        let one = try repo.gitML(["profile", "--merge", idA])
        #expect(one.status == 64)
        // Committed as a stored profile (named by its digest, as a hostile repository would), it does not let
        // drift read the column as unchanged: the reference is refused.
        let stored = try repo.writeAddressed(text, in: ".mlops/profiles", suffix: ".json")
        let drift = try repo.gitML(["drift", "--reference", String(stored.prefix(8)), "--current", "a.csv"])
        #expect(drift.status == 2, "\(drift.stdout)")
        #expect(drift.stderr.contains("not a DataSketches KLL doubles sketch"), "\(drift.stderr)")
        let fsck = try repo.gitML(["fsck"])
        #expect(fsck.status == 1 && fsck.stdout.contains(String(stored.prefix(12))), "\(fsck.stdout)")
    }
}
