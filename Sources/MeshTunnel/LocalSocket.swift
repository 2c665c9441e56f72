import NIOCore

/// How meshd ends a local TCP socket it carries (a stream's `StreamSocket`, a `SpliceHandler`):
/// never a FIN for a cut connection, never a FIN before every queued byte.
enum LocalSocket {
    static func isEndOfInput(_ event: Any) -> Bool {
        if case .some(.inputClosed) = event as? ChannelEvent { return true }
        return false
    }

    /// SO_LINGER {on, 0} while the connection is unfinished: if meshd dies (kill -9, a crash), the
    /// kernel closes the socket for it, and without this that close is a FIN after whatever bytes
    /// had arrived, which the peer would take for a complete stream (a silent truncation). With it
    /// the peer is reset.
    static func begin(_ context: ChannelHandlerContext) {
        _ = (context.channel as? SocketOptionProvider)?.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0))
    }

    /// Shuts our output only once every byte written before it reached the socket: NIO turns an
    /// output close on a socket whose input already ended into a full close, which would drop
    /// writes still queued (a client reading slowly would see EOF early: a silent truncation).
    /// Lingering is restored first: from here on, the kernel owes the peer our bytes and a FIN.
    static func finishOutput(_ context: ChannelHandlerContext) {
        let channel = context.channel
        Self.afterQueuedWrites(context) {
            Self.restoreLingering(channel)
            channel.close(mode: .output, promise: nil)
        }
    }

    /// Closes the socket once both directions finished, after the queued writes.
    static func closeWhenDone(_ context: ChannelHandlerContext) {
        let channel = context.channel
        Self.afterQueuedWrites(context) {
            Self.restoreLingering(channel)
            channel.close(promise: nil)
        }
    }

    /// Normal lingering (SO_LINGER off): close() sends what is queued, then FIN.
    static func restoreLingering(_ channel: Channel) {
        _ = (channel as? SocketOptionProvider)?.setSoLinger(NIOLinger(l_onoff: 0, l_linger: 0))
    }

    /// The connection was cut: RST.
    static func abort(_ context: ChannelHandlerContext) {
        TCPReset.reset(context.channel)
    }

    /// Runs `body` once the writes queued so far are in the kernel (writes complete in order).
    private static func afterQueuedWrites(_ context: ChannelHandlerContext, _ body: @escaping @Sendable () -> Void) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.whenComplete { _ in body() }
    }
}
