import MeshConfig

/// A listener could not be opened.
public struct ListenError: Error, CustomStringConvertible {
    public var what: String
    public var endpoint: Endpoint
    public var underlying: Error

    public init(what: String, endpoint: Endpoint, underlying: Error) {
        self.what = what
        self.endpoint = endpoint
        self.underlying = underlying
    }

    public var description: String {
        "cannot listen for \(self.what) on \(self.endpoint): \(self.underlying) — is another process using it?"
    }
}
