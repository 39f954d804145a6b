import Foundation
@testable import OTKConfig
import Testing

/// An in-memory host file system that records every path asked for.
private final class RecordingFiles: @unchecked Sendable {
    private let lock = NSLock()
    private let files: [String: String]
    private var asked: [String] = []

    init(_ files: [String: String]) {
        self.files = files
    }

    func read(_ path: String) -> String? {
        lock.withLock { asked.append(path) }
        return files[path]
    }

    var paths: [String] { lock.withLock { asked } }
}

private let home = "/home/u"

/// Runs discovery for `manager` over `files`, returning the result and the paths read.
private func run(_ manager: PackageManager, env: [String: String] = [:], home: String? = home,
                 files: [String: String] = [:]) -> (result: RegistryDiscovery.Result, asked: [String]) {
    let recorder = RecordingFiles(files)
    let discovery = RegistryDiscovery(environment: env, home: home, readFile: { recorder.read($0) })
    return (discovery.discover(manager), recorder.paths)
}

private func discover(_ manager: PackageManager, env: [String: String] = [:], home: String? = home,
                      files: [String: String] = [:]) -> RegistryDiscovery.Result {
    run(manager, env: env, home: home, files: files).result
}

/// "host:port" of each endpoint, in order.
private func hosts(_ result: RegistryDiscovery.Result) -> [String] {
    result.endpoints.map { "\($0.host):\($0.port)" }
}

private func hasNote(_ result: RegistryDiscovery.Result, _ parts: String...) -> Bool {
    result.notes.contains { note in parts.allSatisfy { note.contains($0) } }
}

/// Host registry discovery, by manager; `--filter RegistryDiscoveryTests` runs them all.
@Suite struct RegistryDiscoveryTests {}

// MARK: - URLs

extension RegistryDiscoveryTests {
    @Suite struct URLs {
        @Test func ipv6LiteralWithPortHasNoBrackets() {
            #expect(RegistryURL.parse("http://[::1]:8080/simple") == .endpoint(host: "::1", port: 8080))
            #expect(RegistryURL.parse("https://[FD00::2]/") == .endpoint(host: "fd00::2", port: 443))
        }

        @Test func defaultPortsAndLowerCasedHost() {
            #expect(RegistryURL.parse("HTTP://Registry.Example.TEST/x") == .endpoint(host: "registry.example.test", port: 80))
            #expect(RegistryURL.parse("https://10.1.2.3") == .endpoint(host: "10.1.2.3", port: 443))
            #expect(RegistryURL.parse("https://mirror.corp.example:8443?q#f") == .endpoint(host: "mirror.corp.example", port: 8443))
        }

        @Test func localAndOtherSchemesAndGarbage() {
            #expect(RegistryURL.parse("file:///srv/wheels") == .local)
            #expect(RegistryURL.parse("/srv/wheels") == .local)
            #expect(RegistryURL.parse("ssh://git@mirror.corp.example/index") == .otherScheme("ssh"))
            #expect(RegistryURL.parse("mirror.corp.example") == .invalid("no scheme"))
            if case .invalid = RegistryURL.parse("https://mirror.corp.example:99999/") {} else { Issue.record("port accepted") }
            if case .invalid = RegistryURL.parse("https:///x") {} else { Issue.record("empty host accepted") }
            if case .invalid = RegistryURL.parse("https://${HOST}/x") {} else { Issue.record("variable accepted") }
        }

        @Test func credentialsAreRedacted() {
            #expect(RegistryURL.redacted("https://alice:s3cret@registry.example.test/simple") == "https://***@registry.example.test/simple")
            #expect(RegistryURL.redacted("https://registry.example.test/a@b") == "https://registry.example.test/a@b")
            #expect(RegistryURL.redacted("alice:s3cret@registry.example.test") == "***@registry.example.test")
            #expect(RegistryURL.parse("https://alice:p@ss@registry.example.test:81/") == .endpoint(host: "registry.example.test", port: 81))
        }

        @Test func endpointIsCodable() throws {
            let endpoint = RegistryEndpoint(host: "::1", port: 8080, url: "http://[::1]:8080/", source: "PIP_INDEX_URL")
            let data = try JSONEncoder().encode(endpoint)
            #expect(try JSONDecoder().decode(RegistryEndpoint.self, from: data) == endpoint)
        }
    }
}

// MARK: - pip

extension RegistryDiscoveryTests {
    @Suite struct Pip {
        @Test func environmentIndexURL() {
            let r = discover(.pip, env: ["PIP_INDEX_URL": "https://registry.example.test/simple"])
            #expect(r.configured)
            #expect(r.endpoints == [RegistryEndpoint(host: "registry.example.test", port: 443,
                                                     url: "https://registry.example.test/simple", source: "PIP_INDEX_URL")])
        }

        @Test func nothingConfiguredSaysSoAndNamesTheRemedies() {
            let r = discover(.pip)
            #expect(!r.configured)
            #expect(r.endpoints.isEmpty)
            #expect(hasNote(r, "pip:", "no index-url", "built-in default", "network.allow", "--allow-host"))
        }

        @Test func laterFilesAndTheEnvironmentOverride() {
            let files = [
                "/etc/pip.conf": "[global]\nindex-url = https://a.example.test/simple\n",
                "/home/u/.config/pip/pip.conf": "[global]\nindex-url = https://b.example.test/simple\n",
            ]
            let fromFiles = discover(.pip, files: files)
            #expect(hosts(fromFiles) == ["b.example.test:443"])
            #expect(fromFiles.endpoints.first?.source == "~/.config/pip/pip.conf [global] index-url")
            let fromEnv = discover(.pip, env: ["PIP_INDEX_URL": "http://10.1.2.3:3141/root/mirror"], files: files)
            #expect(hosts(fromEnv) == ["10.1.2.3:3141"])
        }

        @Test func readsFilesInPipsOrder() {
            let (_, asked) = run(.pip, env: ["XDG_CONFIG_DIRS": "/opt/xdg:/etc/xdg", "XDG_CONFIG_HOME": "/home/u/cfg",
                                             "VIRTUAL_ENV": "/opt/venv", "PIP_CONFIG_FILE": "/opt/pip-extra.conf"])
            #expect(asked == ["/opt/pip-extra.conf", "/opt/xdg/pip/pip.conf", "/etc/xdg/pip/pip.conf", "/etc/pip.conf",
                              "/home/u/.pip/pip.conf", "/home/u/cfg/pip/pip.conf", "/opt/venv/pip.conf"])
        }

        @Test func commandSectionOverridesGlobalForThatCommandOnly() {
            let files = ["/etc/pip.conf": """
                [global]
                index-url = https://global.example.test/simple
                [install]
                index-url = https://install.example.test/simple
                """]
            let r = discover(.pip, files: files)
            #expect(r.configured)
            #expect(hosts(r) == ["install.example.test:443", "global.example.test:443"])
            #expect(r.endpoints.dropFirst(0).first?.source == "/etc/pip.conf [install] index-url")
        }

        @Test func indexOnlyInInstallSectionLeavesOtherCommandsOnTheDefault() {
            let r = discover(.pip, files: ["/etc/pip.conf": "[install]\nindex-url = https://install.example.test/\n"])
            #expect(!r.configured)
            #expect(hosts(r) == ["install.example.test:443"])
            #expect(hasNote(r, "`pip download`", "`pip wheel`", "built-in default"))
        }

        @Test func extraIndexURLsAreWhitespaceListsWithContinuationLines() {
            let files = ["/home/u/.pip/pip.conf": """
                [global]
                index-url = https://registry.example.test/simple
                extra-index-url =
                    https://extra1.example.test/simple
                    https://extra2.example.test/simple  https://extra3.example.test/simple
                """]
            #expect(hosts(discover(.pip, files: files)) == ["registry.example.test:443", "extra1.example.test:443",
                                                            "extra2.example.test:443", "extra3.example.test:443"])
            let env = ["PIP_EXTRA_INDEX_URL": "https://e1.example.test/ http://e2.example.test:8080/"]
            let r = discover(.pip, env: env, files: files)
            // pip replaces a list-valued setting: the environment's list wins over the file's.
            #expect(hosts(r) == ["registry.example.test:443", "e1.example.test:443", "e2.example.test:8080"])
            #expect(r.endpoints.last?.source == "PIP_EXTRA_INDEX_URL")
        }

        @Test func findLinksCountsOnlyHTTPURLs() {
            let env = ["PIP_INDEX_URL": "https://registry.example.test/",
                       "PIP_FIND_LINKS": "/srv/wheels ./wheels file:///srv/more https://links.example.test/wheels/"]
            let r = discover(.pip, env: env)
            #expect(hosts(r) == ["registry.example.test:443", "links.example.test:443"])
            #expect(r.notes.isEmpty)
        }

        @Test func keySpellingsAreNormalizedAsPipDoes() {
            for key in ["index_url", "--index-url", "Index-URL", "index-url"] {
                let r = discover(.pip, files: ["/etc/pip.conf": "[global]\n\(key): https://registry.example.test/\n"])
                #expect(hosts(r) == ["registry.example.test:443"], "key \(key)")
                #expect(r.endpoints.first?.source == "/etc/pip.conf [global] index-url")
            }
        }

        @Test func configFileDevNullReadsNoFile() {
            for devnull in ["/dev/null", "os.devnull"] {
                let (r, asked) = run(.pip, env: ["PIP_CONFIG_FILE": devnull, "PIP_INDEX_URL": "https://registry.example.test/"],
                                     files: ["/etc/pip.conf": "[global]\nindex-url = https://ignored.example.test/\n"])
                #expect(asked.isEmpty)
                #expect(hosts(r) == ["registry.example.test:443"])
                #expect(hasNote(r, "PIP_CONFIG_FILE", "no configuration file"))
            }
        }

        @Test func existingConfigFileSkipsUserFilesAndWins() {
            let files = [
                "/etc/pip.conf": "[global]\nindex-url = https://etc.example.test/\nextra-index-url = https://extra.example.test/\n",
                "/opt/pip.conf": "[global]\nindex-url = https://env-file.example.test/\n",
                "/home/u/.config/pip/pip.conf": "[global]\nindex-url = https://user.example.test/\n",
            ]
            let (r, asked) = run(.pip, env: ["PIP_CONFIG_FILE": "/opt/pip.conf"], files: files)
            #expect(hosts(r) == ["env-file.example.test:443", "extra.example.test:443"])
            #expect(!asked.contains("/home/u/.config/pip/pip.conf"))
            #expect(!asked.contains("/home/u/.pip/pip.conf"))
        }

        @Test func virtualEnvFileOverridesUserFile() {
            let files = [
                "/home/u/.config/pip/pip.conf": "[global]\nindex-url = https://user.example.test/\n",
                "/opt/venv/pip.conf": "[global]\nindex-url = https://venv.example.test/\n",
            ]
            #expect(hosts(discover(.pip, env: ["VIRTUAL_ENV": "/opt/venv"], files: files)) == ["venv.example.test:443"])
        }

        @Test func credentialsNeverReachSourceOrNotes() {
            let files = ["/etc/pip.conf": "[global]\nindex-url = https://alice:s3cret@registry.example.test/simple\n"
                         + "extra-index-url = https://bob:hunter2@bad host/\n"]
            let r = discover(.pip, files: files)
            #expect(r.endpoints.first?.url == "https://***@registry.example.test/simple")
            let text = (r.endpoints.map { $0.url + $0.source } + r.notes).joined(separator: "\n")
            #expect(!text.contains("s3cret") && !text.contains("alice") && !text.contains("hunter2") && !text.contains("bob"))
        }

        @Test func malformedLinesAreNotedWithFileAndLine() {
            let files = ["/etc/pip.conf": """
                index-url = https://early.example.test/
                [global]
                this line has no delimiter
                index-url = https://registry.example.test/
                """]
            let r = discover(.pip, files: files)
            #expect(hosts(r) == ["registry.example.test:443"])
            #expect(hasNote(r, "/etc/pip.conf:1:", "before any [section]"))
            #expect(hasNote(r, "/etc/pip.conf:3:"))
        }

        @Test func commentsAndHashesInsideValues() {
            let files = ["/etc/pip.conf": "# comment\n[global]\n; another\nindex-url = https://registry.example.test/simple#frag\n"]
            let r = discover(.pip, files: files)
            #expect(r.endpoints.first?.url == "https://registry.example.test/simple#frag")
            #expect(r.notes.isEmpty)
        }

        @Test func noIndexMeansConfiguredWithoutIndex() {
            let r = discover(.pip, env: ["PIP_NO_INDEX": "yes", "PIP_INDEX_URL": "https://unused.example.test/",
                                         "PIP_FIND_LINKS": "https://links.example.test/"])
            #expect(r.configured)
            #expect(hosts(r) == ["links.example.test:443"])
        }

        @Test func invalidValueIsNotedNotAdded() {
            let r = discover(.pip, env: ["PIP_INDEX_URL": "registry.example.test/simple"])
            #expect(r.endpoints.isEmpty)
            #expect(hasNote(r, "PIP_INDEX_URL", "not a usable URL"))
        }
    }
}

// MARK: - npm

extension RegistryDiscoveryTests {
    @Suite struct Npm {
        @Test func userNpmrcRegistry() {
            let r = discover(.npm, files: ["/home/u/.npmrc": "registry=https://registry.example.test/\n"])
            #expect(r.configured)
            #expect(r.endpoints == [RegistryEndpoint(host: "registry.example.test", port: 443,
                                                     url: "https://registry.example.test/", source: "~/.npmrc registry")])
        }

        @Test func nothingConfigured() {
            let r = discover(.npm, files: ["/home/u/.npmrc": "@corp:registry=https://corp.example.test/\n"])
            #expect(!r.configured)
            #expect(hosts(r) == ["corp.example.test:443"])
            #expect(hasNote(r, "npm:", "no `registry`", "built-in default", "--allow-host"))
        }

        @Test func environmentOverridesFilesWithAnyPrefixCase() {
            let files = ["/home/u/.npmrc": "registry=https://user.example.test/\n"]
            for key in ["npm_config_registry", "NPM_CONFIG_REGISTRY", "Npm_Config_Registry"] {
                let r = discover(.npm, env: [key: "http://127.0.0.1:4873/"], files: files)
                #expect(hosts(r) == ["127.0.0.1:4873"], "\(key)")
                #expect(r.endpoints.first?.source == key)
            }
        }

        @Test func scopedRegistriesAccumulateAndTheDefaultComesFirst() {
            let files = [
                "/etc/npmrc": "@a:registry=https://a.example.test/\nregistry=https://global.example.test/\n",
                "/home/u/.npmrc": "@b:registry=https://b.example.test/\nregistry=https://user.example.test/\n",
            ]
            let r = discover(.npm, env: ["npm_config_@c:registry": "https://c.example.test/"], files: files)
            #expect(hosts(r) == ["user.example.test:443", "a.example.test:443", "b.example.test:443", "c.example.test:443"])
            #expect(r.endpoints.dropFirst(1).first?.source == "/etc/npmrc @a:registry")
        }

        @Test func environmentVariablesAreExpanded() {
            let files = ["/home/u/.npmrc": """
                registry=https://${REG_HOST}:${REG_PORT}/npm/
                @a:registry=https://a.example.test/${MISSING}/
                @b:registry=https://b.example.test/${OPTIONAL?}x/
                @c:registry=https://c.example.test/\\${REG_HOST}/
                """]
            let r = discover(.npm, env: ["REG_HOST": "mirror.corp.example", "REG_PORT": "8081"], files: files)
            #expect(hosts(r) == ["mirror.corp.example:8081", "a.example.test:443", "b.example.test:443", "c.example.test:443"])
            #expect(r.endpoints.map(\.url) == ["https://mirror.corp.example:8081/npm/", "https://a.example.test/${MISSING}/",
                                               "https://b.example.test/x/", "https://c.example.test/${REG_HOST}/"])
            #expect(hasNote(r, "~/.npmrc:2:", "${MISSING}", "not set"))
        }

        @Test func userconfigFromTheEnvironmentReplacesHomeNpmrc() {
            let files = [
                "/home/u/.npmrc": "registry=https://home.example.test/\n",
                "/opt/npm/user.npmrc": "registry=https://other.example.test/\n",
            ]
            let (r, asked) = run(.npm, env: ["npm_config_userconfig": "/opt/npm/user.npmrc"], files: files)
            #expect(hosts(r) == ["other.example.test:443"])
            #expect(!asked.contains("/home/u/.npmrc"))
        }

        @Test func globalConfigFollowsPrefixAndUserOverridesIt() {
            let files = [
                "/opt/node/etc/npmrc": "registry=https://global.example.test/\n@g:registry=https://g.example.test/\n",
                "/home/u/.npmrc": "registry=https://user.example.test/\n",
            ]
            let (r, asked) = run(.npm, env: ["PREFIX": "/opt/node"], files: files)
            #expect(hosts(r) == ["user.example.test:443", "g.example.test:443"])
            #expect(asked.contains("/etc/npmrc"))
            #expect(asked.contains("/opt/node/etc/npmrc"))
            #expect(!asked.contains("/usr/local/etc/npmrc"))
            let (_, defaultAsked) = run(.npm)
            #expect(defaultAsked.contains("/usr/local/etc/npmrc"))
            let (_, explicitAsked) = run(.npm, env: ["npm_config_globalconfig": "/srv/npmrc"])
            #expect(explicitAsked.contains("/srv/npmrc") && !explicitAsked.contains("/usr/local/etc/npmrc"))
        }

        @Test func commentsQuotesAndSections() {
            let files = ["/home/u/.npmrc": """
                ; a comment
                # another
                registry = "https://registry.example.test/npm/" 
                @a:registry=https://a.example.test/ ; trailing comment
                [section]
                @b:registry=https://ignored.example.test/
                """]
            let r = discover(.npm, files: files)
            #expect(hosts(r) == ["registry.example.test:443", "a.example.test:443"])
            #expect(r.endpoints.dropFirst(1).first?.url == "https://a.example.test/")
        }

        @Test func malformedLinesAreNoted() {
            let files = ["/home/u/.npmrc": "=https://nokey.example.test/\nregistry\n@a:registry=https://a.example.test/\n"]
            let r = discover(.npm, files: files)
            #expect(hosts(r) == ["a.example.test:443"])
            #expect(hasNote(r, "~/.npmrc:1:"))
            #expect(hasNote(r, "~/.npmrc:2:"))
        }

        @Test func credentialsAreHidden() {
            let r = discover(.npm, env: ["TOKEN": "t0ken"],
                             files: ["/home/u/.npmrc": "registry=https://ci:${TOKEN}@registry.example.test/\n"])
            #expect(r.endpoints.first?.url == "https://***@registry.example.test/")
            #expect(!(r.endpoints.map { $0.url + $0.source } + r.notes).joined().contains("t0ken"))
        }

        @Test func jsonEscapesInQuotedValues() {
            #expect(NpmrcFile.unquoted(#""a\"b\\c\u0041""#) == #"a"b\cA"#)
            #expect(NpmrcFile.unquoted("'x;y'") == "x;y")
            #expect(NpmrcFile.unquoted(#"x\;y;z"#) == "x;y")
        }
    }
}

// MARK: - go

extension RegistryDiscoveryTests {
    @Suite struct Go {
        @Test func proxyListStopsAtDirect() {
            let r = discover(.go, env: ["GOPROXY": "https://proxy.corp.example,http://10.1.2.3:3000|direct,https://never.example.test",
                                        "GOSUMDB": "off"])
            #expect(r.configured)
            #expect(hosts(r) == ["proxy.corp.example:443", "10.1.2.3:3000"])
            #expect(hasNote(r, "ignored `direct` in GOPROXY"))
            #expect(hasNote(r, "after `direct`"))
            #expect(hasNote(r, "GOSUMDB", "off"))
        }

        @Test func offStopsTheList() {
            let r = discover(.go, env: ["GOPROXY": "off"])
            #expect(r.configured)
            #expect(r.endpoints.isEmpty)
            #expect(hasNote(r, "ignored `off`"))
            #expect(!hasNote(r, "GOSUMDB is not set"))
        }

        @Test func schemelessEntriesAreHTTPSAndFileURLsAreLocal() {
            let r = discover(.go, env: ["GOPROXY": "proxy.corp.example:8443/go,file:///srv/goproxy,https://b.example.test"])
            #expect(hosts(r) == ["proxy.corp.example:8443", "b.example.test:443"])
            #expect(r.endpoints.dropFirst(0).first?.url == "https://proxy.corp.example:8443/go")
        }

        @Test func envFileIsReadAndTheEnvironmentWins() {
            let files = ["/home/u/cfg/go/env": "GOPROXY=https://file.example.test\nGOSUMDB=sum.example.test\n"]
            let fromFile = discover(.go, env: ["XDG_CONFIG_HOME": "/home/u/cfg"], files: files)
            #expect(hosts(fromFile) == ["file.example.test:443", "sum.example.test:443"])
            #expect(fromFile.endpoints.dropFirst(0).first?.source == "~/cfg/go/env GOPROXY")
            let fromEnv = discover(.go, env: ["XDG_CONFIG_HOME": "/home/u/cfg", "GOPROXY": "https://env.example.test"], files: files)
            #expect(hosts(fromEnv) == ["env.example.test:443", "sum.example.test:443"])
            #expect(fromEnv.endpoints.dropFirst(0).first?.source == "GOPROXY")
        }

        @Test func goenvSelectsOrDisablesTheFile() {
            let (_, defaultAsked) = run(.go)
            #expect(defaultAsked == ["/home/u/.config/go/env"])
            let (r, asked) = run(.go, env: ["GOENV": "/opt/go.env"], files: ["/opt/go.env": "GOPROXY=https://p.example.test\n"])
            #expect(asked == ["/opt/go.env"])
            #expect(hosts(r) == ["p.example.test:443"])
            let (_, offAsked) = run(.go, env: ["GOENV": "off"])
            #expect(offAsked.isEmpty)
        }

        @Test func sumdbForms() {
            let withURL = discover(.go, env: ["GOPROXY": "off", "GOSUMDB": "sum.example.test+abc123+AAAA https://sumproxy.corp.example:9443/"])
            #expect(hosts(withURL) == ["sumproxy.corp.example:9443"])
            let bare = discover(.go, env: ["GOPROXY": "off", "GOSUMDB": "sum.example.test+abc123+AAAA"])
            #expect(hosts(bare) == ["sum.example.test:443"])
            let tooMany = discover(.go, env: ["GOPROXY": "off", "GOSUMDB": "a b c"])
            #expect(tooMany.endpoints.isEmpty)
            #expect(hasNote(tooMany, "GOSUMDB", "ignored"))
        }

        @Test func unsetProxyIsNotConfiguredAndPrivatePatternsAreNoted() {
            let r = discover(.go, env: ["GOPRIVATE": "git.corp.example/*", "GONOSUMDB": "git.corp.example/*"])
            #expect(!r.configured)
            #expect(hasNote(r, "go:", "GOPROXY is not set", "built-in default", "network.allow"))
            #expect(hasNote(r, "GOSUMDB is not set"))
            #expect(hasNote(r, "GOPRIVATE", "git.corp.example/*"))
            #expect(hasNote(r, "GONOSUMDB"))
        }

        @Test func malformedEnvFileLinesAreNoted() {
            let files = ["/home/u/.config/go/env": "# comment\ngoproxy=https://lower.example.test\nGOPROXY=https://p.example.test\r\nNOEQUALS\n"]
            let r = discover(.go, files: files)
            #expect(hosts(r) == ["p.example.test:443"])
            #expect(hasNote(r, "~/.config/go/env:2:"))
            #expect(hasNote(r, "~/.config/go/env:4:"))
        }
    }
}

// MARK: - cargo

extension RegistryDiscoveryTests {
    @Suite struct Cargo {
        @Test func cratesIOReplacedBySparseMirror() {
            let files = ["/home/u/.cargo/config.toml": """
                [source.crates-io]
                replace-with = "corp"

                [source.corp]
                registry = "sparse+https://cargo.corp.example/index/"
                """]
            let r = discover(.cargo, files: files)
            #expect(r.configured)
            #expect(r.endpoints == [RegistryEndpoint(host: "cargo.corp.example", port: 443,
                                                     url: "sparse+https://cargo.corp.example/index/",
                                                     source: "~/.cargo/config.toml source.corp.registry")])
        }

        @Test func replaceWithChainsToTheFinalSourceAndCyclesAreNoted() {
            let files = ["/home/u/.cargo/config.toml": """
                [source.crates-io]
                replace-with = "middle"
                [source.middle]
                registry = "https://not-fetched.example.test/index"
                replace-with = "last"
                [source.last]
                registry = "https://last.example.test/index"
                [source.loop-a]
                replace-with = "loop-b"
                [source.loop-b]
                replace-with = "loop-a"
                """]
            let r = discover(.cargo, files: files)
            #expect(r.configured)
            #expect(hosts(r) == ["last.example.test:443"])
            #expect(hasNote(r, "cycle"))
        }

        @Test func registriesCountAndTheEnvironmentOverridesTheirIndex() {
            let files = ["/home/u/.cargo/config.toml": """
                [registries.my-corp]
                index = "sparse+https://file.example.test/"
                [registries.other]
                index = "https://other.example.test/git-index"
                [registry]
                default = "my-corp"
                """]
            let r = discover(.cargo, env: ["CARGO_REGISTRIES_MY_CORP_INDEX": "sparse+http://10.1.2.3:8080/",
                                           "CARGO_REGISTRIES_EXTRA_INDEX": "https://extra.example.test/"], files: files)
            #expect(!r.configured)
            #expect(hosts(r) == ["extra.example.test:443", "10.1.2.3:8080", "other.example.test:443"])
            #expect(r.endpoints.dropFirst(1).first?.source == "CARGO_REGISTRIES_MY_CORP_INDEX")
            #expect(hasNote(r, "cargo:", "crates-io is not replaced", "built-in default"))
        }

        @Test func replaceWithCanNameARegistry() {
            let files = ["/home/u/.cargo/config.toml": """
                [source.crates-io]
                replace-with = "corp"
                [registries.corp]
                index = "sparse+https://corp.example.test/"
                """]
            let r = discover(.cargo, files: files)
            #expect(r.configured)
            #expect(hosts(r) == ["corp.example.test:443"])
        }

        @Test func cargoHomeAndTheLegacyFileWins() {
            let files = [
                "/opt/cargo/config": "[source.crates-io]\nreplace-with = \"m\"\n[source.m]\nregistry = \"https://legacy.example.test/\"\n",
                "/opt/cargo/config.toml": "[source.crates-io]\nreplace-with = \"m\"\n[source.m]\nregistry = \"https://new.example.test/\"\n",
            ]
            let (r, asked) = run(.cargo, env: ["CARGO_HOME": "/opt/cargo"], files: files)
            #expect(hosts(r) == ["legacy.example.test:443"])
            #expect(hasNote(r, "reads the first only"))
            #expect(!asked.contains { $0.hasPrefix("/home/u/") })
        }

        @Test func vendoredDirectoryIsConfiguredWithoutEndpoints() {
            let files = ["/home/u/.cargo/config.toml": "[source.crates-io]\nreplace-with = \"vendored\"\n[source.vendored]\ndirectory = \"/srv/vendor\"\n"]
            let r = discover(.cargo, files: files)
            #expect(r.configured)
            #expect(r.endpoints.isEmpty)
        }

        @Test func malformedTOMLIsNotedWithItsLine() {
            let r = discover(.cargo, files: ["/home/u/.cargo/config.toml": "[source.crates-io]\nreplace-with = \n"])
            #expect(!r.configured)
            #expect(hasNote(r, "~/.cargo/config.toml:2:", "file ignored"))
        }

        @Test func wrongTypesAndDanglingNamesAreNoted() {
            let files = ["/home/u/.cargo/config.toml": """
                [source.crates-io]
                replace-with = "nowhere"
                [registries.bad]
                index = 3
                """]
            let r = discover(.cargo, files: files)
            #expect(!r.configured)
            #expect(r.endpoints.isEmpty)
            #expect(hasNote(r, "registries.bad.index", "integer"))
            #expect(hasNote(r, "`nowhere`"))
        }

        @Test func cratesIOIndexCannotBeChanged() {
            let r = discover(.cargo, env: ["CARGO_REGISTRIES_CRATES_IO_INDEX": "https://x.example.test/"])
            #expect(r.endpoints.isEmpty)
            #expect(hasNote(r, "crates-io's index"))
        }
    }
}

// MARK: - maven

private func settings(_ body: String) -> String {
    """
    <?xml version="1.0" encoding="UTF-8"?>
    <settings xmlns="urn:example:settings">
    \(body)
    </settings>
    """
}

extension RegistryDiscoveryTests {
    @Suite struct Maven {
        @Test func userMirrorOfCentral() {
            let files = ["/home/u/.m2/settings.xml": settings("""
                <!-- <mirrors><mirror><url>https://commented.example.test/</url></mirror></mirrors> -->
                <mirrors>
                  <mirror>
                    <id>corp</id>
                    <mirrorOf>*</mirrorOf>
                    <url>https://maven.corp.example/repository/all/</url>
                  </mirror>
                </mirrors>
                """)]
            let r = discover(.maven, files: files)
            #expect(r.configured)
            #expect(r.endpoints == [RegistryEndpoint(host: "maven.corp.example", port: 443,
                                                     url: "https://maven.corp.example/repository/all/",
                                                     source: "~/.m2/settings.xml mirror corp")])
        }

        @Test func profileRepositoriesExpandedAndMirroredOnesSkipped() {
            let files = ["/home/u/.m2/settings.xml": settings("""
                <mirrors>
                  <mirror><id>m</id><mirrorOf>internal</mirrorOf><url>https://mirror.corp.example/</url></mirror>
                </mirrors>
                <profiles>
                  <profile>
                    <id>corp</id>
                    <repositories>
                      <repository><id>internal</id><url>https://internal.example.test/</url></repository>
                      <repository><id>libs</id><url>https://${env.REPO_HOST}/libs</url></repository>
                    </repositories>
                    <pluginRepositories>
                      <pluginRepository><id>plugins</id><url><![CDATA[http://plugins.example.test:8081/]]></url></pluginRepository>
                    </pluginRepositories>
                  </profile>
                </profiles>
                """)]
            let r = discover(.maven, env: ["REPO_HOST": "libs.example.test"], files: files)
            #expect(!r.configured)
            #expect(hosts(r) == ["mirror.corp.example:443", "libs.example.test:443", "plugins.example.test:8081"])
            #expect(r.endpoints.dropFirst(1).first?.source == "~/.m2/settings.xml profile corp repository libs")
            #expect(hasNote(r, "maven:", "central", "built-in default"))
        }

        @Test func globalSettingsMergeWithTheUserDominant() {
            let files = [
                "/opt/maven/conf/settings.xml": settings("""
                    <mirrors>
                      <mirror><id>same</id><mirrorOf>central</mirrorOf><url>https://global.example.test/</url></mirror>
                      <mirror><id>g</id><mirrorOf>other</mirrorOf><url>https://g.example.test/</url></mirror>
                    </mirrors>
                    """),
                "/home/u/.m2/settings.xml": settings("""
                    <mirrors><mirror><id>same</id><mirrorOf>central</mirrorOf><url>https://user.example.test/</url></mirror></mirrors>
                    """),
                "/etc/maven/settings.xml": settings("<mirrors><mirror><id>deb</id><mirrorOf>x</mirrorOf><url>https://deb.example.test/</url></mirror></mirrors>"),
            ]
            let (r, asked) = run(.maven, env: ["MAVEN_HOME": "/opt/maven"], files: files)
            #expect(r.configured)
            #expect(hosts(r) == ["user.example.test:443", "g.example.test:443", "deb.example.test:443"])
            #expect(asked == ["/home/u/.m2/settings.xml", "/opt/maven/conf/settings.xml", "/etc/maven/settings.xml"])
        }

        @Test func blockedMirrorBlocksPlainHTTPRepositories() {
            let files = ["/home/u/.m2/settings.xml": settings("""
                <mirrors>
                  <mirror>
                    <id>blocker</id><mirrorOf>external:http:*</mirrorOf><url>http://0.0.0.0/</url><blocked>true</blocked>
                  </mirror>
                </mirrors>
                <profiles><profile><id>p</id><repositories>
                  <repository><id>old</id><url>http://old.example.test/</url></repository>
                  <repository><id>local</id><url>http://localhost:8081/</url></repository>
                  <repository><id>central</id><url>https://central-override.example.test/</url></repository>
                </repositories></profile></profiles>
                """)]
            let r = discover(.maven, files: files)
            #expect(r.configured)
            #expect(hosts(r) == ["localhost:8081", "central-override.example.test:443"])
            #expect(hasNote(r, "repository old", "blocked by mirror `blocker`"))
        }

        @Test func mirrorOfExclusions() {
            let files = ["/home/u/.m2/settings.xml": settings("""
                <mirrors><mirror><id>m</id><mirrorOf>*,!central</mirrorOf><url>https://m.example.test/</url></mirror></mirrors>
                """)]
            let r = discover(.maven, files: files)
            #expect(!r.configured)
            #expect(hosts(r) == ["m.example.test:443"])
        }

        @Test func malformedXMLIsNotedWithItsLine() {
            let files = ["/home/u/.m2/settings.xml": "<settings>\n<mirrors>\n<mirror><url>https://x.example.test/</mirror>\n</settings>\n"]
            let r = discover(.maven, files: files)
            #expect(!r.configured)
            #expect(r.endpoints.isEmpty)
            #expect(hasNote(r, "~/.m2/settings.xml:3:", "malformed XML"))
        }

        @Test func entitiesAndUnsetVariables() {
            let files = ["/home/u/.m2/settings.xml": settings("""
                <mirrors>
                  <mirror><id>a</id><mirrorOf>central</mirrorOf><url>https://a.example.test/x?a=1&amp;b=2</url></mirror>
                  <mirror><id>b</id><mirrorOf>b</mirrorOf><url>https://${env.UNSET_HOST}/</url></mirror>
                </mirrors>
                """)]
            let r = discover(.maven, files: files)
            #expect(r.endpoints.first?.url == "https://a.example.test/x?a=1&b=2")
            #expect(hasNote(r, "${env.UNSET_HOST}", "not set"))
            #expect(hasNote(r, "mirror b", "not a usable URL"))
        }

        @Test func miniXMLParsesNestedTextAndSkipsNoise() throws {
            let doc = try MiniXML.parse("""
                <?xml version="1.0"?>
                <!DOCTYPE settings [ <!ENTITY x "y"> ]>
                <s:settings a="1>2"><a>t&lt;1</a><b/><!-- c --></s:settings>
                """).get()
            #expect(doc.name == "settings")
            #expect(doc.value("a") == "t<1")
            #expect(doc.child("b") != nil)
            if case .failure(let problem) = MiniXML.parse("<a><b></a>") {
                #expect(problem.message.contains("</a>"))
            } else {
                Issue.record("mismatched tags accepted")
            }
        }
    }
}

// MARK: - What is never read

extension RegistryDiscoveryTests {
    @Suite struct HostFilesOnly {
        /// The environment a build might run with: the project directory as the working
        /// directory, and settings that point into it or are relative to it.
        private let workspace = "/work/project"
        private var projectEnv: [String: String] {
            [
                "PWD": workspace, "INIT_CWD": workspace, "OLDPWD": workspace,
                "PIP_CONFIG_FILE": "pip.conf", "XDG_CONFIG_HOME": ".config", "XDG_CONFIG_DIRS": "etc:/etc/xdg",
                "npm_config_userconfig": ".npmrc", "npm_config_globalconfig": "./npmrc",
                "GOENV": "go.env", "CARGO_HOME": ".cargo", "MAVEN_HOME": "maven", "VIRTUAL_ENV": ".venv",
            ]
        }

        @Test(arguments: PackageManager.allCases)
        func neverAsksForAProjectOrRelativePath(manager: PackageManager) {
            let projectFiles = [
                workspace + "/.npmrc": "registry=https://evil.example.test/\n",
                workspace + "/pip.conf": "[global]\nindex-url = https://evil.example.test/\n",
                workspace + "/.cargo/config.toml": "[source.crates-io]\nreplace-with = \"e\"\n[source.e]\nregistry = \"https://evil.example.test/\"\n",
            ]
            let (r, asked) = run(manager, env: projectEnv, home: "/home/u", files: projectFiles)
            #expect(!asked.isEmpty || manager == .go || manager == .cargo)
            for path in asked {
                #expect(path.hasPrefix("/"), "relative path read: \(path)")
                #expect(!path.hasPrefix(workspace), "project path read: \(path)")
            }
            #expect(!hosts(r).contains("evil.example.test:443"))
        }

        @Test func relativePathsAreNoted() {
            let r = discover(.npm, env: projectEnv)
            #expect(hasNote(r, "relative path `.npmrc`", "project directory"))
        }

        @Test func dotDotIsResolvedBeforeReading() {
            let (_, asked) = run(.pip, env: ["PIP_CONFIG_FILE": "/home/u/../../opt/./pip.conf"])
            #expect(asked.first == "/opt/pip.conf")
        }

        @Test func unknownHomeSkipsUserFiles() {
            let (r, asked) = run(.npm, home: nil)
            #expect(!asked.contains { $0.contains("~") })
            #expect(hasNote(r, "home directory is unknown"))
            let (_, relativeHome) = run(.maven, home: "relative/home")
            #expect(relativeHome == ["/etc/maven/settings.xml"])
        }

        @Test func duplicateHostAndPortIsListedOnce() {
            let r = discover(.pip, env: ["PIP_INDEX_URL": "https://registry.example.test/simple",
                                         "PIP_EXTRA_INDEX_URL": "https://REGISTRY.example.test:443/other http://registry.example.test/"])
            #expect(hosts(r) == ["registry.example.test:443", "registry.example.test:80"])
            #expect(r.endpoints.dropFirst(0).first?.url == "https://registry.example.test/simple")
        }
    }
}
