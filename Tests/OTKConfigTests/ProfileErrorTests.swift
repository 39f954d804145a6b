import Foundation
import OTKConfig
import OTKModel
import Testing

/// Every profile error names the file and the line of the offending key, and the key itself.
@Suite("Profile errors carry file and line")
struct ProfileErrorTests {
    @Test func unknownTopLevelKey() throws {
        let e = try #require(try profileError("""
        schema = 1
        description = "x"
        netwrok = "none"
        """))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("netwrok"))
        #expect(e.message.contains("unknown key"))
    }

    @Test func unknownKeyInFilesystem() throws {
        let e = try #require(try profileError("""
        schema = 1

        [filesystem]
        root_size = "8M"
        read_onyl = ["/usr"]
        """))
        #expect(e.location?.line == 5)
        #expect(e.message.contains("filesystem.read_onyl"))
    }

    @Test func unknownKeyInDottedForm() throws {
        let e = try #require(try profileError("""
        schema = 1
        filesystem.proc = true
        filesystem.bogus = 1
        """))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("filesystem.bogus"))
    }

    @Test func wrongType() throws {
        let e = try #require(try profileError("""
        schema = 1
        [identity]
        gid = 100
        uid = "x"
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("identity.uid"))
        #expect(e.message.contains("integer"))
        #expect(e.message.contains("string"))
    }

    @Test(arguments: ["-1", "4294967295"])
    func uidOutOfRange(value: String) throws {
        let e = try #require(try profileError("""
        schema = 1
        [identity]
        user = "me"
        uid = \(value)
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("identity.uid"))
        #expect(e.message.contains("out of range"))
    }

    @Test func largestValidUIDIsAccepted() throws {
        let p = try loadProfile("schema = 1\n[identity]\nuid = 4294967294\ngid = 0\n").profile
        #expect(p.identity.uid == 4_294_967_294)
        #expect(p.identity.gid == 0)
    }

    @Test(arguments: ["user", "mount"])
    func userAndMountNamespacesCannotBeTurnedOff(kind: String) throws {
        let e = try #require(try profileError("""
        schema = 1
        [namespaces]
        pid = true
        \(kind) = false
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("namespaces.\(kind)"))
    }

    @Test func badNetworkMode() throws {
        let e = try #require(try profileError("""
        schema = 1
        [network]

        mode = "bridge"
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("network.mode"))
        #expect(e.message.contains("bridge"))
    }

    @Test(arguments: ["\"12Q\"", "\"0\"", "0", "\"2T\"", "\"\"", "\"-1M\""])
    func badRootSize(value: String) throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        root_read_only = true
        root_size = \(value)
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("filesystem.root_size"))
    }

    @Test
    func badSizeMessageShowsTheValueAsWritten() throws {
        let e = try #require(try profileError("schema = 1\n[filesystem]\nroot_size = \"12Q\"\n"))
        #expect(!e.message.contains("string("))
        #expect(e.message.contains("\"12Q\" is not a size"))
    }

    @Test func tmpfsEntryWithUnknownKey() throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        tmpfs = [{ path = "/tmp", sise = "1M" }]
        """))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("filesystem.tmpfs"))
        #expect(e.message.contains("sise"))
    }

    @Test func tmpfsEntryWithBadMode() throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        tmpfs = [
          { path = "/tmp", size = "1M", mode = "1777" },
          { path = "/scratch", mode = "999" },
        ]
        """))
        #expect(e.location?.line == 5, "the line of the entry, not of `tmpfs`")
        #expect(e.message.contains("/scratch"))
        #expect(e.message.contains("999"))
        #expect(e.message.contains("mode"))
    }

    @Test func tmpfsEntryWithBadSize() throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        tmpfs = [
          { path = "/tmp", size = "2T" },
        ]
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("/tmp"))
        #expect(e.message.contains("size"))
    }

    @Test(arguments: [
        ("\"/srv:/data/../etc\"", "/data/../etc"),
        ("\"/srv:data\"", "data"),
        ("{ source = \"/srv\", target = \"/a/./b\" }", "/a/./b"),
        ("\"/srv:/data/\"", "/data/"),
    ])
    func badBindTarget(entry: String, target: String) throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        read_only = [
          "/usr",
          \(entry),
        ]
        """))
        #expect(e.location?.line == 5)
        #expect(e.message.contains("filesystem.read_only"))
        #expect(e.message.contains("`\(target)`"))
    }

    @Test func relativeBindSource() throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        read_write = ["usr/lib"]
        """))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("filesystem.read_write"))
        #expect(e.message.contains("usr/lib"))
    }

    @Test func duplicateBindTarget() throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        read_only = [
          "/usr",
          "/opt",
        ]
        read_write = [
          "/usr",
        ]
        """))
        // The second entry, where the duplicate is written.
        #expect(e.location?.line == 8)
        #expect(e.message.contains("`/usr` is mounted twice"))
    }

    @Test
    func duplicateBindTargetWrittenAsSourceColonTarget() throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        read_only = [
          "/usr",
          "/opt/usr:/usr",
        ]
        """))
        #expect(e.location?.line == 5)
    }

    @Test func bindOverTheWorkspaceIsRefused() throws {
        let e = try #require(try profileError("""
        schema = 1
        [filesystem]
        workspace = "/work"
        read_write = ["/work"]
        """))
        // The bind's own line.
        #expect(e.location?.line == 4)
        #expect(e.message.contains("/work"))
        #expect(e.message.contains("workspace"))
    }

    @Test func missingSchema() throws {
        let e = try #require(try profileError("""
        description = "no schema"
        [network]
        mode = "none"
        """))
        #expect(e.location?.line == 1)
        #expect(e.message.contains("schema"))
    }

    @Test func unsupportedSchema() throws {
        let e = try #require(try profileError("""
        # a comment first
        schema = 2
        """))
        #expect(e.location?.line == 2)
        #expect(e.message.contains("schema"))
        #expect(e.message.contains("2"))
    }

    @Test func missingSchemaInTheParentNamesTheParent() throws {
        let (e, dir) = try #require(try loadError([
            "child.toml": "schema = 1\nextends = \"parent\"\n",
            "parent.toml": "description = \"x\"\n",
        ], load: "child"))
        #expect(e.location?.file == dir + "/parent.toml")
        #expect(e.location?.line == 1)
        #expect(e.message.contains("schema"))
    }

    @Test func extendsOfAMissingProfile() throws {
        let e = try #require(try profileError("""
        schema = 1
        description = "child"
        extends = "nowhere"
        """))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("nowhere"))
    }

    @Test func extendsOfAMissingFile() throws {
        let e = try #require(try profileError("""
        schema = 1

        extends = "./nowhere.toml"
        """))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("nowhere.toml"))
    }

    @Test func extendsThatIsNotAString() throws {
        let e = try #require(try profileError("schema = 1\nextends = 3\n"))
        #expect(e.location?.line == 2)
        #expect(e.message.contains("extends"))
    }

    @Test func extendsCycle() throws {
        let (e, dir) = try #require(try loadError([
            "a.toml": "schema = 1\nextends = \"b\"\n",
            "b.toml": "schema = 1\n\ndescription = \"b\"\nextends = \"a\"\n",
        ], load: "a"))
        #expect(e.kind == .badInput)
        #expect(e.message.contains("cycle"))
        #expect(e.message.contains("a.toml -> \(dir)/b.toml -> \(dir)/a.toml"))
        // The extends line that closes the cycle.
        #expect(e.location?.file == dir + "/b.toml")
        #expect(e.location?.line == 4)
    }

    @Test func extendsOfItself() throws {
        let (e, dir) = try #require(try loadError(["a.toml": "schema = 1\nextends = \"a\"\n"], load: "a"))
        #expect(e.message.contains("cycle"))
        #expect(e.location?.file == dir + "/a.toml")
        #expect(e.location?.line == 2)
    }

    @Test func tomlSyntaxError() throws {
        let e = try #require(try profileError("""
        schema = 1
        [identity]
        uid = 1000
        user = "sandbox
        hostname = "otk"
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("TOML syntax error"))
    }

    @Test func thePidNamespaceIsMandatory() throws {
        let e = try #require(try profileError("""
        schema = 1
        [namespaces]
        pid = false

        [filesystem]
        proc = false
        """))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("namespaces.pid"))
        #expect(e.message.contains("pid 1"))
    }

    @Test func workspaceSourcesMayNotClimbOut() throws {
        for bad in ["{workspace}/../etc", "{workspace}/./x", "{workspace}//x", "{workspace}x", "{workspace}/"] {
            let e = try #require(try profileError("schema = 1\n[filesystem]\nread_only = [\"\(bad):/mnt/x\"]\n"), "\(bad) was accepted")
            #expect(e.location?.line == 3)
            #expect(e.message.contains("not a clean absolute path"))
        }
    }

    @Test func loopbackNeedsTheNetNamespace() throws {
        let e = try #require(try profileError("""
        schema = 1
        [namespaces]
        net = false
        [network]
        mode = "loopback"
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("network"))
        #expect(e.message.contains("namespaces.net"))
    }

    @Test func hostNetworkWithNetNamespaceIsRefused() throws {
        let e = try #require(try profileError("""
        schema = 1
        [network]
        mode = "host"
        """))
        #expect(e.location?.line == 2)
        #expect(e.message.contains("host"))
    }

    @Test func hostNetworkWithoutNetNamespaceIsFine() throws {
        let p = try loadProfile("schema = 1\n[namespaces]\nnet = false\n[network]\nmode = \"host\"\n").profile
        #expect(p.network == .host)
        #expect(!p.namespaces.contains(.net))
    }

    @Test func errorInAParentIsReportedInTheParent() throws {
        let (e, dir) = try #require(try loadError([
            "child.toml": "schema = 1\nextends = \"parent\"\n",
            "parent.toml": "schema = 1\n[identity]\n\nuid = \"x\"\n",
        ], load: "child"))
        #expect(e.location?.file == dir + "/parent.toml")
        #expect(e.location?.line == 4)
    }

    @Test func badEnvironmentNames() throws {
        let e1 = try #require(try profileError("""
        schema = 1
        [env]
        pass = [
          "TERM",
          "BAD-NAME",
        ]
        """))
        #expect(e1.location?.line == 5)
        #expect(e1.message.contains("BAD-NAME"))

        let e2 = try #require(try profileError("""
        schema = 1
        [env.set]
        OK = "1"
        N = 2
        """))
        #expect(e2.location?.line == 4)
        #expect(e2.message.contains("env.set.N"))
    }

    @Test func badIdentityNames() throws {
        let e1 = try #require(try profileError("schema = 1\n[identity]\nuser = \"Root\"\n"))
        #expect(e1.location?.line == 3)
        #expect(e1.message.contains("identity.user"))
        let e2 = try #require(try profileError("schema = 1\n[identity]\nhostname = \"a b\"\n"))
        #expect(e2.location?.line == 3)
        #expect(e2.message.contains("identity.hostname"))
    }

    @Test func descriptionIsReportedWithLine() throws {
        let e = try #require(try profileError("schema = 1\ndescription = 5\n"))
        #expect(e.location?.line == 2)
        #expect(e.message.contains("description"))
    }

    @Test
    func crlfProfileErrorsCarryTheLine() throws {
        let e = try #require(try profileError("schema = 1\r\n[identity]\r\nuid = \"x\"\r\n"))
        #expect(e.location?.line == 3)
    }

    @Test func errorDescriptionStartsWithFileAndLine() throws {
        let e = try #require(try profileError("schema = 1\nbogus = 1\n"))
        let location = try #require(e.location)
        #expect(e.description.hasPrefix("\(location.file):2: "))
    }
}
