import Foundation
import OTKModel
@testable import OTKPlan
import Testing

/// The repository's Tests/Fixtures/plans directory.
let planFixturesDir: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()   // OTKPlanTests
    .deletingLastPathComponent()   // Tests
    .appendingPathComponent("Fixtures/plans").path

func fixtureBytes(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: planFixturesDir + "/" + name)))
}

func parse(_ json: String, limits: PlanLimits = PlanLimits()) throws(OTKError) -> Plan {
    try PlanParser.parse(Array(json.utf8), file: "plan.json", limits: limits)
}

/// Parses `json`, expecting a `.badInput` error whose message starts with `` `path` `` and contains `contains`.
@discardableResult
func planError(_ json: String, path: String?, contains: String = "", limits: PlanLimits = PlanLimits(),
               sourceLocation: Testing.SourceLocation = #_sourceLocation) -> OTKError? {
    let error = #expect(throws: OTKError.self, sourceLocation: sourceLocation) {
        _ = try parse(json, limits: limits)
    }
    guard let error else { return nil }
    #expect(error.kind == .badInput, sourceLocation: sourceLocation)
    #expect(error.location?.file == "plan.json", sourceLocation: sourceLocation)
    if let path {
        #expect(error.message.hasPrefix("`\(path)`: "), "message: \(error.message)", sourceLocation: sourceLocation)
    }
    #expect(error.message.contains(contains), "message: \(error.message)", sourceLocation: sourceLocation)
    return error
}

/// A JSON string literal for `s`.
func jsonString(_ s: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [s], options: [])
    let text = String(decoding: data, as: UTF8.self)
    return String(text.dropFirst().dropLast())
}

/// A plan with the given file entries (each a JSON object text).
func planWith(_ entries: [String], extra: String = "") -> String {
    "{\"name\": \"t\", \"files\": [\(entries.joined(separator: ", "))]\(extra.isEmpty ? "" : ", " + extra)}"
}

func fileEntry(_ filename: String, _ code: String = "x", extra: String = "") -> String {
    "{\"filename\": \(jsonString(filename)), \"code\": \(jsonString(code))\(extra.isEmpty ? "" : ", " + extra)}"
}

/// A unique temporary directory, removed (with everything in it) when the value goes away.
final class TempDir {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = (base.hasSuffix("/") ? base : base + "/") + "otk-plan-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Every path below the directory, relative and sorted (symlinks are listed, not followed).
    func listing() throws -> [String] {
        var out: [String] = []
        func walk(_ rel: String) throws {
            let full = rel.isEmpty ? path : path + "/" + rel
            for name in try FileManager.default.contentsOfDirectory(atPath: full) {
                let r = rel.isEmpty ? name : rel + "/" + name
                out.append(r)
                let attrs = try FileManager.default.attributesOfItem(atPath: path + "/" + r)
                if attrs[.type] as? FileAttributeType == .typeDirectory { try walk(r) }
            }
        }
        try walk("")
        return out.sorted()
    }
}

func permissions(_ path: String) throws -> Int {
    let attrs = try FileManager.default.attributesOfItem(atPath: path)
    return (attrs[.posixPermissions] as! NSNumber).intValue
}
