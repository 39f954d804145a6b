import Foundation
import OTKConfig
import OTKModel
import Testing

/// A unique temporary directory for one test's profile files, removed when the value goes away.
final class FixtureDir {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = (base.hasSuffix("/") ? base : base + "/") + "otk-unit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `name` (e.g. "a.toml") and returns its full path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    var loader: ProfileLoader { ProfileLoader(searchPath: [path]) }
}

/// Writes `files` into a fresh directory, loads `profile` by name and returns the error it throws.
func loadError(_ files: [String: String], load profile: String,
               sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> (error: OTKError, dir: String)? {
    let dir = try FixtureDir()
    for (name, text) in files { try dir.write(name, text) }
    let error = #expect(throws: OTKError.self, sourceLocation: sourceLocation) {
        _ = try dir.loader.load(profile)
    }
    guard let error else { return nil }
    return (error, dir.path)
}

/// Loads the single profile `text` as `p.toml` and returns the error it throws, checking it is a bad-input
/// error located in that file.
func profileError(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> OTKError? {
    guard let (error, dir) = try loadError(["p.toml": text], load: "p", sourceLocation: sourceLocation) else { return nil }
    #expect(error.kind == .badInput, sourceLocation: sourceLocation)
    #expect(error.location?.file == dir + "/p.toml", sourceLocation: sourceLocation)
    return error
}

/// Loads the single profile `text` as `p.toml`.
func loadProfile(_ text: String, extra: [String: String] = [:]) throws -> LoadedProfile {
    let dir = try FixtureDir()
    try dir.write("p.toml", text)
    for (name, t) in extra { try dir.write(name, t) }
    return try dir.loader.load("p")
}

/// The repository's shipped profiles/ directory.
let shippedProfilesDir: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()   // OTKConfigTests
    .deletingLastPathComponent()   // Tests
    .deletingLastPathComponent()   // repo root
    .appendingPathComponent("profiles").path
