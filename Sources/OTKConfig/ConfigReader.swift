import OTKModel

/// Typed, located access to one table of a layered configuration. Every failure
/// names the file and line of the offending key.
struct ConfigReader {
    let config: LayeredConfig
    let path: [String]

    init(_ config: LayeredConfig, _ path: [String] = []) {
        self.config = config
        self.path = path
    }

    var table: [String: ConfigValue] {
        if case .table(let t)? = config.value(at: path) { return t }
        return [:]
    }

    func error(_ key: String?, _ message: String, element: String? = nil) -> OTKError {
        let keyPath = key.map { path + [$0] } ?? path
        let name = keyPath.joined(separator: ".")
        return OTKError(.badInput, name.isEmpty ? message : "`\(name)`: \(message)",
                        location: config.location(of: keyPath, element: element))
    }

    /// Refuses any key not in `known`, so that a typo never silently weakens a profile.
    func requireOnly(_ known: Set<String>) throws(OTKError) {
        for key in table.keys.sorted() where !known.contains(key) {
            let list = known.sorted().joined(separator: ", ")
            throw error(key, "unknown key (known keys\(path.isEmpty ? "" : " in [\(path.joined(separator: "."))]"): \(list))")
        }
    }

    func sub(_ key: String) throws(OTKError) -> ConfigReader? {
        guard let v = table[key] else { return nil }
        guard case .table = v else { throw error(key, "expected a table, found \(v.typeName)") }
        return ConfigReader(config, path + [key])
    }

    func string(_ key: String) throws(OTKError) -> String? {
        guard let v = table[key] else { return nil }
        guard case .string(let s) = v else { throw error(key, "expected a string, found \(v.typeName)") }
        return s
    }

    func bool(_ key: String) throws(OTKError) -> Bool? {
        guard let v = table[key] else { return nil }
        guard case .bool(let b) = v else { throw error(key, "expected true or false, found \(v.typeName)") }
        return b
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws(OTKError) -> Int? {
        guard let v = table[key] else { return nil }
        guard case .integer(let i) = v else { throw error(key, "expected an integer, found \(v.typeName)") }
        guard range.contains(i) else { throw error(key, "\(i) is out of range \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    func array(_ key: String) throws(OTKError) -> [ConfigValue]? {
        guard let v = table[key] else { return nil }
        guard case .array(let a) = v else { throw error(key, "expected an array, found \(v.typeName)") }
        return a
    }

    func strings(_ key: String) throws(OTKError) -> [String]? {
        guard let items = try array(key) else { return nil }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw error(key, "expected an array of strings, found a \(item.typeName) in it") }
            out.append(s)
        }
        return out
    }

    /// A size: an integer number of bytes, or a string such as "64M", "1G", "512k".
    /// An integer or a float, as a Double.
    func number(_ key: String) throws(OTKError) -> Double? {
        guard let v = table[key] else { return nil }
        switch v {
        case .integer(let i): return Double(i)
        case .double(let d) where d.isFinite: return d
        default: throw error(key, "expected a number, found \(v.typeName)")
        }
    }

    /// A duration: "500ms", "30s", "15m", "1h30m", or a number of seconds.
    func duration(_ key: String, minimum: Double) throws(OTKError) -> Double? {
        guard let v = table[key] else { return nil }
        let seconds: Double?
        switch v {
        case .integer(let i): seconds = Double(i)
        case .double(let d): seconds = d
        case .string(let s): seconds = DurationText.parse(s)
        default: throw error(key, "expected a duration such as \"15m\", found \(v.typeName)")
        }
        guard let s = seconds, s.isFinite, s >= minimum, s <= DurationText.maximumSeconds else {
            throw error(key, "\(Self.written(v)) is not a duration between \(minimum == 0 ? "0" : DurationText.format(minimum)) and 7 days (write e.g. \"15m\", \"30s\", \"500ms\")")
        }
        return s
    }

    /// A value as the profile wrote it, for messages.
    static func written(_ v: ConfigValue) -> String {
        switch v {
        case .string(let s): return "\"\(s)\""
        case .integer(let i): return String(i)
        case .double(let d): return String(d)
        default: return v.typeName
        }
    }

    func size(_ key: String) throws(OTKError) -> UInt64? {
        guard let v = table[key] else { return nil }
        let parsed: UInt64?
        switch v {
        case .integer(let i): parsed = i > 0 ? UInt64(i) : nil
        case .string(let s): parsed = ByteSize.parse(s)
        default: throw error(key, "expected a size such as \"64M\", found \(v.typeName)")
        }
        guard let bytes = parsed, bytes > 0, bytes <= ByteSize.maximum else {
            throw error(key, "\(Self.written(v)) is not a size between 1 byte and 1T (write e.g. \"64M\")")
        }
        return bytes
    }
}

/// Byte sizes written the way people write them: "4096", "512k", "64M", "2G", "1T", or with
/// binary units spelled out: "512KiB", "64MiB", "2GiB". Every unit is a power of two.
public enum ByteSize {
    public static let maximum: UInt64 = 1 << 40

    public static func parse(_ text: String) -> UInt64? {
        var digits = Substring(text)
        var multiplier: UInt64 = 1
        // "KiB", "MiB", ...: the "iB" only after a unit letter.
        if digits.hasSuffix("iB"), digits.count > 3, let unit = digits.dropLast(2).last, unit.isLetter { digits = digits.dropLast(2) }
        if let last = digits.last, last.isLetter {
            switch last.lowercased() {
            case "k": multiplier = 1 << 10
            case "m": multiplier = 1 << 20
            case "g": multiplier = 1 << 30
            case "t": multiplier = 1 << 40
            default: return nil
            }
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt64(digits) else { return nil }
        let (product, overflow) = n.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    public static func format(_ bytes: UInt64) -> String {
        for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("k", 10)] where bytes >= (1 << shift) && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return "\(bytes)"
    }
}
