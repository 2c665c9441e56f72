/// The response body passed the exchange's limit; the connection was closed.
struct HTTPResponseTooLarge: Error, CustomStringConvertible {
    var limit: Int
    var description: String { "the response was larger than \(self.limit) bytes" }
}
