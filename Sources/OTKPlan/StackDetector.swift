import OTKModel

/// The stack and variant of a project, and the evidence for them.
public struct Detection: Sendable {
    public var stack: Stack
    public var variant: StackVariant
    /// Every stack that matched at all, best first: its score and the markers that matched.
    public var scores: [Score]
    /// True when the plan's `stack` chose the stack, not the markers.
    public var chosenByPlan: Bool

    public struct Score: Sendable, Equatable {
        public var stack: String
        public var score: Int
        /// The markers that matched, as written (`go.mod`, `*.py`).
        public var evidence: [String]
    }

    /// One line for humans: "go (go.mod, *.go: 110; python: 10)".
    public var summary: String {
        let why = chosenByPlan ? "named by the plan's `stack`" : scores.map { "\($0.stack) \($0.score): \($0.evidence.joined(separator: ", "))" }.joined(separator: "; ")
        return "\(stack.name)/\(variant.name) (\(why))"
    }
}

/// Picks a plan's stack by weighted markers over its file names: the stack whose matched markers
/// weigh most wins, so one strong marker (`go.mod`) outweighs a stray helper (`tool.py`).
public enum StackDetector {
    /// Detects over `filenames` (paths relative to the project root). `named`, the plan's `stack`, wins.
    public static func detect(filenames: [String], stacks: [Stack], named: String? = nil) throws(OTKError) -> Detection {
        let files = Set(filenames)
        let scores = stacks.compactMap { stack -> Detection.Score? in
            let (score, evidence) = self.score(stack.markers, files)
            return score > 0 ? Detection.Score(stack: stack.name, score: score, evidence: evidence) : nil
        }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.stack < $1.stack }
        let known = stacks.map(\.name).sorted().joined(separator: ", ")
        let stack: Stack
        if let named {
            guard let found = stacks.first(where: { $0.name == named }) else {
                throw OTKError(.badInput, "`stack`: no stack named `\(named)`", remedy: "known stacks: \(known)")
            }
            stack = found
        } else {
            guard let best = scores.first else {
                throw OTKError(.badInput, "no stack matches the plan's files",
                               remedy: "name one with \"stack\" in the plan (known stacks: \(known)); `otk stacks` lists their markers")
            }
            if scores.count > 1, scores[1].score == best.score {
                let tied = scores.filter { $0.score == best.score }
                throw OTKError(.badInput, "the plan matches \(tied.map { "`\($0.stack)` (\($0.evidence.joined(separator: ", ")))" }.joined(separator: " and ")) equally (score \(best.score))",
                               remedy: "name the stack with \"stack\" in the plan")
            }
            guard let found = stacks.first(where: { $0.name == best.stack }) else {
                throw OTKError(.internalError, "stack `\(best.stack)` scored but is not loaded")
            }
            stack = found
        }
        return Detection(stack: stack, variant: variant(of: stack, files), scores: scores, chosenByPlan: named != nil)
    }

    /// The variant whose markers weigh most; the default when none matches or the default ties for first.
    public static func variant(of stack: Stack, _ files: Set<String>) -> StackVariant {
        let scored: [(variant: StackVariant, score: Int)] = stack.variants.map { ($0, score($0.markers, files).score) }
        let ranked = scored.sorted { (a: (variant: StackVariant, score: Int), b: (variant: StackVariant, score: Int)) -> Bool in
            if a.score != b.score { return a.score > b.score }
            if a.variant.isDefault != b.variant.isDefault { return a.variant.isDefault }
            return a.variant.name < b.variant.name
        }
        guard let best = ranked.first, best.score > 0 else {
            return stack.variants.first(where: \.isDefault) ?? stack.variants[0]
        }
        return best.variant
    }

    /// The total weight of the markers that match any file, and those markers as written.
    static func score(_ markers: [StackMarker], _ files: Set<String>) -> (score: Int, evidence: [String]) {
        var total = 0
        var evidence: [String] = []
        for marker in markers {
            let byFile = marker.files.filter { files.contains($0) }
            let byGlob = marker.globs.filter { glob in files.contains { Glob.matches(glob, baseName($0)) } }
            guard !byFile.isEmpty || !byGlob.isEmpty else { continue }
            total += marker.weight
            evidence += byFile + byGlob
        }
        return (total, evidence)
    }

    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// Shell-style patterns with `*` (any run of characters) and `?` (one character), over whole names.
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.unicodeScalars), n = Array(name.unicodeScalars)
        var pi = 0, ni = 0
        var star = -1, mark = 0
        while ni < n.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == n[ni]) {
                pi += 1
                ni += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi
                mark = ni
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ni = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
