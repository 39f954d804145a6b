import Foundation
import OTKConfig
import OTKModel
import Testing

@Suite("Shipped profiles")
struct ShippedProfileTests {
    let loader = ProfileLoader(searchPath: [shippedProfilesDir])

    static func isSHA256(_ s: String) -> Bool {
        guard s.hasPrefix("sha256:") else { return false }
        let hex = s.dropFirst("sha256:".count)
        return hex.count == 64 && hex.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    @Test func strictLoadsWithItsKeyValues() throws {
        let loaded = try loader.load("strict")
        let p = loaded.profile
        #expect(p.name == "strict")
        #expect(p.sources == [shippedProfilesDir + "/strict.toml"])
        #expect(p.network == .none)
        #expect(p.namespaces == Set(NamespaceKind.allCases))
        #expect(p.identity == Profile.Identity(uid: 1000, gid: 1000, userName: "sandbox", hostname: "otk"))
        #expect(p.filesystem.rootSizeBytes == 8 << 20)
        #expect(p.filesystem.rootReadOnly)
        #expect(p.filesystem.workspace == "/workspace")
        #expect(p.filesystem.proc && p.filesystem.dev && p.filesystem.etcFiles)
        #expect(p.filesystem.readWrite.isEmpty)
        #expect(p.filesystem.hidden.isEmpty)
        #expect(!p.filesystem.readOnly.contains { $0.target == "/etc" })
        let usr = try #require(p.filesystem.readOnly.first)
        #expect(usr.source == "/usr" && usr.target == "/usr" && !usr.optional)
        let bin = try #require(p.filesystem.readOnly.first { $0.target == "/bin" })
        #expect(bin.optional)
        #expect(p.filesystem.tmpfs.map(\.path) == ["/tmp", "/dev/shm", "/home/sandbox"])
        #expect(p.filesystem.tmpfs.map(\.sizeBytes) == [256 << 20, 64 << 20, 64 << 20])
        #expect(p.filesystem.tmpfs.map(\.mode) == [0o1777, 0o1777, 0o700])
        #expect(p.environment.pass == ["TERM", "LANG", "LC_*", "TZ"])
        #expect(p.environment.set["PATH"] == "/usr/local/bin:/usr/bin:/bin")
        #expect(p.environment.set["HOME"] == "/home/sandbox")
        #expect(Self.isSHA256(loaded.sha256))
    }

    @Test func standardExtendsStrict() throws {
        let loaded = try loader.load("standard")
        let p = loaded.profile
        #expect(p.name == "standard")
        #expect(p.sources == [shippedProfilesDir + "/standard.toml", shippedProfilesDir + "/strict.toml"])
        #expect(p.network == .loopback)
        // Inherited from strict.
        #expect(p.identity == Profile.Identity(uid: 1000, gid: 1000, userName: "sandbox", hostname: "otk"))
        #expect(p.namespaces == Set(NamespaceKind.allCases))
        #expect(p.environment.set["PATH"] == "/usr/local/bin:/usr/bin:/bin")
        #expect(p.filesystem.workspace == "/workspace")
        // Its own.
        #expect(p.filesystem.rootSizeBytes == 16 << 20)
        #expect(p.filesystem.readOnly.contains { $0.target == "/etc" && !$0.optional })
        #expect(p.filesystem.readOnly.contains { $0.target == "/opt" && $0.optional })
        #expect(!p.filesystem.readOnly.contains { $0.target == "/etc/ld.so.cache" }, "arrays replace, they do not append")
        #expect(p.filesystem.tmpfs.map(\.sizeBytes) == [1 << 30, 256 << 20, 256 << 20])
        #expect(p.environment.pass.contains("EDITOR"))
        #expect(Self.isSHA256(loaded.sha256))
    }

    @Test func hashesDifferAndAreStable() throws {
        let strict1 = try loader.load("strict").sha256
        let strict2 = try loader.load("strict").sha256
        let standard1 = try loader.load("standard").sha256
        let standard2 = try loader.load("standard").sha256
        #expect(strict1 == strict2)
        #expect(standard1 == standard2)
        #expect(strict1 != standard1)
    }

    @Test func loadingByPathEqualsLoadingByName() throws {
        let byName = try loader.load("strict")
        let byPath = try ProfileLoader(searchPath: []).load(shippedProfilesDir + "/strict.toml")
        #expect(byName.profile == byPath.profile)
        #expect(byName.sha256 == byPath.sha256)
    }

    @Test func listFindsBothProfiles() {
        let names = loader.list().map(\.name)
        #expect(names.contains("strict"))
        #expect(names.contains("standard"))
    }
}

@Suite("ProfileLoader")
struct ProfileLoaderTests {
    @Test func minimalProfileGetsDefaults() throws {
        let p = try loadProfile("schema = 1\n").profile
        #expect(p.name == "p")
        #expect(p.network == .none)
        #expect(p.namespaces == Set(NamespaceKind.allCases))
        #expect(p.identity.uid == 1000 && p.identity.gid == 1000)
        #expect(p.filesystem.rootSizeBytes == 8 << 20)
        #expect(p.filesystem.workspace == "/workspace")
        #expect(p.environment.pass.isEmpty && p.environment.set.isEmpty)
    }

    @Test func hashIgnoresLayoutButNotContent() throws {
        let a = try loadProfile("schema = 1\n[identity]\nuid = 5\n")
        // Same meaning, different text (comments, dotted key, order).
        let b = try loadProfile("# comment\nidentity.uid = 5\nschema = 1\n")
        let c = try loadProfile("schema = 1\n[identity]\nuid = 6\n")
        #expect(a.sha256 == b.sha256)
        #expect(a.sha256 != c.sha256)
    }

    @Test func hashDoesNotDependOnSourceLocations() throws {
        let a = try loadProfile("schema = 1\n[filesystem]\nread_only = [\"/usr\"]\n")
        let b = try loadProfile("schema = 1\n\n\n[filesystem]\nread_only = [\n  \"/usr\",\n]\n")
        #expect(a.profile.filesystem.readOnly.first?.location != b.profile.filesystem.readOnly.first?.location)
        #expect(a.sha256 == b.sha256)
    }

    @Test func bindEntryForms() throws {
        let p = try loadProfile("""
        schema = 1
        [filesystem]
        read_only = ["/usr", "/opt?", "/srv/data:/data", { source = "/var/lib/x", target = "/x", optional = true }]
        read_write = ["{workspace}/cache:/cache"]
        """).profile
        let ro = p.filesystem.readOnly
        #expect(ro.map(\.source) == ["/usr", "/opt", "/srv/data", "/var/lib/x"])
        #expect(ro.map(\.target) == ["/usr", "/opt", "/data", "/x"])
        #expect(ro.map(\.optional) == [false, true, false, true])
        #expect(ro.allSatisfy { $0.location?.line == 3 })
        #expect(p.filesystem.readWrite.map(\.source) == ["{workspace}/cache"])
        #expect(p.filesystem.readWrite.first?.location?.line == 4)
    }

    @Test func bindLocationsPointAtTheirElementLines() throws {
        let p = try loadProfile("""
        schema = 1
        [filesystem]
        read_only = [
          "/usr",
          "/opt?",
          "/srv:/data",
        ]
        """).profile
        #expect(p.filesystem.readOnly.map { $0.location?.line } == [4, 5, 6])
    }

    @Test func extendsByRelativePath() throws {
        let dir = try FixtureDir()
        try FileManager.default.createDirectory(atPath: dir.path + "/base", withIntermediateDirectories: true)
        let base = try dir.write("base/parent.toml", "schema = 1\n[identity]\nhostname = \"from-parent\"\n")
        let child = try dir.write("child.toml", "schema = 1\nextends = \"base/parent.toml\"\n")
        let p = try ProfileLoader(searchPath: []).load(child).profile
        #expect(p.name == "child")
        #expect(p.sources == [child, base])
        #expect(p.identity.hostname == "from-parent")
    }

    @Test func extendsByNameLooksInTheChildsDirectoryFirst() throws {
        let first = try FixtureDir()
        let second = try FixtureDir()
        try first.write("child.toml", "schema = 1\nextends = \"parent\"\n")
        try first.write("parent.toml", "schema = 1\n[identity]\nhostname = \"near\"\n")
        try second.write("parent.toml", "schema = 1\n[identity]\nhostname = \"far\"\n")
        let p = try ProfileLoader(searchPath: [second.path, first.path]).load("child").profile
        #expect(p.identity.hostname == "near")
    }

    @Test func unknownProfileNameIsBadInput() throws {
        let dir = try FixtureDir()
        try dir.write("one.toml", "schema = 1\n")
        let error = #expect(throws: OTKError.self) { _ = try dir.loader.load("two") }
        #expect(error?.kind == .badInput)
        #expect(error?.message.contains("two") == true)
        #expect(error?.remedy?.contains("one") == true)
    }

    @Test func profileNameWithBadCharactersIsRefused() throws {
        let dir = try FixtureDir()
        let error = #expect(throws: OTKError.self) { _ = try dir.loader.load("a b") }
        #expect(error?.kind == .badInput)
    }

    @Test func extendsChainDeeperThanTheMaximumIsRefused() throws {
        let dir = try FixtureDir()
        let n = ProfileLoader.maximumDepth
        for i in 0..<n { try dir.write("p\(i).toml", "schema = 1\nextends = \"p\(i + 1)\"\n") }
        try dir.write("p\(n).toml", "schema = 1\n")
        let error = #expect(throws: OTKError.self) { _ = try dir.loader.load("p0") }
        #expect(error?.message.contains("deeper") == true)
        // One less is fine.
        let ok = try dir.loader.load("p1")
        #expect(ok.profile.sources.count == n)
    }

    @Test func isPathDistinguishesNamesFromFiles() {
        #expect(!ProfileLoader.isPath("strict"))
        #expect(ProfileLoader.isPath("./mine.toml"))
        #expect(ProfileLoader.isPath("mine.toml"))
        #expect(ProfileLoader.isPath("/etc/otk/x"))
    }

    @Test func defaultSearchPathStartsWithTheEnvironmentAndEndsWithEtc() {
        let path = ProfileLoader.defaultSearchPath(environment: ["OTK_PROFILE_PATH": "/a:/b"], executable: "/nonexistent/bin/otk")
        #expect(Array(path.prefix(2)) == ["/a", "/b"])
        #expect(path.last == "/etc/otk/profiles")
    }
}
