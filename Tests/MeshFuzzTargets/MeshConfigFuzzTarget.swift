import Foundation
import MeshConfig

/// Feeds arbitrary bytes to the mesh.json loader meshd and meshctl use (`MeshConfiguration.parse`,
/// what `load(path:)` calls after reading the file). It must never crash: a bad document is a
/// `ConfigError` (the typed throw guarantees nothing else escapes).
public enum MeshConfigFuzzTarget {
    /// What the loader made of one input.
    public enum Outcome: Sendable, Equatable {
        case accepted
        case refused(ConfigError)
    }

    public static func run(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        do {
            _ = try MeshConfiguration.parse(Data(bytes), file: "fuzz/mesh.json", directory: "/fuzz")
            return .accepted
        } catch {
            // Building the message a person reads is part of the path under test.
            _ = error.description
            return .refused(error)
        }
    }
}
