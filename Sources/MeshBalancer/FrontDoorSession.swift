/// What a `FrontDoorHandler` asks of the session it reads for: where the client's StartupMessage
/// goes, and where a CancelRequest goes. In meshd that is a `BalancerSession`; tests put their own
/// in its place. Called on the session's channel's event loop.
public protocol FrontDoorSession: AnyObject {
    /// Routes the session for `message` and joins its channel to the chosen backend, so that what
    /// the front door passes on next (the StartupMessage and anything after it) goes there. On a
    /// failure nothing was joined: the front door answers the client with the ErrorResponse and
    /// closes.
    func start(_ message: StartupMessage) -> Result<FrontDoorHandler.Route, ErrorResponse>

    /// Delivers a CancelRequest to the backend that issued `key`, if a live session holds it. The
    /// connection that carried it is closed by the front door either way, as PostgreSQL does.
    func cancel(_ key: BackendKeyData)
}
