import Foundation
import OTKConfig
import OTKModel
import Testing

/// `[network] install/build/run` and `[plan]` size limits in profiles.
@Suite("Profile phase network and plan limits")
struct ProfilePhaseNetworkTests {
    @Test func installHostDecodesIntoPhaseNetwork() throws {
        let p = try loadProfile("""
        schema = 1
        [network]
        mode = "none"
        install = "host"
        """).profile
        #expect(p.network == .none)
        #expect(p.phaseNetwork == ["install": .host])
        #expect(p.namespaces.contains(.net))

        let install = p.forPhase("install")
        #expect(install.network == .host)
        #expect(!install.namespaces.contains(.net))
        // Only the network changes.
        #expect(install.namespaces == p.namespaces.subtracting([.net]))
        #expect(install.filesystem == p.filesystem)
        #expect(install.limits == p.limits)
        #expect(install.name == p.name)

        // The other phases keep the profile's network.
        #expect(p.forPhase("build") == p)
        #expect(p.forPhase("run") == p)
        #expect(p.forPhase("post_install") == p)
    }

    @Test func everyPhaseKeyDecodes() throws {
        let p = try loadProfile("""
        schema = 1
        [network]
        mode = "loopback"
        install = "host"
        build = "none"
        run = "loopback"
        """).profile
        #expect(p.network == .loopback)
        #expect(p.phaseNetwork == ["install": .host, "build": .none, "run": .loopback])
        let build = p.forPhase("build")
        #expect(build.network == .none)
        #expect(build.namespaces.contains(.net))
        // Same as the profile: the profile itself.
        #expect(p.forPhase("run") == p)
    }

    @Test func phaseWithoutHostFromAHostProfileGetsTheNetNamespaceBack() throws {
        let p = try loadProfile("""
        schema = 1
        [namespaces]
        net = false
        [network]
        mode = "host"
        run = "none"
        """).profile
        #expect(p.network == .host)
        #expect(!p.namespaces.contains(.net))
        let run = p.forPhase("run")
        #expect(run.network == .none)
        #expect(run.namespaces.contains(.net))
        #expect(p.forPhase("install") == p)
    }

    @Test func phaseKeysWithoutModeKeepTheDefaultNone() throws {
        let p = try loadProfile("schema = 1\n[network]\ninstall = \"loopback\"\n").profile
        #expect(p.network == .none)
        #expect(p.phaseNetwork == ["install": .loopback])
        #expect(p.forPhase("install").network == .loopback)
        #expect(p.forPhase("install").namespaces.contains(.net))
    }

    @Test func noNetworkTableMeansNoPhaseNetwork() throws {
        let p = try loadProfile("schema = 1\n").profile
        #expect(p.phaseNetwork.isEmpty)
        #expect(p.forPhase("install") == p)
    }

    @Test func phaseNetworkIsInheritedThroughExtends() throws {
        let p = try loadProfile("""
        schema = 1
        extends = "base"
        [network]
        build = "loopback"
        """, extra: ["base.toml": "schema = 1\n[network]\ninstall = \"host\"\n"]).profile
        #expect(p.phaseNetwork == ["install": .host, "build": .loopback])
    }

    @Test func unknownNetworkKeyIsAnErrorWithLine() throws {
        let e = try #require(try profileError("""
        schema = 1
        [network]
        mode = "none"
        instal = "host"
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("network.instal"))
        #expect(e.message.contains("unknown key"))
        #expect(e.message.contains("install"))
    }

    @Test(arguments: ["install", "build", "run"])
    func badPhaseNetworkValueIsAnError(phase: String) throws {
        let e = try #require(try profileError("""
        schema = 1
        [network]
        mode = "none"
        \(phase) = "internet"
        """))
        #expect(e.location?.line == 4)
        #expect(e.message.contains("network.\(phase)"))
        #expect(e.message.contains("`internet` is not one of none, loopback, proxy, host"))
    }

    @Test func allowPatternsDecodeAndCountInTheHash() throws {
        let plain = try loadProfile("schema = 1\n[network]\nmode = \"proxy\"\n")
        let allowed = try loadProfile("""
        schema = 1
        [network]
        mode = "proxy"
        allow = ["Registry.Example.TEST", "*.mirror.example.test:8443", "10.1.2.3:8080", "[::1]:3000"]
        """)
        #expect(allowed.profile.networkAllow.map(\.description)
                == ["registry.example.test", "*.mirror.example.test:8443", "10.1.2.3:8080", "[::1]:3000"])
        #expect(plain.profile.networkAllow.isEmpty)
        #expect(plain.sha256 != allowed.sha256, "the allowlist is part of what the profile does")
    }

    @Test(arguments: [("*.org", "top-level domain"), ("example.org:0", "1-65535"), ("a*.example.org", "whole first label"), ("bad host", "not a host name")])
    func badAllowPatternNamesItsLine(pattern: String, why: String) throws {
        let e = try #require(try profileError("""
        schema = 1
        [network]
        mode = "proxy"
        allow = [
          "registry.example.test",
          "\(pattern)",
        ]
        """))
        #expect(e.location?.line == 6, "\(e)")
        #expect(e.message.contains("network.allow"))
        #expect(e.message.contains(why), "\(e.message)")
    }

    @Test func shippedProfilesGiveOnlyTheInstallPhaseTheProxy() throws {
        for name in ["strict", "standard"] {
            let p = try ProfileLoader(searchPath: [shippedProfilesDir]).load(name).profile
            #expect(p.phaseNetwork["install"] == .proxy, "\(name)")
            #expect(p.forPhase("install").network == .proxy, "\(name)")
            #expect(p.forPhase("build").network != .proxy && p.forPhase("run").network != .proxy, "\(name)")
        }
    }

    @Test func phaseNetworkOfTheWrongType() throws {
        let e = try #require(try profileError("schema = 1\n[network]\ninstall = true\n"))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("expected a string"))
    }

    @Test func postInstallIsNotAProfilePhase() throws {
        // post_install runs under the build phase's profile; it has no key of its own.
        let e = try #require(try profileError("schema = 1\n[network]\npost_install = \"host\"\n"))
        #expect(e.location?.line == 3)
        #expect(e.message.contains("unknown key"))
    }

    // MARK: [plan]

    @Test func planLimitsDecode() throws {
        let p = try loadProfile("""
        schema = 1
        [plan]
        max_files = 500
        max_file_size = "2M"
        max_total_size = 67108864
        """).profile
        #expect(p.plan == PlanSizeLimits(maxFiles: 500, maxFileBytes: 2 << 20, maxTotalBytes: 64 << 20))
    }

    @Test func planLimitsDefaultToNil() throws {
        #expect(try loadProfile("schema = 1\n").profile.plan == PlanSizeLimits())
        let partial = try loadProfile("schema = 1\n[plan]\nmax_total_size = \"1G\"\n").profile.plan
        #expect(partial == PlanSizeLimits(maxFiles: nil, maxFileBytes: nil, maxTotalBytes: 1 << 30))
    }

    @Test(arguments: [
        ("max_files = 0", "plan.max_files", "out of range"),
        ("max_files = 1000001", "plan.max_files", "out of range"),
        ("max_files = \"10\"", "plan.max_files", "expected an integer"),
        ("max_file_size = \"lots\"", "plan.max_file_size", "not a size"),
        ("max_file_size = 0", "plan.max_file_size", "not a size"),
        ("max_total_size = \"2T\"", "plan.max_total_size", "not a size"),
        ("max_total_size = true", "plan.max_total_size", "expected a size"),
        ("max_size = \"1M\"", "plan.max_size", "unknown key"),
    ])
    func badPlanValueIsAnError(line: String, key: String, message: String) throws {
        let e = try #require(try profileError("schema = 1\ndescription = \"x\"\n[plan]\n\(line)\n"))
        #expect(e.location?.line == 4)
        #expect(e.message.contains(key), "\(e.message)")
        #expect(e.message.contains(message), "\(e.message)")
    }

    @Test func planMustBeATable() throws {
        let e = try #require(try profileError("schema = 1\nplan = 5\n"))
        #expect(e.location?.line == 2)
        #expect(e.message.contains("expected a table"))
    }

    @Test func shippedProfilesStillLoadWithTheNewKeys() throws {
        let loader = ProfileLoader(searchPath: [shippedProfilesDir])
        for name in ["strict", "standard"] {
            let p = try loader.load(name).profile
            for (phase, mode) in p.phaseNetwork {
                #expect(["install", "build", "run"].contains(phase))
                #expect(p.forPhase(phase).network == mode)
                #expect(p.forPhase(phase).namespaces.contains(.net) == (mode != .host))
            }
        }
    }
}
