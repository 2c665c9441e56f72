/// Configuration errors a person reads: file path + what is wrong + what to do.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    /// The file the problem is in (or the pair of files, for a key that does not match its certificate).
    public var file: String
    /// What is wrong and what to do about it.
    public var message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
