@testable import OTKSandbox
import Testing

@Suite("LauncherRecord")
struct LauncherRecordTests {
    static func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

    /// A record laid out like `struct otk_record` in launcher.c.
    static func record(magic: UInt32 = 0x314b_544f, kind: UInt32, errno: Int32, value: Int32, step: String, detail: String) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 256)
        b.replaceSubrange(0..<4, with: le(magic))
        b.replaceSubrange(4..<8, with: le(kind))
        b.replaceSubrange(8..<12, with: le(UInt32(bitPattern: errno)))
        b.replaceSubrange(12..<16, with: le(UInt32(bitPattern: value)))
        let s = Array(step.utf8.prefix(32))
        b.replaceSubrange(16..<(16 + s.count), with: s)
        let d = Array(detail.utf8.prefix(208))
        b.replaceSubrange(48..<(48 + d.count), with: d)
        return b
    }

    @Test func layoutConstants() {
        #expect(LauncherRecord.size == 256)
        #expect(LauncherRecord.magic == 0x314b_544f)
        #expect(Self.record(kind: 1, errno: 0, value: 0, step: "", detail: "").prefix(4) == [0x4f, 0x54, 0x4b, 0x31], "\"OTK1\" on the wire")
    }

    @Test func decodesAFailureRecord() throws {
        let bytes = Self.record(kind: 1, errno: 13, value: 0, step: "bind", detail: "/opt/x")
        let records = try #require(LauncherRecord.decodeAll(bytes))
        #expect(records == [LauncherRecord(kind: .failure, errno: 13, value: 0, step: "bind", detail: "/opt/x")])
    }

    @Test func decodesSeveralRecordsAndSignedFields() throws {
        let bytes = Self.record(kind: 1, errno: -1, value: 0, step: "clone3", detail: "")
            + Self.record(kind: 2, errno: 0, value: 0x0100 | 0x7f, step: "", detail: "exit")
        let records = try #require(LauncherRecord.decodeAll(bytes))
        #expect(records.count == 2)
        #expect(records[0].kind == .failure && records[0].errno == -1 && records[0].step == "clone3" && records[0].detail.isEmpty)
        #expect(records[1].kind == .exit && records[1].value == 0x017f && records[1].detail == "exit")
    }

    @Test func fullWidthTextFieldsWithoutNUL() throws {
        let step = String(repeating: "s", count: 32)
        let detail = String(repeating: "d", count: 208)
        let records = try #require(LauncherRecord.decodeAll(Self.record(kind: 1, errno: 2, value: 3, step: step, detail: detail)))
        #expect(records.first?.step == step, "step must stop at 32 bytes, not run into detail")
        #expect(records.first?.detail == detail)
    }

    @Test func textStopsAtTheFirstNUL() throws {
        var bytes = Self.record(kind: 1, errno: 0, value: 0, step: "proc", detail: "abc")
        bytes[16 + 5] = UInt8(ascii: "X")  // garbage after the terminator
        bytes[48 + 10] = UInt8(ascii: "Y")
        let r = try #require(LauncherRecord.decodeAll(bytes)?.first)
        #expect(r.step == "proc")
        #expect(r.detail == "abc")
    }

    @Test func emptyInputIsNoRecords() {
        #expect(LauncherRecord.decodeAll([]) == [])
    }

    @Test func wrongMagicIsNil() {
        #expect(LauncherRecord.decodeAll(Self.record(magic: 0x4f544b31, kind: 1, errno: 0, value: 0, step: "x", detail: "")) == nil)
        #expect(LauncherRecord.decodeAll([UInt8](repeating: 0, count: 256)) == nil)
    }

    @Test func badMagicInALaterRecordIsNil() {
        let good = Self.record(kind: 2, errno: 0, value: 0, step: "", detail: "")
        let bad = Self.record(magic: 0, kind: 2, errno: 0, value: 0, step: "", detail: "")
        #expect(LauncherRecord.decodeAll(good + bad) == nil)
    }

    @Test(arguments: [UInt32(0), 4, 0xffff_ffff])
    func unknownKindIsNil(kind: UInt32) {
        #expect(LauncherRecord.decodeAll(Self.record(kind: kind, errno: 0, value: 0, step: "", detail: "")) == nil)
    }

    @Test(arguments: [1, 4, 255, 257, 511])
    func partialLengthIsNil(length: Int) {
        let bytes = Self.record(kind: 1, errno: 0, value: 0, step: "x", detail: "") + Self.record(kind: 2, errno: 0, value: 0, step: "", detail: "")
        #expect(LauncherRecord.decodeAll(Array(bytes.prefix(length))) == nil)
    }
}
