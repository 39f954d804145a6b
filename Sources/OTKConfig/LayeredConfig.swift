import OTKModel

/// Configuration documents stacked by `extends`: the first layer wins, tables merge
/// key by key, arrays and scalars are replaced whole.
public struct LayeredConfig: Sendable {
    /// Child first, then what it extends.
    public var layers: [ConfigDocument]

    public init(layers: [ConfigDocument]) {
        self.layers = layers
    }

    /// The effective value at `path`, merged across layers.
    public func value(at path: [String]) -> ConfigValue? {
        var result: ConfigValue? = nil
        for layer in layers.reversed() {
            guard let v = Self.lookup(layer.root, path) else { continue }
            result = Self.merge(base: result, over: v)
        }
        return result
    }

    /// Where `path` (and, for array elements, the element's text) was written: the
    /// first layer that defines it.
    public func location(of path: [String], element: String? = nil) -> SourceLocation? {
        for layer in layers where Self.lookup(layer.root, path) != nil {
            let line = element.map { layer.locator.line(of: path, element: $0) } ?? layer.locator.line(of: path)
            return SourceLocation(file: layer.file, line: line)
        }
        return layers.first.map { SourceLocation(file: $0.file, line: nil) }
    }

    /// The file that defines `path` in its own text (not by inheritance), or nil.
    public func definingFile(of path: [String]) -> String? {
        layers.first { Self.lookup($0.root, path) != nil }?.file
    }

    private static func lookup(_ root: [String: ConfigValue], _ path: [String]) -> ConfigValue? {
        var current: ConfigValue = .table(root)
        for key in path {
            guard case .table(let t) = current, let next = t[key] else { return nil }
            current = next
        }
        return current
    }

    private static func merge(base: ConfigValue?, over: ConfigValue) -> ConfigValue {
        guard case .table(let b)? = base, case .table(let o) = over else { return over }
        var out = b
        for (k, v) in o { out[k] = merge(base: b[k], over: v) }
        return .table(out)
    }
}
