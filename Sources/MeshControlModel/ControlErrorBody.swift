/// The body of every non-2xx control API response: `{"error": "..."}`.
///
/// Stable API: fields are added, never renamed or removed.
public struct ControlErrorBody: Codable, Sendable, Equatable {
    /// What went wrong, written for the person running meshctl.
    public var error: String

    public init(error: String) {
        self.error = error
    }
}
