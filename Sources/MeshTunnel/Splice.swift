import NIOCore

/// Carries bytes both ways between two local sockets on this node: a balancer session routed to
/// this node's own service (no tunnel between), with backpressure, half-close and reset semantics:
///
/// - A side reads only while its partner is writable, so a slow reader slows the writer and nothing
///   buffers without bound.
/// - EOF on one side becomes a half-close (FIN) on the other, both ways.
/// - A side that dies before both directions finished makes the other side abort: its socket is
///   reset (RST via SO_LINGER 0), never closed with FIN, so a client cannot take a cut stream for a
///   complete one. That holds even when meshd itself dies: sockets carry SO_LINGER 0 from the
///   start and lose it only when their output ends cleanly (`LocalSocket`).
///
/// Tunnel streams do not use this: `StreamSocket` joins a socket to a stream in `TunnelStreams`.
/// The two channels may live on different event loops; signals hop loops only when they must.
enum Splice {
    /// Two sides, for a connection to a service this node serves itself: the accepted client's side
    /// reads once the service's side is added, and vice versa.
    static func makeLocalPair(clientLoop: EventLoop, serviceLoop: EventLoop) -> (client: SpliceHandler, service: SpliceHandler) {
        let client = SpliceHandler(loop: clientLoop)
        let service = SpliceHandler(loop: serviceLoop)
        client.partner = SplicePartner(service)
        service.partner = SplicePartner(client)
        return (client, service)
    }
}
