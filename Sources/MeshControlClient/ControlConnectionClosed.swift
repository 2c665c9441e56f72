/// The agent closed the connection before a whole response arrived.
struct ControlConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the agent closed the connection before answering" }
}
