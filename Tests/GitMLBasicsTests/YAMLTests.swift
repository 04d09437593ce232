import Testing

@testable import GitMLBasics

@Suite("YAML")
struct YAMLTests {
    @Test("params.yaml reads with the YAML 1.2 core schema")
    func coreSchema() throws {
        let text =
            "lr: 0.01\nepochs: 10\nname: resnet\nflag: true\nnothing: ~\nquoted: '10'\nlist: [1, 2]\nnested:\n  depth: 3\n"
        let value = try YAMLReader.parse(Array(text.utf8), source: "params.yaml")
        #expect(
            value
                == .object([
                    "lr": .double(0.01), "epochs": .int(10), "name": .string("resnet"), "flag": .bool(true),
                    "nothing": .null,
                    "quoted": .string("10"), "list": .array([.int(1), .int(2)]), "nested": .object(["depth": .int(3)]),
                ]))
    }

    @Test("anchors and aliases expand; merge keys merge")
    func aliases() throws {
        let text = "base: &b {a: 1}\nother:\n  <<: *b\n  c: 2\n"
        let value = try YAMLReader.parse(Array(text.utf8), source: "t")
        #expect(value["other"] == .object(["a": .int(1), "c": .int(2)]))
    }

    @Test("an alias bomb is refused within the node budget")
    func aliasBomb() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 {
            text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        #expect(throws: InputError.tooLarge(source: "bomb.yaml", limit: YAMLReader.maximumNodes)) {
            try YAMLReader.parse(Array(text.utf8), source: "bomb.yaml")
        }
    }

    @Test("100,000 levels of nesting fail fast")
    func deep() {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: InputError.tooDeep(source: "deep.yaml", limit: YAMLReader.maximumDepth)) {
            try YAMLReader.parse(Array(text.utf8), source: "deep.yaml")
        }
    }

    @Test("invalid YAML names the file and line")
    func invalid() {
        do {
            _ = try YAMLReader.parse(Array("a: [1, 2\nb: : :\n".utf8), source: "params.yaml")
            Issue.record("expected an error")
        } catch let error as InputError {
            #expect(error.message.hasPrefix("params.yaml: invalid YAML at line"))
        } catch { Issue.record("unexpected \(error)") }
    }
}

@Suite("YAML duplicate keys")
struct YAMLDuplicateKeyTests {
    @Test("a key given twice is an error naming it and its line; the first value never silently loses")
    func duplicate() {
        #expect {
            try YAMLReader.parse(Array("production:\n  - metric: acc\nproduction: []\n".utf8), source: "g.yaml")
        } throws: { error in
            (error as? InputError)?.message.contains("duplicate key \"production\" at line 3") == true
        }
    }

    @Test("a merge key supplies defaults that the mapping's own keys override, as YAML says")
    func mergeOverride() throws {
        let value = try YAMLReader.parse(
            Array("base: &b {lr: 0.1, epochs: 3}\nrun:\n  <<: *b\n  lr: 0.2\n".utf8), source: "p.yaml")
        #expect(value["run"]?["lr"] == .double(0.2) && value["run"]?["epochs"] == .int(3))
    }
}

@Suite("Repository paths")
struct RepositoryPathTests {
    @Test(
        "lexical normalisation",
        arguments: [
            ("a/./b/../c", "a/c"), ("/x/y/../../z", "/z"), ("../a", "../a"), ("a//b/", "a/b"),
        ])
    func normalize(_ pair: (String, String)) {
        #expect(RepositoryPath.normalize(pair.0) == pair.1)
    }

    @Test("relative paths only inside the base")
    func relative() {
        #expect(RepositoryPath.relativePath("/r/a/b", under: "/r") == "a/b")
        #expect(RepositoryPath.relativePath("/r", under: "/r") == "")
        #expect(RepositoryPath.relativePath("/rx/a", under: "/r") == nil)
    }
}
