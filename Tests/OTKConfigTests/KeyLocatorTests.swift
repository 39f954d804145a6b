import OTKConfig
import Testing

@Suite("KeyLocator")
struct KeyLocatorTests {
    @Test func topLevelKeysAndTableHeaders() {
        let k = KeyLocator(text: """
        schema = 1
        # comment = 3

        [identity]
          uid = 1000   # indented
        \tgid = 1000
        [env.set]
        PATH = "/bin"
        """)
        #expect(k.line(of: ["schema"]) == 1)
        #expect(k.line(of: ["comment"]) == nil)
        #expect(k.line(of: ["identity"]) == 4)
        #expect(k.line(of: ["identity", "uid"]) == 5)
        #expect(k.line(of: ["identity", "gid"]) == 6)
        #expect(k.line(of: ["env", "set"]) == 7)
        #expect(k.line(of: ["env", "set", "PATH"]) == 8)
        #expect(k.line(of: ["uid"]) == nil, "a key belongs to its table")
        #expect(k.line(of: ["PATH"]) == nil)
    }

    @Test func missingKeysFallBackToTheEnclosingTable() {
        let k = KeyLocator(text: "schema = 1\n[filesystem]\nproc = true\n")
        #expect(k.line(of: ["filesystem", "dev"]) == 2)
        #expect(k.line(of: ["filesystem", "a", "b"]) == 2)
        #expect(k.line(of: ["network", "mode"]) == nil)
        #expect(k.line(of: []) == nil)
    }

    @Test func dottedKeys() {
        let k = KeyLocator(text: """
        schema = 1
        filesystem.proc = true
        env . set . HOME = "/h"
        [identity]
        a.b.c = 1
        """)
        #expect(k.line(of: ["filesystem", "proc"]) == 2)
        #expect(k.line(of: ["env", "set", "HOME"]) == 3)
        #expect(k.line(of: ["identity", "a", "b", "c"]) == 5)
        #expect(k.line(of: ["identity", "a", "b"]) == 4, "no line of its own: the enclosing written table")
    }

    @Test func quotedKeys() {
        let k = KeyLocator(text: """
        "quoted key" = 1
        'lit.eral' = 2
        a."b.c".d = 3
        ["env"."set"]
        "X=Y" = "v"
        k = "has = sign"
        """)
        #expect(k.line(of: ["quoted key"]) == 1)
        #expect(k.line(of: ["lit.eral"]) == 2)
        #expect(k.line(of: ["a", "b.c", "d"]) == 3)
        #expect(k.line(of: ["env", "set"]) == 4)
        #expect(k.line(of: ["env", "set", "X=Y"]) == 5)
        #expect(k.line(of: ["env", "set", "k"]) == 6)
    }

    @Test func headersWithSpacesAndComments() {
        let k = KeyLocator(text: "[ filesystem ]  # fs\nproc = true\n[[ arr . x ]]\ny = 1\n")
        #expect(k.line(of: ["filesystem", "proc"]) == 2)
        #expect(k.line(of: ["arr", "x"]) == 3)
        #expect(k.line(of: ["arr", "x", "y"]) == 4)
    }

    @Test func firstOccurrenceWins() {
        let k = KeyLocator(text: "[a]\nx = 1\n[b]\nx = 2\n[a.c]\nx = 3\n")
        #expect(k.line(of: ["a", "x"]) == 2)
        #expect(k.line(of: ["b", "x"]) == 4)
        #expect(k.line(of: ["a", "c", "x"]) == 6)
    }

    @Test func multiLineArrayElements() {
        let k = KeyLocator(text: """
        [filesystem]
        read_only = [
          "/usr",
          # a comment = with an equals sign
          "/bin?", '/lib?',
          "/etc/ssl/certs?",
        ]
        hidden = ["/usr"]
        proc = true
        """)
        #expect(k.line(of: ["filesystem", "read_only"]) == 2)
        #expect(k.line(of: ["filesystem", "read_only"], element: "/usr") == 3)
        #expect(k.line(of: ["filesystem", "read_only"], element: "/bin?") == 5)
        #expect(k.line(of: ["filesystem", "read_only"], element: "/lib?") == 5, "literal-quoted elements too")
        #expect(k.line(of: ["filesystem", "read_only"], element: "/etc/ssl/certs?") == 6)
        #expect(k.line(of: ["filesystem", "read_only"], element: "/etc/ssl") == 2, "a prefix of an element is not the element")
        #expect(k.line(of: ["filesystem", "read_only"], element: "/nowhere") == 2, "falls back to the key's line")
        // The search starts at the key: `"/usr"` in `hidden` is found on its own line, not in read_only.
        #expect(k.line(of: ["filesystem", "hidden"], element: "/usr") == 8)
        #expect(k.line(of: ["filesystem", "proc"]) == 9)
        #expect(k.line(of: ["nope"], element: "/usr") == nil)
    }

    @Test func inlineTablesInMultiLineArrays() {
        let k = KeyLocator(text: """
        [filesystem]
        tmpfs = [
          { path = "/tmp", size = "1G" },
          { path = "/dev/shm", mode = "1777" },
        ]
        dev = true
        """)
        #expect(k.line(of: ["filesystem", "tmpfs"]) == 2)
        #expect(k.line(of: ["filesystem", "tmpfs"], element: "/dev/shm") == 4)
        #expect(k.line(of: ["filesystem", "dev"]) == 6)
        #expect(k.line(of: ["filesystem", "path"]) == 1, "keys of inline tables are not keys of the table")
    }

    @Test func keysInsideMultiLineStringsAreNotMistaken() {
        let k = KeyLocator(text: #"""
        description = """
        uid = 5
        [identity]
        """
        notes = '''
        gid = 6
        [network]
        mode = "x"
        '''
        one = """inline"""
        [identity]
        uid = 1
        [network]
        mode = "none"
        """#)
        #expect(k.line(of: ["description"]) == 1)
        #expect(k.line(of: ["uid"]) == nil)
        #expect(k.line(of: ["gid"]) == nil)
        #expect(k.line(of: ["notes"]) == 5)
        #expect(k.line(of: ["one"]) == 10)
        #expect(k.line(of: ["identity"]) == 11)
        #expect(k.line(of: ["identity", "uid"]) == 12)
        #expect(k.line(of: ["network"]) == 13)
        #expect(k.line(of: ["network", "mode"]) == 14)
    }

    @Test func multiLineStringClosingWithText() {
        let k = KeyLocator(text: #"""
        a = """first
        b = 2
        last"""
        c = 3
        """#)
        #expect(k.line(of: ["a"]) == 1)
        #expect(k.line(of: ["b"]) == nil)
        #expect(k.line(of: ["c"]) == 4)
    }

    @Test
    func windowsLineEndings() {
        let k = KeyLocator(text: "schema = 1\r\n[identity]\r\nuid = 1\r\n")
        #expect(k.line(of: ["identity"]) == 2)
        #expect(k.line(of: ["identity", "uid"]) == 3)
    }
}
