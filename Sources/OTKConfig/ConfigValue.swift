import OTKModel
import TOMLKit

/// A parsed configuration value, detached from the TOML library so that
/// validation is plain Swift.
public indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case bool(Bool)
    case double(Double)
    case array([ConfigValue])
    case table([String: ConfigValue])
    /// Dates and times: valid TOML, never valid in a profile.
    case other(String)

    /// The name used in "expected X, found Y" messages.
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .bool: return "boolean"
        case .double: return "floating-point number"
        case .array: return "array"
        case .table: return "table"
        case .other(let name): return name
        }
    }
}

/// One configuration file, parsed, with the means to find the line of any key.
public struct ConfigDocument: Sendable {
    public var file: String
    public var root: [String: ConfigValue]
    public var locator: KeyLocator

    /// The largest configuration file otk reads; anything bigger is refused, not truncated.
    public static let maximumSize = 1 << 20

    /// Parses TOML text. Syntax errors carry the file, line and column.
    public static func parse(_ text: String, file: String) throws(OTKError) -> ConfigDocument {
        if text.utf8.count > maximumSize {
            throw OTKError(.badInput, "file is larger than \(maximumSize) bytes", location: SourceLocation(file: file, line: nil))
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw OTKError(.badInput, "TOML syntax error at column \(error.source.begin.column): \(error.description)",
                           location: SourceLocation(file: file, line: error.source.begin.line))
        } catch {
            throw OTKError(.badInput, "cannot parse TOML: \(error)", location: SourceLocation(file: file, line: nil))
        }
        guard case .table(let root) = convert(table) else {
            throw OTKError(.internalError, "TOML document is not a table")
        }
        return ConfigDocument(file: file, root: root, locator: KeyLocator(text: text))
    }

    private static func convert(_ value: TOMLValueConvertible) -> ConfigValue {
        switch value.type {
        case .string: return .string(value.string ?? "")
        case .int: return .integer(value.int ?? 0)
        case .bool: return .bool(value.bool ?? false)
        case .double: return .double(value.double ?? 0)
        case .array: return .array((value.array ?? TOMLArray()).map { convert($0) })
        case .table:
            var out: [String: ConfigValue] = [:]
            for (key, child) in value.table ?? TOMLTable() { out[key] = convert(child) }
            return .table(out)
        case .date, .time, .dateTime: return .other(value.type.description)
        }
    }
}
