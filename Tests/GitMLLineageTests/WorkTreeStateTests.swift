import Foundation
import GitMLGit
import GitMLTestSupport
import Testing

/// git's own answer: the paths `git status` reports (every untracked file listed), minus the excluded ones.
private func gitStatusPaths(_ repo: TempRepo, excluding excluded: [String]) throws -> [String] {
    let output = try repo.git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    return output.split(separator: "\0").map { String($0.dropFirst(3)) }
        .filter { path in !excluded.contains { path == $0 || path.hasPrefix($0 + "/") } }
        .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
}

private func state(_ repo: TempRepo, excluding excluded: [String]) throws -> WorkTreeState {
    try Repository(discoveringFrom: repo.root, environment: repo.environment).workTreeState(excluding: excluded)
}

@Suite("Work tree state")
struct WorkTreeStateTests {
    @Test("excluded directories are left out while every change around them is found, as git status finds it")
    func aroundExcludedPaths() throws {
        let repo = try TempRepo()
        for path in [
            "code/train.py", "data/big/x.bin", "data/big/y.bin", "data/small.csv", "notes.txt", "sub/dir/deep.txt",
            "data-notes.md",
        ] {
            try repo.write(path, "original \(path)\n")
        }
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "fixture")
        let excluded = ["data/big", ".mlops"]
        #expect(try state(repo, excluding: excluded).isDirty == false)

        try repo.write("data/big/x.bin", "changed, but excluded\n")
        try repo.write("data/big/new.bin", "new, but excluded\n")
        #expect(try state(repo, excluding: excluded).isDirty == false)

        try repo.write("data/small.csv", "a sibling of the excluded directory\n")
        try FileManager.default.removeItem(atPath: repo.root + "/sub/dir/deep.txt")
        try repo.write("data/staged.txt", "staged, then deleted from the work tree\n")
        try repo.git("add", "data/staged.txt")
        try FileManager.default.removeItem(atPath: repo.root + "/data/staged.txt")
        try repo.write("data/added.txt", "staged and still there\n")
        try repo.git("add", "data/added.txt")
        try repo.write("data/untracked/u.txt", "untracked beside the excluded directory\n")
        try repo.write("data-notes.md", "a name that sorts between data and data/\n")
        let found = try state(repo, excluding: excluded)
        #expect(found.isDirty)
        // A file staged and then deleted is in neither HEAD nor the work tree: the code on disk is HEAD's there,
        // so it is no change to record (git status shows it as "AD").
        #expect(found.changedPaths == (try gitStatusPaths(repo, excluding: excluded + ["data/staged.txt"])))
        #expect(
            Set(found.changedPaths) == [
                "data/small.csv", "sub/dir/deep.txt", "data/added.txt", "data/untracked/u.txt", "data-notes.md",
            ])
        let patch = String(decoding: found.patch, as: UTF8.self)
        #expect(patch.contains("+a sibling of the excluded directory"))
        #expect(!patch.contains("excluded\n+"))
    }

    @Test("an excluded file whose parent is a file in HEAD still leaves the rest of the tree compared")
    func typeChangeAroundExcludedPath() throws {
        let repo = try TempRepo()
        try repo.write("model", "a file in HEAD\n")
        try repo.write("keep.txt", "kept\n")
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "fixture")
        try FileManager.default.removeItem(atPath: repo.root + "/model")
        try repo.write("model/weights.bin", "now a directory\n")
        let found = try state(repo, excluding: ["model/weights.bin"])
        #expect(found.changedPaths == ["model"])
        #expect(try state(repo, excluding: [""]).isDirty == false)
    }

    @Test("a tree large enough to be split across threads reports changes from every slice")
    func slicedAcrossThreads() throws {
        // 4,500 entries (over the 4,096 that make slicing worth it), all under one directory, so that directory
        // is opened up into its subdirectories to balance the slices.
        let repo = try TempRepo()
        for directory in 0..<10 {
            for file in 0..<450 { try repo.write("all/d\(directory)/f\(file).txt", "\(directory)/\(file)\n") }
        }
        try repo.write("top.txt", "top\n")
        try repo.git("add", "-A")
        try repo.git("commit", "-qm", "4501 files")
        #expect(try state(repo, excluding: [".mlops"]).isDirty == false)
        try repo.write("all/d0/f7.txt", "first slice\n")
        try repo.write("all/d9/f449.txt", "last slice\n")
        try repo.write("all/d5/new.txt", "untracked\n")
        try FileManager.default.removeItem(atPath: repo.root + "/all/d3/f3.txt")
        try repo.write("top.txt", "changed\n")
        let found = try state(repo, excluding: [".mlops"])
        #expect(
            found.changedPaths == ["all/d0/f7.txt", "all/d3/f3.txt", "all/d5/new.txt", "all/d9/f449.txt", "top.txt"])
        #expect(found.changedPaths == (try gitStatusPaths(repo, excluding: [".mlops"])))
        // The patch is whole and in path order, whichever thread diffed which slice.
        let patch = String(decoding: found.patch, as: UTF8.self)
        let headers = patch.split(separator: "\n").filter { $0.hasPrefix("diff --git ") }.map(String.init)
        #expect(headers == found.changedPaths.map { "diff --git a/\($0) b/\($0)" })
    }
}
