import Foundation
import MeshBalancer
import MeshConfig
import MeshTLS

/// A failure before the agent opens any socket, with the exit status it maps to.
struct StartupError: Error {
    var code: Int32
    var message: String
}
