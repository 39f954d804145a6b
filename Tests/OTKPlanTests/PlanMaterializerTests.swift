import Foundation
import OTKModel
@testable import OTKPlan
import Testing

@Suite("Plan materialization")
struct PlanMaterializerTests {
    func read(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Parses `json` and writes it, as `otk execute` will.
    func materialize(_ json: String, into parent: String, limits: PlanLimits = PlanLimits()) throws(OTKError) -> String {
        let plan = try parse(json, limits: limits)
        return try PlanMaterializer.write(plan, into: parent, slug: PlanParser.slug(plan.name))
    }

    @Test func writesTheMyAPIFixture() throws {
        let dir = try TempDir()
        let plan = try PlanParser.parse(try fixtureBytes("my-api.json"), file: "my-api.json", limits: PlanLimits())
        let out = try PlanMaterializer.write(plan, into: dir.path, slug: PlanParser.slug(plan.name))
        #expect(out == dir.path + "/my-api")
        #expect(try dir.listing() == ["my-api", "my-api/app.py", "my-api/requirements.txt"])
        #expect(try read(out + "/requirements.txt") == Array("flask\n".utf8))
        #expect(try permissions(out + "/app.py") == 0o644)
        #expect(try permissions(out) == 0o755)
    }

    @Test func modesAndNestedDirectories() throws {
        let dir = try TempDir()
        let plan = Plan(name: "n", files: [
            PlanFile(filename: "run.sh", content: Array("#!/bin/sh\necho hi\n".utf8)),
            PlanFile(filename: "src/pkg/deep/mod.py", content: Array("x = 1\n".utf8)),
            PlanFile(filename: "src/pkg/__init__.py", content: []),
            PlanFile(filename: "secret.txt", content: Array("s".utf8), mode: 0o600),
            PlanFile(filename: "readonly.txt", content: Array("r".utf8), mode: 0o444),
        ])
        let out = try PlanMaterializer.write(plan, into: dir.path, slug: "n")
        #expect(try dir.listing() == ["n", "n/readonly.txt", "n/run.sh", "n/secret.txt", "n/src", "n/src/pkg",
                                      "n/src/pkg/__init__.py", "n/src/pkg/deep", "n/src/pkg/deep/mod.py"])
        #expect(try permissions(out + "/run.sh") == 0o755)
        #expect(FileManager.default.isExecutableFile(atPath: out + "/run.sh"))
        #expect(try permissions(out + "/secret.txt") == 0o600)
        #expect(try permissions(out + "/readonly.txt") == 0o444)
        #expect(try read(out + "/readonly.txt") == Array("r".utf8))
        #expect(try permissions(out + "/src/pkg/deep") == 0o755)
        #expect(try permissions(out + "/src/pkg/deep/mod.py") == 0o644)
        #expect(try read(out + "/src/pkg/__init__.py") == [])
    }

    @Test func numbersTheDirectoryWhenTheNameExists() throws {
        let dir = try TempDir()
        let plan = Plan(name: "p", files: [PlanFile(filename: "a.txt", content: [1])])
        // An existing empty directory is never reused.
        try FileManager.default.createDirectory(atPath: dir.path + "/p", withIntermediateDirectories: false)
        #expect(try PlanMaterializer.write(plan, into: dir.path, slug: "p") == dir.path + "/p-2")
        #expect(try PlanMaterializer.write(plan, into: dir.path + "/", slug: "p") == dir.path + "/p-3")
        // A plain file takes the name too.
        try Data().write(to: URL(fileURLWithPath: dir.path + "/p-4"))
        #expect(try PlanMaterializer.write(plan, into: dir.path, slug: "p") == dir.path + "/p-5")
        #expect(try dir.listing() == ["p", "p-2", "p-2/a.txt", "p-3", "p-3/a.txt", "p-4", "p-5", "p-5/a.txt"])
    }

    @Test func symlinkAtTheSlugIsNotFollowed() throws {
        let dir = try TempDir()
        let target = try TempDir()
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/p", withDestinationPath: target.path)
        // A dangling symlink too: mkdir must not create its target.
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/p-2", withDestinationPath: target.path + "/new")
        let plan = Plan(name: "p", files: [PlanFile(filename: "a.txt", content: [1])])
        let out = try PlanMaterializer.write(plan, into: dir.path, slug: "p")
        #expect(out == dir.path + "/p-3")
        #expect(try target.listing() == [])
        #expect(try read(out + "/a.txt") == [1])
    }

    @Test func base64BinaryRoundTrips() throws {
        let dir = try TempDir()
        let bytes: [UInt8] = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } + [0, 0xFF, 0x0A, 0x0D]
        let json = planWith([fileEntry("blob.bin", Data(bytes).base64EncodedString(), extra: "\"encoding\": \"base64\"")])
        let out = try materialize(json, into: dir.path)
        #expect(try read(out + "/blob.bin") == bytes)
    }

    // MARK: Nothing is written for a bad plan

    /// Every bad-plan class, as JSON: parsing or writing fails with `.badInput`, and the parent stays empty.
    /// Size cases use small limits: at most 5 files, 10 bytes each, 25 in total.
    @Test(arguments: [
        (planWith([fileEntry("ok"), fileEntry("../x")]), "files[1].filename"),
        (planWith([fileEntry("/etc/x")]), "files[0].filename"),
        (planWith([fileEntry("a/./b")]), "files[0].filename"),
        (planWith([fileEntry("a//b")]), "files[0].filename"),
        (planWith([fileEntry("a/")]), "files[0].filename"),
        (planWith([fileEntry("a\u{0}b")]), "files[0].filename"),
        (planWith([fileEntry("a\\b")]), "files[0].filename"),
        (planWith([fileEntry("a"), fileEntry("a")]), "files[1].filename"),
        (planWith([fileEntry("a"), fileEntry("a/b")]), "files[1].filename"),
        (planWith([fileEntry("a", String(repeating: "x", count: 11))]), "files[0].code"),
        (planWith((0...5).map { fileEntry("f\($0)", "") }), "files"),
        (planWith((0..<3).map { fileEntry("f\($0)", String(repeating: "x", count: 10)) }), "files[2].code"),
        (planWith([fileEntry("a")], extra: "\"runn\": \"x\""), "runn"),
        (planWith([fileEntry("a", extra: "\"mode\": \"755\", \"x\": 1")]), "files[0].x"),
        ("{\"name\": \"t\", \"files\": \"a\"}", "files"),
        (planWith(["{\"filename\": \"a\", \"code\": 1}"]), "files[0].code"),
        (planWith([fileEntry("a", "A", extra: "\"encoding\": \"base64\"")]), "files[0].code"),
        (planWith([fileEntry("a", extra: "\"mode\": \"9\"")]), "files[0].mode"),
        (planWith([fileEntry("a", extra: "\"mode\": \"4755\"")]), "files[0].mode"),
        ("{\"name\": \"t\", \"name\": \"u\", \"files\": []}", "name"),
    ])
    func badPlanWritesNothing(_ json: String, _ path: String) throws {
        let dir = try TempDir()
        let limits = PlanLimits(maxFiles: 5, maxFileBytes: 10, maxTotalBytes: 25)
        let error = #expect(throws: OTKError.self) { _ = try materialize(json, into: dir.path, limits: limits) }
        #expect(error?.kind == .badInput)
        #expect(error?.message.hasPrefix("`\(path)`: ") == true, "message: \(error?.message ?? "")")
        #expect(try dir.listing() == [])
    }

    /// The materializer checks a `Plan` built in code itself, before creating anything.
    @Test(arguments: [
        ([PlanFile(filename: "ok", content: []), PlanFile(filename: "../x", content: [])], "files[1].filename"),
        ([PlanFile(filename: "/etc/passwd", content: [])], "files[0].filename"),
        ([PlanFile(filename: "a//b", content: [])], "files[0].filename"),
        ([PlanFile(filename: "a/", content: [])], "files[0].filename"),
        ([PlanFile(filename: "a", content: []), PlanFile(filename: "a/b", content: [])], "files[1].filename"),
        ([PlanFile(filename: "a", content: []), PlanFile(filename: "A", content: [])], "files[1].filename"),
        ([PlanFile(filename: "a", content: [], mode: 0o4755)], "files[0].mode"),
        ([PlanFile(filename: "a", content: [], mode: 0o1000)], "files[0].mode"),
    ])
    func unsafePlanInCodeWritesNothing(_ files: [PlanFile], _ path: String) throws {
        let dir = try TempDir()
        let error = #expect(throws: OTKError.self) {
            _ = try PlanMaterializer.write(Plan(name: "p", files: files), into: dir.path, slug: "p")
        }
        #expect(error?.kind == .badInput)
        #expect(error?.message.hasPrefix("`\(path)`: ") == true, "message: \(error?.message ?? "")")
        #expect(try dir.listing() == [])
    }

    @Test func badSlugOrParentWritesNothing() throws {
        let dir = try TempDir()
        let plan = Plan(name: "p", files: [PlanFile(filename: "a", content: [])])
        // `--output` may name any single directory; what is never a name of one directory is refused.
        for slug in ["", ".", "..", "a/b", "x\u{0}y", String(repeating: "x", count: 256)] {
            #expect(throws: OTKError.self) { _ = try PlanMaterializer.write(plan, into: dir.path, slug: slug) }
        }
        let error = #expect(throws: OTKError.self) {
            _ = try PlanMaterializer.write(plan, into: dir.path + "/missing", slug: "p")
        }
        #expect(error?.kind == .badInput)
        #expect(try dir.listing() == [])
    }

    // MARK: Failure midway

    @Test func failureMidwayRemovesThePartialDirectory() throws {
        let dir = try TempDir()
        try FileManager.default.createDirectory(atPath: dir.path + "/keep", withIntermediateDirectories: false)
        let plan = Plan(name: "p", files: [
            PlanFile(filename: "a/one.txt", content: [1]),
            PlanFile(filename: "a/b/two.txt", content: [2]),
            PlanFile(filename: "c/three.txt", content: [3]),
            PlanFile(filename: "four.txt", content: [4]),
        ])
        let error = #expect(throws: OTKError.self) {
            _ = try PlanMaterializer.write(plan, into: dir.path, slug: "p", injectFailure: { $0 == 2 ? ENOSPC : nil })
        }
        #expect(error?.kind == .setupFailed)
        #expect(error?.errno == ENOSPC)
        #expect(error?.message.contains("`files[2]` (`c/three.txt`)") == true, "message: \(error?.message ?? "")")
        #expect(error?.message.contains("was removed") == true)
        #expect(try dir.listing() == ["keep"])
    }
}
