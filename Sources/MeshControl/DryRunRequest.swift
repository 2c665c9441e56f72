import Foundation

/// What `POST /v1/reload?dry_run=true` asks the agent to plan: its own config file, as a reload
/// reads it, or a mesh.json sent in the request body (`meshctl check PATH --against SOCKET`).
public struct DryRunRequest: Sendable, Equatable {
    /// The candidate mesh.json's bytes; nil plans the agent's own config file.
    public var document: Data?
    /// How errors name the candidate (the path the operator gave meshctl); nil names it as the
    /// agent's own config file.
    public var file: String?

    public init(document: Data? = nil, file: String? = nil) {
        self.document = document
        self.file = file
    }
}
