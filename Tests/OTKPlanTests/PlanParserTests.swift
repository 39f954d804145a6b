import Foundation
import OTKModel
@testable import OTKPlan
import Testing

@Suite("Plan parsing")
struct PlanParserTests {
    // MARK: The earlier toolkit's plans, unchanged

    @Test func myAPIFixtureIsAccepted() throws {
        let plan = try PlanParser.parse(try fixtureBytes("my-api.json"), file: "my-api.json", limits: PlanLimits())
        #expect(plan.name == "my-api")
        #expect(plan.description == "A small Flask API with a health endpoint")
        #expect(plan.files.map(\.filename) == ["app.py", "requirements.txt"])
        #expect(String(decoding: plan.files[1].content, as: UTF8.self) == "flask\n")
        #expect(String(decoding: plan.files[0].content, as: UTF8.self).contains("@app.route(\"/health\")"))
        #expect(plan.files.allSatisfy { $0.mode == 0o644 && $0.encoding == .utf8 })
        #expect(plan.run == .shell("python app.py"))
        #expect(plan.postInstall == [])
        #expect(plan.stack == nil && plan.build == nil && plan.dependencies.isEmpty && plan.env.isEmpty)
        #expect(PlanParser.slug(plan.name) == "my-api")
    }

    @Test func integrationHelloFixtureIsAccepted() throws {
        let plan = try PlanParser.parse(try fixtureBytes("integration-hello.json"), file: "integration-hello.json",
                                        limits: PlanLimits())
        #expect(plan.name == "integration-hello")
        #expect(plan.files.count == 1)
        #expect(plan.files[0].filename == "hello.py")
        #expect(plan.run == .shell("python hello.py"))
        #expect(PlanParser.slug(plan.name) == "integration-hello")
    }

    // MARK: Extensions

    @Test func extensionsAreRead() throws {
        let plan = try parse("""
            {"name": "ext", "files": [
               {"filename": "run.sh", "code": "echo hi\\n"},
               {"filename": "bin/tool", "code": "AAEC/w==", "encoding": "base64", "mode": "0750"},
               {"filename": "data.txt", "code": "x", "mode": "600", "encoding": "utf8"}],
             "run": ["./run.sh", "--fast"], "build": "make", "stack": "python-uv",
             "dependencies": ["flask>=3", "requests"], "env": {"DEBUG": "1", "_X2": ""},
             "post_install": ["echo done"]}
            """)
        #expect(plan.files[0].mode == 0o755)
        #expect(plan.files[1].content == [0, 1, 2, 255])
        #expect(plan.files[1].mode == 0o750 && plan.files[1].encoding == .base64)
        #expect(plan.files[2].mode == 0o600)
        #expect(plan.run == .argv(["./run.sh", "--fast"]))
        #expect(plan.build == .shell("make"))
        #expect(plan.stack == "python-uv")
        #expect(plan.dependencies == ["flask>=3", "requests"])
        #expect(plan.env == ["DEBUG": "1", "_X2": ""])
        #expect(plan.postInstall == ["echo done"])
    }

    @Test func nullCountsAsAbsent() throws {
        let plan = try parse("""
            {"name": "n", "description": null, "files": [{"filename": "a", "code": "", "mode": null, "encoding": null}],
             "run": null, "post_install": null, "stack": null, "dependencies": null, "build": null, "env": null}
            """)
        #expect(plan.description == nil && plan.run == nil && plan.files[0].mode == 0o644)
        planError("{\"name\": null, \"files\": []}", path: "name", contains: "required")
        planError("{\"name\": \"n\", \"files\": null}", path: "files", contains: "required")
        planError("{\"name\": \"n\", \"files\": [null]}", path: "files[0]", contains: "found null")
        planError("{\"name\": \"n\", \"files\": [], \"post_install\": [null]}", path: "post_install[0]", contains: "found null")
        planError("{\"name\": \"n\", \"files\": [], \"env\": {\"A\": null}}", path: "env.A", contains: "found null")
    }

    // MARK: Bad plans: file names

    @Test(arguments: [
        ("../x", "`..` is not allowed"),
        ("a/../../x", "`..` is not allowed"),
        ("/etc/x", "absolute paths are not allowed"),
        ("a/./b", "`.` component"),
        ("./a", "`.` component"),
        ("a//b", "empty component"),
        ("a/", "ends with `/`"),
        ("", "is empty"),
        ("a\u{0}b", "NUL"),
        ("a\nb", "U+000A"),
        ("a\u{202E}b", "U+202E"),
        ("src\\app.py", "backslash"),
        ("-rf", "starts with `-`"),
        ("a/--help", "starts with `-`"),
        (".git/config", "`.git`"),
        ("sub/.GIT/hooks/pre-commit", "`.GIT`"),
        (String(repeating: "a", count: 256), "255 bytes"),
    ])
    func badFilename(_ name: String, _ message: String) {
        planError(planWith([fileEntry("ok.txt"), fileEntry(name)]), path: "files[1].filename", contains: message)
    }

    @Test func pathLengthAndDepthLimits() {
        let deep = Array(repeating: "d", count: 33).joined(separator: "/")
        planError(planWith([fileEntry(deep)]), path: "files[0].filename", contains: "33 components; the limit is 32")
        let long = Array(repeating: String(repeating: "a", count: 200), count: 6).joined(separator: "/")
        planError(planWith([fileEntry(long)]), path: "files[0].filename", contains: "1205 bytes long; the limit is 1024")
    }

    @Test func duplicateAndCaseClashingNames() {
        planError(planWith([fileEntry("a.py"), fileEntry("b.py"), fileEntry("a.py")]), path: "files[2].filename",
                  contains: "already written by `files[0]`")
        planError(planWith([fileEntry("README.md"), fileEntry("readme.md")]), path: "files[1].filename",
                  contains: "only in case")
        // NFC "é" and NFD "e\u{301}" are one name to Swift and to macOS.
        planError(planWith([fileEntry("caf\u{E9}.txt"), fileEntry("cafe\u{301}.txt")]), path: "files[1].filename",
                  contains: "already written")
    }

    @Test func fileDirectoryPrefixClash() {
        planError(planWith([fileEntry("a"), fileEntry("a/b")]), path: "files[1].filename",
                  contains: "needs a directory `a`, but `files[0]` is a file")
        planError(planWith([fileEntry("a/b/c"), fileEntry("a/b")]), path: "files[1].filename",
                  contains: "`files[0]` (`a/b/c`) needs a directory")
        planError(planWith([fileEntry("A/x"), fileEntry("a")]), path: "files[1].filename", contains: "needs a directory")
        // Siblings and shared directories are fine.
        #expect(throws: Never.self) { _ = try parse(planWith([fileEntry("a/b"), fileEntry("a/c"), fileEntry("ab")])) }
    }

    // MARK: Bad plans: limits

    @Test func oversizedFile() {
        let limits = PlanLimits(maxFileBytes: 10)
        #expect(throws: Never.self) { _ = try parse(planWith([fileEntry("a", "0123456789")]), limits: limits) }
        planError(planWith([fileEntry("a", "0123456789X")]), path: "files[0].code",
                  contains: "11 bytes; the limit per file is 10 bytes", limits: limits)
        planError(planWith([fileEntry("a", "AAAAAAAAAAAAAAAA", extra: "\"encoding\": \"base64\"")]), path: "files[0].code",
                  contains: "12 bytes; the limit per file is 10", limits: limits)
        planError(planWith([fileEntry("a", String(repeating: "A", count: 400), extra: "\"encoding\": \"base64\"")]),
                  path: "files[0].code", contains: "the limit per file is 10", limits: limits)
    }

    @Test func tooManyFiles() {
        let limits = PlanLimits(maxFiles: 3)
        let entries = (0..<4).map { fileEntry("f\($0)") }
        planError(planWith(entries), path: "files", contains: "4 files; the limit is 3", limits: limits)
        #expect(throws: Never.self) { _ = try parse(planWith(Array(entries.prefix(3))), limits: limits) }
    }

    @Test func totalTooBig() {
        let limits = PlanLimits(maxFileBytes: 10, maxTotalBytes: 25)
        let entries = ["a", "b", "c"].map { fileEntry($0, "0123456789") }
        planError(planWith(entries), path: "files[2].code", contains: "30 bytes in total here; the limit is 25 bytes",
                  limits: limits)
    }

    @Test func documentTooBig() {
        planError(planWith([fileEntry("a", String(repeating: "x", count: 200))]), path: nil, contains: "larger than 100 bytes",
                  limits: PlanLimits(maxPlanBytes: 100))
    }

    // MARK: Bad plans: keys and types

    @Test func unknownKeys() {
        planError(planWith([fileEntry("a")], extra: "\"rn\": \"x\""), path: "rn", contains: "unknown key")
        planError(planWith([fileEntry("a"), fileEntry("b"), fileEntry("c"), fileEntry("d", extra: "\"mod\": \"755\"")]),
                  path: "files[3].mod", contains: "unknown key")
    }

    @Test func wrongTypes() {
        planError("{\"name\": \"t\", \"files\": {\"filename\": \"a\"}}", path: "files", contains: "expected an array")
        planError(planWith(["{\"filename\": \"a\", \"code\": 42}"]), path: "files[0].code", contains: "expected a string, found a number")
        planError(planWith(["{\"filename\": true, \"code\": \"\"}"]), path: "files[0].filename", contains: "found a boolean")
        planError("{\"name\": 1, \"files\": []}", path: "name", contains: "expected a string")
        planError(planWith([], extra: "\"run\": 5"), path: "run", contains: "a command line (a string) or an argv list")
        planError(planWith([], extra: "\"run\": [\"a\", 1]"), path: "run[1]", contains: "expected a string")
        planError(planWith([], extra: "\"run\": []"), path: "run", contains: "argv list is empty")
        planError(planWith([], extra: "\"build\": \"  \""), path: "build", contains: "empty")
        planError(planWith([], extra: "\"post_install\": \"pip install x\""), path: "post_install", contains: "expected an array")
        planError(planWith([], extra: "\"env\": [\"A=1\"]"), path: "env", contains: "expected an object")
        planError(planWith([], extra: "\"env\": {\"1A\": \"x\"}"), path: "env.1A", contains: "not an environment variable name")
        planError(planWith([], extra: "\"stack\": \"../go\""), path: "stack", contains: "not a stack name")
        planError(planWith([], extra: "\"dependencies\": [\"--index-url=http://evil\"]"), path: "dependencies[0]",
                  contains: "starts with `-`")
        planError("[1]", path: nil, contains: "top level must be a JSON object")
        planError(planWith([fileEntry("a")], extra: "\"run\": \"a\\u0000b\""), path: "run", contains: "NUL")
        planError(planWith(["{\"code\": \"x\"}"]), path: "files[0].filename", contains: "required")
        planError(planWith(["{\"filename\": \"a\"}"]), path: "files[0].code", contains: "required")
        planError(planWith([fileEntry("a", extra: "\"encoding\": \"hex\"")]), path: "files[0].encoding", contains: "not an encoding")
    }

    @Test func duplicateJSONKey() {
        let e = planError("{\"name\": \"t\", \"files\": [{\"filename\": \"a\", \"code\": \"1\",\n \"code\": \"2\"}]}",
                          path: "files[0].code", contains: "written twice")
        #expect(e?.location?.line == 2)
    }

    @Test func syntaxErrorHasALine() {
        let e = planError("{\"name\": \"t\",\n\"files\": [,]}", path: nil, contains: "not valid JSON")
        #expect(e?.location?.line == 2)
    }

    // MARK: base64 and modes

    @Test(arguments: ["AAE", "AA=E", "A===", "AAE=\n", "AA E", "AAE-", "QR==", "QUJ=", "====", "AAE=AAAA"])
    func badBase64(_ text: String) {
        planError(planWith([fileEntry("a", text, extra: "\"encoding\": \"base64\"")]), path: "files[0].code",
                  contains: "not valid base64")
    }

    @Test func base64RoundTrips() {
        let bytes: [UInt8] = Array(0...255)
        let encoded = Data(bytes).base64EncodedString()
        for n in 0...5 {
            let slice = Array(bytes.prefix(n))
            #expect(PlanParser.decodeBase64(Data(slice).base64EncodedString()) == slice)
        }
        #expect(PlanParser.decodeBase64(encoded) == bytes)
        #expect(PlanParser.decodeBase64("") == [])
    }

    @Test(arguments: [
        ("\"4755\"", "setuid, setgid or sticky"),
        ("\"2755\"", "setuid, setgid or sticky"),
        ("\"1777\"", "setuid, setgid or sticky"),
        ("\"rwx\"", "not an octal mode"),
        ("\"75\"", "not an octal mode"),
        ("\"0o755\"", "not an octal mode"),
        ("\"789\"", "not an octal mode"),
        ("755", "expected an octal string"),
        ("493", "expected an octal string"),
    ])
    func badMode(_ mode: String, _ message: String) {
        planError(planWith([fileEntry("a", extra: "\"mode\": \(mode)")]), path: "files[0].mode", contains: message)
    }

    @Test func defaultModes() throws {
        let plan = try parse(planWith([fileEntry("run.sh"), fileEntry("x/build.sh"), fileEntry("app.py"), fileEntry("sh")]))
        #expect(plan.files.map(\.mode) == [0o755, 0o755, 0o644, 0o644])
        let explicit = try parse(planWith([fileEntry("run.sh", extra: "\"mode\": \"644\"")]))
        #expect(explicit.files[0].mode == 0o644)
    }

    // MARK: Slugs

    @Test func slugs() {
        #expect(PlanParser.slug("my-api") == "my-api")
        #expect(PlanParser.slug("My API (v2)") == "my-api-v2")
        #expect(PlanParser.slug("  --Hello__World--  ") == "hello-world")
        #expect(PlanParser.slug("../../etc") == "etc")
        #expect(PlanParser.slug("") == "plan")
        #expect(PlanParser.slug("日本語") == "plan")
        #expect(PlanParser.slug("café") == "caf")
        let long = PlanParser.slug(String(repeating: "ab ", count: 40))
        #expect(long.count <= 64 && !long.hasSuffix("-") && PlanParser.isSlug(long))
        #expect(PlanParser.isSlug("a-2") && !PlanParser.isSlug("A") && !PlanParser.isSlug("a/b") && !PlanParser.isSlug(""))
    }
}

@Suite("Plan JSON Schema")
struct PlanSchemaTests {
    /// docs/plan.schema.json names exactly the keys the parser knows.
    @Test func schemaKeysMatchTheParser() throws {
        let url = URL(fileURLWithPath: planFixturesDir)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/plan.schema.json")
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        let top = try #require(schema["properties"] as? [String: Any])
        #expect(Set(top.keys) == PlanParser.topLevelKeys)
        #expect(Set(schema["required"] as? [String] ?? []) == ["name", "files"])
        let file = try #require((schema["$defs"] as? [String: Any])?["file"] as? [String: Any])
        #expect(Set((file["properties"] as? [String: Any] ?? [:]).keys) == PlanParser.fileKeys)
        #expect(schema["additionalProperties"] as? Bool == false && file["additionalProperties"] as? Bool == false)
    }
}
