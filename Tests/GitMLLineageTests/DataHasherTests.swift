import Foundation
import GitMLStore
import GitMLTestSupport
import Testing

@testable import GitMLLineage

private func workspace(_ repo: TempRepo) throws -> Workspace {
    let workspace = try Workspace(currentDirectory: repo.root, environment: repo.environment, requireInitialized: false)
    _ = try Initializer.initialize(workspace)
    return workspace
}

/// Digests with no cache at all: every byte read again.
private func uncached(_ workspace: Workspace, _ path: String) throws -> DataPointer {
    try DataHasher(workspace: workspace, useCache: false, writeManifests: false).hash([path])[0]
}

private func treeCacheRows(_ workspace: Workspace) throws -> Int {
    var count = 0
    try workspace.database.get().prepare("SELECT count(*) FROM tree_cache").query { count = Int($0.integer(0)) }
    return count
}

/// Files written now are inside the racily-clean window and are not cached; this waits it out.
private func waitOutRacyWindow() {
    Thread.sleep(forTimeInterval: Double(FileStat.racyWindowNanoseconds) / 1e9 + 0.1)
}

@Suite("Data hashing and its caches")
struct DataHasherTests {
    @Test("a manifest lists paths in byte order, a directory sorting as if its name ended in a slash")
    func manifestOrder() throws {
        let repo = try TempRepo()
        let workspace = try workspace(repo)
        for path in ["data/a-b", "data/a/x", "data/a.txt", "data/B", "data/é/z", "data/e", "data/a0"] {
            try repo.write(path, path)
        }
        let pointer = try DataHasher(workspace: workspace).hash(["data"])[0]
        let paths = try #require(pointer.manifest).entries.map(\.path)
        #expect(paths == ["B", "a-b", "a.txt", "a/x", "a0", "e", "é/z"])
        #expect(paths == paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    @Test("an unchanged directory is answered from its fingerprint; any change gives the digest a full read gives")
    func directoryFingerprint() throws {
        let repo = try TempRepo()
        let workspace = try workspace(repo)
        for i in 0..<20 { try repo.write("data/part-\(i).csv", "row \(i)\n") }
        try repo.write("data/nested/deep.csv", "deep\n")
        waitOutRacyWindow()
        let first = try DataHasher(workspace: workspace).hash(["data"])[0]
        #expect(try treeCacheRows(workspace) == 1)
        let again = try DataHasher(workspace: workspace).hash(["data"])[0]
        #expect(again.sha256 == first.sha256)
        #expect(again.files == 21 && again.size == first.size)
        #expect(again.manifest == nil, "answered from the tree cache, without listing the files again")
        #expect(try DataHasher(workspace: workspace).manifest(of: again) == first.manifest)
        #expect(first.sha256 == (try uncached(workspace, "data")).sha256)

        // Same size, new bytes.
        try repo.write("data/nested/deep.csv", "DEEP\n")
        let edited = try DataHasher(workspace: workspace).hash(["data"])[0]
        #expect(edited.sha256 != first.sha256)
        #expect(edited.sha256 == (try uncached(workspace, "data")).sha256)

        try repo.write("data/added.csv", "new\n")
        let added = try DataHasher(workspace: workspace).hash(["data"])[0]
        #expect(added.files == 22)
        #expect(added.sha256 == (try uncached(workspace, "data")).sha256)

        try FileManager.default.removeItem(atPath: repo.root + "/data/added.csv")
        try repo.write("data/nested/deep.csv", "deep\n")
        #expect(try DataHasher(workspace: workspace).hash(["data"])[0].sha256 == first.sha256)
    }

    @Test("a fingerprint whose manifest file is gone is not trusted, and the manifest is written again")
    func missingManifest() throws {
        let repo = try TempRepo()
        let workspace = try workspace(repo)
        try repo.write("data/a.csv", "a\n")
        waitOutRacyWindow()
        let first = try DataHasher(workspace: workspace).hash(["data"])[0]
        let manifest = "\(workspace.manifestsDirectory)/\(first.sha256)"
        try FileManager.default.removeItem(atPath: manifest)
        let again = try DataHasher(workspace: workspace).hash(["data"])[0]
        #expect(again.sha256 == first.sha256)
        #expect(again.manifest != nil)
        #expect(FileManager.default.fileExists(atPath: manifest))
    }

    @Test("git-lfs pointer files inside a directory are named, from the stat cache as from a fresh read")
    func lfsPointersCached() throws {
        let repo = try TempRepo()
        let workspace = try workspace(repo)
        let oid = String(repeating: "ab", count: 32)
        try repo.write(
            "data/weights.bin", "version https://git-lfs.github.com/spec/v1\noid sha256:\(oid)\nsize 12345\n")
        try repo.write("data/readme.txt", "not a pointer\n")
        waitOutRacyWindow()
        for attempt in 0..<3 {
            if attempt == 2 { try repo.write("data/other.txt", "forces the per-file path with a warm stat cache\n") }
            let pointer = try DataHasher(workspace: workspace).hash(["data"])[0]
            #expect(
                pointer.lfsPointers == [
                    .object([
                        "oid": .string("sha256:" + oid), "size": .int(12345), "pointer": .bool(true),
                        "path": .string("weights.bin"),
                    ])
                ], "attempt \(attempt)")
        }
    }
}
