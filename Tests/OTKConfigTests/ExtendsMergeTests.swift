import Foundation
import OTKConfig
import OTKModel
import Testing

@Suite("extends merging")
struct ExtendsMergeTests {
    static let parent = """
    schema = 1
    description = "parent"
    [identity]
    uid = 1000
    gid = 1000
    user = "parent"
    hostname = "parent-host"
    [filesystem]
    root_size = "8M"
    read_only = ["/usr", "/opt"]
    hidden = ["/usr/secret"]
    [env]
    pass = ["TERM"]
    [env.set]
    A = "parent-a"
    B = "parent-b"
    """

    func load(child: String) throws -> Profile {
        let dir = try FixtureDir()
        try dir.write("parent.toml", Self.parent)
        try dir.write("child.toml", child)
        return try dir.loader.load("child").profile
    }

    @Test func childOverridesAScalar() throws {
        let p = try load(child: """
        schema = 1
        extends = "parent"
        description = "child"
        [filesystem]
        root_size = "32M"
        """)
        #expect(p.description == "child")
        #expect(p.filesystem.rootSizeBytes == 32 << 20)
    }

    @Test func tablesMergeKeyByKey() throws {
        let p = try load(child: """
        schema = 1
        extends = "parent"
        [identity]
        uid = 2000
        [env.set]
        B = "child-b"
        C = "child-c"
        """)
        #expect(p.identity.uid == 2000)
        #expect(p.identity.gid == 1000)
        #expect(p.identity.userName == "parent")
        #expect(p.identity.hostname == "parent-host")
        #expect(p.environment.set == ["A": "parent-a", "B": "child-b", "C": "child-c"])
        #expect(p.environment.pass == ["TERM"])
        // Tables the child does not mention at all are inherited whole.
        #expect(p.filesystem.readOnly.map(\.target) == ["/usr", "/opt"])
        #expect(p.filesystem.hidden == ["/usr/secret"])
    }

    @Test func arraysReplaceWhole() throws {
        let p = try load(child: """
        schema = 1
        extends = "parent"
        [filesystem]
        read_only = ["/srv"]
        hidden = []
        [env]
        pass = ["LANG"]
        """)
        #expect(p.filesystem.readOnly.map(\.target) == ["/srv"])
        #expect(p.filesystem.hidden.isEmpty)
        #expect(p.environment.pass == ["LANG"])
        // Sibling keys of the replaced arrays are still inherited.
        #expect(p.filesystem.rootSizeBytes == 8 << 20)
        #expect(p.environment.set["A"] == "parent-a")
    }

    @Test func childWinsOverAThreeLevelChain() throws {
        let dir = try FixtureDir()
        try dir.write("a.toml", "schema = 1\n[identity]\nuid = 1\ngid = 1\nhostname = \"a\"\n")
        try dir.write("b.toml", "schema = 1\nextends = \"a\"\n[identity]\nuid = 2\ngid = 2\n")
        try dir.write("c.toml", "schema = 1\nextends = \"b\"\n[identity]\nuid = 3\n")
        let p = try dir.loader.load("c").profile
        #expect(p.identity.uid == 3)
        #expect(p.identity.gid == 2)
        #expect(p.identity.hostname == "a")
        #expect(p.sources == [dir.path + "/c.toml", dir.path + "/b.toml", dir.path + "/a.toml"])
    }

    @Test func inheritedBindKeepsTheParentsLocation() throws {
        let dir = try FixtureDir()
        try dir.write("parent.toml", Self.parent)
        try dir.write("child.toml", "schema = 1\nextends = \"parent\"\n")
        let p = try dir.loader.load("child").profile
        let usr = try #require(p.filesystem.readOnly.first)
        #expect(usr.location == OTKModel.SourceLocation(file: dir.path + "/parent.toml", line: 10))
    }

    @Test func layeredConfigValueMergesDirectly() throws {
        let child = try ConfigDocument.parse("[t]\na = 2\nlist = [3]\n[t.sub]\nx = 1\n", file: "child")
        let parent = try ConfigDocument.parse("s = \"p\"\n[t]\na = 1\nb = 1\nlist = [1, 2]\n[t.sub]\ny = 2\n", file: "parent")
        let config = LayeredConfig(layers: [child, parent])
        #expect(config.value(at: ["s"]) == .string("p"))
        #expect(config.value(at: ["t", "a"]) == .integer(2))
        #expect(config.value(at: ["t", "b"]) == .integer(1))
        #expect(config.value(at: ["t", "list"]) == .array([.integer(3)]))
        #expect(config.value(at: ["t", "sub"]) == .table(["x": .integer(1), "y": .integer(2)]))
        #expect(config.value(at: ["missing"]) == nil)
        #expect(config.definingFile(of: ["t", "b"]) == "parent")
        #expect(config.definingFile(of: ["t", "a"]) == "child")
        #expect(config.location(of: ["t", "b"]) == OTKModel.SourceLocation(file: "parent", line: 4))
        #expect(config.location(of: ["t", "a"]) == OTKModel.SourceLocation(file: "child", line: 2))
    }
}
