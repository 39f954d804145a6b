/// One fixed-size record from otk-launcher's status pipe (`struct otk_record` in launcher.c).
public struct LauncherRecord: Sendable, Equatable {
    public enum Kind: UInt32, Sendable {
        case failure = 1
        case exit = 2
        /// The wall-clock limit ended the run; `value` is the payload's wait status.
        case timeout = 3
    }

    public static let size = 256
    static let magic: UInt32 = 0x314b_544f

    public var kind: Kind
    public var errno: Int32
    /// The payload's wait status, for `.exit`.
    public var value: Int32
    public var step: String
    public var detail: String

    public init(kind: Kind, errno: Int32, value: Int32, step: String, detail: String) {
        self.kind = kind
        self.errno = errno
        self.value = value
        self.step = step
        self.detail = detail
    }

    /// Decodes every complete record in `bytes`; nil if any is malformed.
    public static func decodeAll(_ bytes: [UInt8]) -> [LauncherRecord]? {
        guard bytes.count % size == 0 else { return nil }
        var out: [LauncherRecord] = []
        for start in stride(from: 0, to: bytes.count, by: size) {
            guard let r = decode(bytes[start..<start + size]) else { return nil }
            out.append(r)
        }
        return out
    }

    static func decode(_ b: ArraySlice<UInt8>) -> LauncherRecord? {
        func u32(_ o: Int) -> UInt32 {
            let i = b.startIndex + o
            return UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
        }
        func text(_ o: Int, _ n: Int) -> String {
            let field = b[(b.startIndex + o)..<(b.startIndex + o + n)]
            return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard u32(0) == magic, let kind = Kind(rawValue: u32(4)) else { return nil }
        return LauncherRecord(kind: kind, errno: Int32(bitPattern: u32(8)), value: Int32(bitPattern: u32(12)),
                              step: text(16, 32), detail: text(48, 208))
    }
}
