/// The server closed the connection before a whole response arrived.
struct HTTPConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the server closed the connection before answering" }
}
