import Foundation
import OTKConfig
import OTKModel
import Testing

/// Tests/Fixtures/seccomp, found from this file's own path.
private let seccompFixtures: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()   // OTKConfigTests
    .deletingLastPathComponent()   // Tests
    .appendingPathComponent("Fixtures/seccomp").path

private let inlineFile = "/profiles/inline.json"

private func fixture(_ name: String) throws -> (path: String, bytes: [UInt8]) {
    let path = seccompFixtures + "/" + name
    return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
}

private func parseFixture(_ name: String, arch: String = "x86_64", kernel: (Int, Int) = (6, 8)) throws -> SeccompPolicy {
    let (path, bytes) = try fixture(name)
    return try DockerSeccomp.parse(bytes, file: path, arch: arch, kernel: kernel)
}

private func parse(_ json: String, arch: String = "x86_64", kernel: (Int, Int) = (6, 8)) throws -> SeccompPolicy {
    try DockerSeccomp.parse(Array(json.utf8), file: inlineFile, arch: arch, kernel: kernel)
}

/// A profile whose only syscall entry is `entry`.
private func withRule(_ entry: String) -> String {
    "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [\(entry)]}"
}

/// A profile whose only rule has the single argument condition `arg`.
private func withArg(_ arg: String) -> String {
    withRule("{\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [\(arg)]}")
}

/// Parses `bytes` and returns the error, checking it is a bad-input error located in the file.
private func importError(bytes: [UInt8], sourceLocation: Testing.SourceLocation = #_sourceLocation) -> OTKError? {
    let error = #expect(throws: OTKError.self, sourceLocation: sourceLocation) {
        _ = try DockerSeccomp.parse(bytes, file: inlineFile, arch: "x86_64", kernel: (6, 8))
    }
    guard let error else { return nil }
    #expect(error.kind == .badInput, sourceLocation: sourceLocation)
    #expect(error.location?.file == inlineFile, sourceLocation: sourceLocation)
    return error
}

private func importError(_ json: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> OTKError? {
    importError(bytes: Array(json.utf8), sourceLocation: sourceLocation)
}

@Suite("DockerSeccomp: importing Docker/OCI seccomp JSON")
struct DockerSeccompTests {
    // MARK: The fixture

    @Test func dockerLikeFixtureOnX86_64() throws {
        let policy = try parseFixture("docker-like.json")
        #expect(policy.defaultAction == .errno(1))
        #expect(policy.origin == seccompFixtures + "/docker-like.json")
        // 10 entries; dropped: the CAP_SYS_ADMIN rule, minKernel 99.0, arches ["arm64"].
        #expect(policy.rules.count == 7)
        #expect(policy.rules.map { $0.location?.line } == [20, 88, 105, 121, 175, 201, 216])
        #expect(policy.rules.allSatisfy { $0.location?.file == seccompFixtures + "/docker-like.json" })

        let allow = policy.rules[0]
        #expect(allow.action == .allow)
        #expect(allow.names.count == 59)
        #expect(allow.names.first == "accept")
        #expect(allow.names.last == "writev")
        #expect(allow.names.contains("rt_sigreturn"))
        #expect(allow.conditions.isEmpty)
        #expect(allow.comment == "")

        #expect(policy.rules[1] == SeccompRule(names: ["personality"], action: .allow,
                                               conditions: [SeccompCondition(index: 0, op: .equal, value: 0)],
                                               comment: "personality(PER_LINUX)",
                                               location: SourceLocation(file: policy.origin, line: 88)))
        #expect(policy.rules[2].conditions == [SeccompCondition(index: 0, op: .equal, value: 0xFFFF_FFFF)])

        let clone = policy.rules[3]
        #expect(clone.names == ["clone"])
        #expect(clone.action == .allow)
        #expect(clone.conditions == [SeccompCondition(index: 0, op: .maskedEqual, value: 0x7E02_0000, valueTwo: 0)])
        #expect(clone.comment == "clone without new namespaces")

        #expect(policy.rules[4].names == ["ptrace"])          // includes.minKernel 4.8 <= 6.8
        #expect(policy.rules[5].names == ["arch_prctl"])      // includes.arches ["amd64", "x32"]
        #expect(policy.rules[6].names == ["clone3"])
        #expect(policy.rules[6].action == .errno(38))
        #expect(policy.rules[6].comment == "ENOSYS, so that the C library falls back to clone")

        let all = Set(policy.rules.flatMap(\.names))
        for skipped in ["mount", "umount2", "setns", "unshare", "futex_waitv", "sync_file_range2"] {
            #expect(!all.contains(skipped), "\(skipped) should have been skipped")
        }
    }

    @Test func dockerLikeFixtureOnAarch64WithANewKernel() throws {
        let policy = try parseFixture("docker-like.json", arch: "aarch64", kernel: (99, 0))
        let names = policy.rules.map { $0.names.first ?? "" }
        #expect(names == ["accept", "personality", "personality", "clone", "futex_waitv", "ptrace", "sync_file_range2", "clone3"])
        #expect(policy.rules.first { $0.names == ["futex_waitv"] }?.location?.line == 163)
        #expect(policy.rules.first { $0.names == ["sync_file_range2"] }?.location?.line == 187)
    }

    @Test func minKernelComparesMajorThenMinor() throws {
        let old = try parseFixture("docker-like.json", kernel: (4, 7))
        #expect(!old.rules.contains { $0.names == ["ptrace"] })
        let exact = try parseFixture("docker-like.json", kernel: (4, 8))
        #expect(exact.rules.contains { $0.names == ["ptrace"] })
        let newer = try parseFixture("docker-like.json", kernel: (5, 0))
        #expect(newer.rules.contains { $0.names == ["ptrace"] })
    }

    @Test func excludesMinKernelDropsTheRuleFromThatVersionOn() throws {
        let json = withRule("{\"names\": [\"uselib\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"minKernel\": \"5.10\"}}")
        #expect(try parse(json, kernel: (5, 9)).rules.count == 1)
        #expect(try parse(json, kernel: (5, 10)).rules.isEmpty)
        #expect(try parse(json, kernel: (6, 1)).rules.isEmpty)
    }

    @Test func archFilters() throws {
        let excluded = withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"arches\": [\"x86_64\"]}}")
        #expect(try parse(excluded).rules.isEmpty)
        #expect(try parse(excluded, arch: "aarch64").rules.count == 1)
        let x32Only = withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"arches\": [\"x32\", \"x86\"]}}")
        #expect(try parse(x32Only).rules.isEmpty, "x32 and i386 are not the native ABI")
        let aarch = withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"arches\": [\"aarch64\"]}}")
        #expect(try parse(aarch, arch: "aarch64").rules.count == 1)
        #expect(try parse(aarch).rules.isEmpty)
    }

    @Test func excludesCapsIsIgnoredAndIncludesCapsSkips() throws {
        let json = """
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}},
          {"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
        ]}
        """
        let policy = try parse(json)
        #expect(policy.rules.map(\.names) == [["read"]])
        #expect(policy.rules[0].location?.line == 3)
    }

    // MARK: Values

    @Test func largeValuesRoundTripExactly() throws {
        let json = """
        {
          "defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [
            {
              "names": ["ioctl"],
              "action": "SCMP_ACT_ERRNO",
              "args": [
                {"index": 0, "value": 18446744073709551615, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 4294967295, "op": "SCMP_CMP_LE"},
                {"index": 2, "value": 9007199254740993, "valueTwo": 18446744073709551614, "op": "SCMP_CMP_MASKED_EQ"},
                {"index": 3, "value": 9223372036854775808, "op": "SCMP_CMP_GE"},
                {"index": 4, "value": 9223372036854775807, "op": "SCMP_CMP_GT"},
                {"index": 5, "value": 0, "op": "SCMP_CMP_NE"}
              ]
            }
          ]
        }
        """
        let policy = try parse(json)
        #expect(policy.defaultAction == .allow)
        #expect(policy.rules[0].location?.line == 4)
        #expect(policy.rules[0].action == .errno(1))
        #expect(policy.rules[0].conditions == [
            SeccompCondition(index: 0, op: .equal, value: UInt64.max),
            SeccompCondition(index: 1, op: .lessOrEqual, value: 4_294_967_295),
            SeccompCondition(index: 2, op: .maskedEqual, value: 9_007_199_254_740_993, valueTwo: UInt64.max - 1),
            SeccompCondition(index: 3, op: .greaterOrEqual, value: 1 << 63),
            SeccompCondition(index: 4, op: .greater, value: UInt64(Int64.max)),
            SeccompCondition(index: 5, op: .notEqual, value: 0),
        ])
    }

    @Test(arguments: [
        ("SCMP_ACT_ALLOW", SeccompAction.allow), ("SCMP_ACT_KILL", .killThread), ("SCMP_ACT_KILL_THREAD", .killThread),
        ("SCMP_ACT_KILL_PROCESS", .killProcess), ("SCMP_ACT_TRAP", .trap), ("SCMP_ACT_LOG", .log),
        ("SCMP_ACT_TRACE", .trace(0)), ("SCMP_ACT_ERRNO", .errno(1)),
    ])
    func actions(name: String, action: SeccompAction) throws {
        let policy = try parse("{\"defaultAction\": \"\(name)\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"\(name)\"}]}")
        #expect(policy.defaultAction == action)
        #expect(policy.rules.first?.action == action)
    }

    @Test func errnoValues() throws {
        let policy = try parse("""
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
          {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4094},
          {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}
        ]}
        """)
        #expect(policy.defaultAction == .errno(38))
        #expect(policy.rules.map(\.action) == [.errno(1), .errno(4094), .trace(7)], "defaultErrnoRet is for the default only")
        #expect(try parse("{\"defaultAction\": \"SCMP_ACT_TRACE\", \"defaultErrnoRet\": 5}").defaultAction == .trace(5))
    }

    @Test func legacyNameNullsAndOptionalKeys() throws {
        let policy = try parse("""
        {
          "defaultAction": "SCMP_ACT_KILL_PROCESS",
          "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
          "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
          "listenerPath": "",
          "listenerMetadata": "",
          "syscalls": [
            {"name": "getpid", "action": "SCMP_ACT_ALLOW", "args": null, "includes": null, "excludes": {}, "comment": null},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 3, "valueTwo": null, "op": "SCMP_CMP_EQ"}]}
          ]
        }
        """)
        #expect(policy.defaultAction == .killProcess)
        #expect(policy.rules.map(\.names) == [["getpid"], ["read"]])
        #expect(policy.rules[1].conditions == [SeccompCondition(index: 0, op: .equal, value: 3)])
        #expect(policy.rules.map { $0.location?.line } == [8, 9])
        #expect(try parse("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": null}").rules.isEmpty)
    }

    @Test func byteOrderMarkIsAccepted() throws {
        let policy = try DockerSeccomp.parse([0xEF, 0xBB, 0xBF] + Array("{\n\"defaultAction\": \"SCMP_ACT_ERRNO\",\n\"syscalls\": [\n{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]}".utf8),
                                             file: inlineFile, arch: "x86_64", kernel: (6, 8))
        #expect(policy.rules.first?.location?.line == 4)
    }

    @Test func rulesAreLocatedDespiteTrickyStrings() throws {
        let policy = try parse("""
        {"defaultAction": "SCMP_ACT_ERRNO",
         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "a } and a ] and \\" and {["},
          {"names": ["write"], "action": "SCMP_ACT_ALLOW", "comment": "\\\\"},

          {"names": ["close"], "action": "SCMP_ACT_ALLOW", "comment": "é ✓ \\u00e9"}
         ]}
        """)
        #expect(policy.rules.map { $0.location?.line } == [2, 3, 5])
        #expect(policy.rules[0].comment == "a } and a ] and \" and {[")
        #expect(policy.rules[2].comment == "é ✓ é")
    }

    // MARK: Errors

    @Test func unknownTopLevelKey() throws {
        let e = try #require(importError("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscals\": []\n}"))
        #expect(e.message.contains("`syscals`"))
        #expect(e.message.contains("unknown key"))
        #expect(e.location?.line == 3)
    }

    @Test func unknownKeysInNestedObjects() throws {
        let rule = try #require(importError(withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"arg\": []}")))
        #expect(rule.message.contains("`syscalls[0].arg`"))
        let arg = try #require(importError(withArg("{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\", \"valu2\": 1}")))
        #expect(arg.message.contains("`syscalls[0].args[0].valu2`"))
        let filter = try #require(importError(withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"capabilities\": []}}")))
        #expect(filter.message.contains("`syscalls[0].excludes.capabilities`"))
        let map = try #require(importError("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\", \"subArches\": []}]}"))
        #expect(map.message.contains("`archMap[0].subArches`"))
    }

    @Test func unknownAction() throws {
        let e = try #require(importError("""
        {
          "defaultAction": "SCMP_ACT_ERRNO",
          "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {
              "names": ["write"],
              "action": "SCMP_ACT_BOGUS"
            }
          ]
        }
        """))
        #expect(e.message.contains("`syscalls[1].action`"))
        #expect(e.message.contains("SCMP_ACT_BOGUS"))
        #expect(e.message.contains("SCMP_ACT_KILL_PROCESS"), "lists the known actions")
        #expect(e.location?.line == 7)
    }

    @Test func notifyIsRefused() throws {
        let rule = try #require(importError(withRule("{\"names\": [\"mount\"], \"action\": \"SCMP_ACT_NOTIFY\"}")))
        #expect(rule.message.contains("`syscalls[0].action`"))
        #expect(rule.message.contains("notifier"))
        let def = try #require(importError("{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}"))
        #expect(def.message.contains("`defaultAction`"))
        let listener = try #require(importError("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"listenerPath\": \"/run/seccomp.sock\"}"))
        #expect(listener.message.contains("`listenerPath`"))
    }

    @Test func badOp() throws {
        let e = try #require(importError(withArg("{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_FOO\"}")))
        #expect(e.message.contains("`syscalls[0].args[0].op`"))
        #expect(e.message.contains("SCMP_CMP_FOO"))
        #expect(e.message.contains("SCMP_CMP_MASKED_EQ"), "lists the known comparisons")
    }

    @Test func indexOutOfRange() throws {
        let e = try #require(importError(withArg("{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}")))
        #expect(e.message.contains("`syscalls[0].args[0].index`"))
        #expect(e.message.contains("0...5"))
    }

    @Test(arguments: ["-1", "1.5", "1e3", "1.0", "18446744073709551616", "true", "\"5\"", "null", "-9223372036854775809"])
    func badValues(value: String) throws {
        let e = try #require(importError(withArg("{\"index\": 0, \"value\": \(value), \"op\": \"SCMP_CMP_EQ\"}")))
        #expect(e.message.contains(value == "null" ? "`syscalls[0].args[0]`" : "`syscalls[0].args[0].value`"), "\(e.message)")
    }

    @Test func negativeValueSaysSo() throws {
        let e = try #require(importError(withArg("{\"index\": 0, \"value\": -1, \"op\": \"SCMP_CMP_EQ\"}")))
        #expect(e.message.contains("`syscalls[0].args[0].value`"))
        #expect(e.message.contains("negative"))
    }

    @Test func valueTwoOnlyWithMaskedEq() throws {
        let e = try #require(importError(withArg("{\"index\": 0, \"value\": 1, \"valueTwo\": 2, \"op\": \"SCMP_CMP_EQ\"}")))
        #expect(e.message.contains("`syscalls[0].args[0].valueTwo`"))
    }

    @Test(arguments: [0, 4095, 5000])
    func errnoRetOutOfRange(value: Int) throws {
        let e = try #require(importError(withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": \(value)}")))
        #expect(e.message.contains("`syscalls[0].errnoRet`"))
        #expect(e.message.contains("1...4094"))
        let d = try #require(importError("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": \(value)}"))
        #expect(d.message.contains("`defaultErrnoRet`"))
    }

    @Test func errnoRetOnlyWithErrnoOrTrace() throws {
        let e = try #require(importError(withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"errnoRet\": 1}")))
        #expect(e.message.contains("`syscalls[0].errnoRet`"))
        let d = try #require(importError("{\"defaultAction\": \"SCMP_ACT_KILL\", \"defaultErrnoRet\": 1}"))
        #expect(d.message.contains("`defaultErrnoRet`"))
    }

    @Test func missingDefaultAction() throws {
        let e = try #require(importError("{\"syscalls\": []}"))
        #expect(e.message.contains("defaultAction"))
        #expect(e.message.contains("missing"))
        #expect(e.location?.line == 1)
    }

    @Test func missingRuleKeys() throws {
        let action = try #require(importError(withRule("{\"names\": [\"read\"]}")))
        #expect(action.message.contains("`syscalls[0]`"))
        #expect(action.message.contains("`action`"))
        let names = try #require(importError(withRule("{\"action\": \"SCMP_ACT_ALLOW\"}")))
        #expect(names.message.contains("`names`"))
        let op = try #require(importError(withArg("{\"index\": 0, \"value\": 1}")))
        #expect(op.message.contains("`syscalls[0].args[0]`"))
        #expect(op.message.contains("`op`"))
    }

    @Test func namesMustBeAnArrayOfSyscallNames() throws {
        let e = try #require(importError(withRule("{\"names\": \"read\", \"action\": \"SCMP_ACT_ALLOW\"}")))
        #expect(e.message.contains("`syscalls[0].names`"))
        #expect(e.message.contains("array"))
        let element = try #require(importError(withRule("{\"names\": [\"read\", 3], \"action\": \"SCMP_ACT_ALLOW\"}")))
        #expect(element.message.contains("`syscalls[0].names[1]`"))
        let shape = try #require(importError(withRule("{\"names\": [\"read\", \"Open-At\"], \"action\": \"SCMP_ACT_ALLOW\"}")))
        #expect(shape.message.contains("`syscalls[0].names[1]`"))
        #expect(shape.message.contains("Open-At"))
        let empty = try #require(importError(withRule("{\"names\": [], \"action\": \"SCMP_ACT_ALLOW\"}")))
        #expect(empty.message.contains("`syscalls[0].names`"))
        let both = try #require(importError(withRule("{\"name\": \"read\", \"names\": [\"write\"], \"action\": \"SCMP_ACT_ALLOW\"}")))
        #expect(both.message.contains("`syscalls[0]`"))
        #expect(both.message.contains("`name`"))
    }

    @Test func wrongContainerTypes() throws {
        let syscalls = try #require(importError("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": {}}"))
        #expect(syscalls.message.contains("`syscalls`"))
        let entry = try #require(importError(withRule("\"read\"")))
        #expect(entry.message.contains("`syscalls[0]`"))
        #expect(entry.message.contains("object"))
        let action = try #require(importError("{\"defaultAction\": 1}"))
        #expect(action.message.contains("`defaultAction`"))
        #expect(action.message.contains("string"))
    }

    @Test func filterValues() throws {
        let kernel = try #require(importError(withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"5.8.1\"}}")))
        #expect(kernel.message.contains("`syscalls[0].includes.minKernel`"))
        let arch = try #require(importError(withRule("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"arches\": [\"amd46\"]}}")))
        #expect(arch.message.contains("`syscalls[0].excludes.arches[0]`"))
        #expect(arch.message.contains("amd46"))
    }

    @Test func architecturesAreValidated() throws {
        let e = try #require(importError("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_X86_64\", \"x86_64\"]}"))
        #expect(e.message.contains("`architectures[1]`"))
        let sub = try #require(importError("""
        {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_I386"]}]}
        """))
        #expect(sub.message.contains("`archMap[0].subArchitectures[0]`"))
    }

    @Test func specAllowFlagIsRefused() throws {
        let e = try #require(importError("""
        {
          "defaultAction": "SCMP_ACT_ERRNO",
          "flags": [
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
          ]
        }
        """))
        #expect(e.message.contains("`flags[1]`"))
        #expect(e.message.contains("SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
        #expect(e.location?.line == 5)
        let unknown = try #require(importError("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"flags\": [\"SECCOMP_FILTER_FLAG_FAST\"]}"))
        #expect(unknown.message.contains("`flags[0]`"))
    }

    @Test func duplicateKeyIsRefused() throws {
        let e = try #require(importError("""
        {
          "defaultAction": "SCMP_ACT_ERRNO",
          "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO",
             "action": "SCMP_ACT_ALLOW"}
          ]
        }
        """))
        #expect(e.message.contains("`syscalls[1].action`"))
        #expect(e.message.contains("twice"))
        #expect(e.location?.line == 6)
    }

    @Test func malformedJSONReportsFileAndLine() throws {
        let (path, bytes) = try fixture("malformed.json")
        let thrown = #expect(throws: OTKError.self) {
            _ = try DockerSeccomp.parse(bytes, file: path, arch: "x86_64", kernel: (6, 8))
        }
        let e = try #require(thrown)
        #expect(e.kind == .badInput)
        #expect(e.location == SourceLocation(file: path, line: 7))
        #expect(e.message.contains("not valid JSON"))
    }

    @Test func truncatedJSONBlamesTheLastLine() throws {
        let e = try #require(importError("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n"))
        #expect(e.message.contains("not valid JSON"))
        #expect(e.location?.line == 3)
    }

    @Test func notAnObjectEmptyTooLargeOrNotUTF8() throws {
        let array = try #require(importError("[{\"defaultAction\": \"SCMP_ACT_ERRNO\"}]"))
        #expect(array.message.contains("top level"))
        let empty = try #require(importError(" \n"))
        #expect(empty.message.contains("empty"))
        let padding = String(repeating: " ", count: DockerSeccomp.maximumSize)
        let large = try #require(importError("{\"defaultAction\": \"SCMP_ACT_ERRNO\"}" + padding))
        #expect(large.message.contains("larger"))
        let latin1 = try #require(importError(bytes: Array("{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"comment\": \"caf".utf8) + [0xE9] + Array("\"}]}".utf8)))
        #expect(latin1.message.contains("UTF-8"))
        #expect(latin1.location?.line == 2)
        let utf16 = try #require(importError(bytes: Array("{}".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
        #expect(utf16.message.contains("UTF-8"))
    }

    @Test func unsupportedHostArchitecture() throws {
        let thrown = #expect(throws: OTKError.self) {
            _ = try DockerSeccomp.parse(Array("{\"defaultAction\": \"SCMP_ACT_ERRNO\"}".utf8), file: inlineFile, arch: "riscv64", kernel: (6, 8))
        }
        let e = try #require(thrown)
        #expect(e.kind == .isolationUnavailable)
        #expect(e.message.contains("riscv64"))
    }
}
