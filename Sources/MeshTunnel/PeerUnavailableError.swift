/// `meshctl ping` or a stream named a peer whose tunnel is not up.
public struct PeerUnavailableError: Error, CustomStringConvertible {
    public var peer: String
    public var description: String { "no tunnel to \(self.peer) is up" }
}
