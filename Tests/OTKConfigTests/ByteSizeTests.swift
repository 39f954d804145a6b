import OTKConfig
import Testing

@Suite("ByteSize")
struct ByteSizeTests {
    static let valid: [(String, UInt64)] = [
        ("0", 0),
        ("1", 1),
        ("4096", 4096),
        ("512k", 512 << 10),
        ("512K", 512 << 10),
        ("64M", 64 << 20),
        ("64m", 64 << 20),
        ("2G", 2 << 30),
        ("1T", 1 << 40),
        ("007M", 7 << 20),
        ("16777215T", 16_777_215 << 40),
        ("18446744073709551615", UInt64.max),
    ]

    static let formatted: [(UInt64, String)] = [
        (0, "0"),
        (1, "1"),
        (1023, "1023"),
        (1024, "1k"),
        (1536, "1536"),
        (64 << 20, "64M"),
        ((64 << 20) + 1024, "65537k"),
        (3 << 30, "3G"),
        (1 << 40, "1T"),
        ((1 << 40) + (1 << 30), "1025G"),
        (5 << 40, "5T"),
    ]

    static let roundTrip: [UInt64] = [1, 4096, 1 << 10, 3 << 20, 7 << 30, 1 << 40, 123_456_789, (1 << 40) - 1]

    @Test(arguments: valid)
    func parsesValidSizes(text: String, bytes: UInt64) {
        #expect(ByteSize.parse(text) == bytes)
    }

    @Test(arguments: [
        "", "M", "k", "12Q", "1.5G", "-1", "+1", " 1", "1 ", "1 M", "1MB", "1e3", "0x10", "1_000",
        "99999999999T",            // overflows UInt64 after the multiplier
        "16777216T",               // exactly 2^64: overflows
        "18446744073709551616",    // does not fit UInt64 at all
        "١٢٣",                     // non-ASCII digits
        "1ｍ",                     // non-ASCII unit letter
    ])
    func rejectsInvalidSizes(text: String) {
        #expect(ByteSize.parse(text) == nil)
    }

    @Test(arguments: formatted)
    func formats(bytes: UInt64, text: String) {
        #expect(ByteSize.format(bytes) == text)
    }

    @Test(arguments: roundTrip)
    func formatThenParseRoundTrips(bytes: UInt64) {
        #expect(ByteSize.parse(ByteSize.format(bytes)) == bytes)
    }

    @Test func maximumIsOneTebibyte() {
        #expect(ByteSize.maximum == 1 << 40)
    }
}
