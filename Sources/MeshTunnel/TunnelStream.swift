import NIOCore
import NIOHTTP2

/// One stream as its tunnel sees it: where it is in its life, its local end, and its flow-control
/// credit. Created by `TunnelStreams` (or by an opener, then handed to it); touched only on the
/// tunnel's event loop.
final class TunnelStream: @unchecked Sendable {
    enum Phase {
        /// Made by an opener, not yet handed to the tunnel; local bytes wait here.
        case created(held: [ByteBuffer])
        /// Accepting side only: the dialer was asked on the control stream to open this stream
        /// (HTTP/2 lets only the client open streams); nothing of it is on the wire yet, and the
        /// local bytes wait here.
        case requested(reverseID: UInt64, held: [ByteBuffer])
        /// We sent the CONNECT. Local bytes already flow (the serving node holds them until its
        /// target is connected), so a new stream costs no round trip before its first bytes.
        case opening
        /// The peer opened it: we are connecting to the target and hold the peer's bytes until then.
        case connecting(held: [ByteBuffer])
        /// Answered; bytes flow both ways.
        case open
        /// Refused, failed or reset: nothing more is carried; waiting for HTTP/2 to close it.
        case finished
    }

    /// The service it reaches (for logs, metrics and refusals).
    let service: String
    /// Set once the stream is on the wire.
    var id: HTTP2StreamID?
    var phase: Phase
    /// The local socket; nil for a one-shot delivery and while a serving node connects.
    var socket: StreamSocket?
    /// A one-shot delivery's completion: succeeded when the stream closes cleanly.
    var oneShot: EventLoopPromise<Void>?
    /// Who opened it hears whether it opened (once).
    var onOpened: (@Sendable (Result<Void, Error>) -> Void)?
    /// Our side ended (END_STREAM sent, or to be sent with the held bytes).
    var localEnded = false
    /// The peer sent END_STREAM.
    var peerEnded = false
    /// Dialer only: the control-stream request this stream answers (a reverse stream).
    var reverseID: UInt64?
    /// What the peer still lets us send on this stream (its window as we count it).
    var sendCredit: Int
    /// Bytes the local socket took that we have not yet given back to the peer as window.
    var ungranted = 0
    /// Paused because the tunnel itself cannot take more; resumed when it can.
    var pausedByTunnel = false
    /// Queued for the flush at the end of the tunnel's read burst.
    var flushQueued = false
    /// Counted in the peer's active streams (from the moment a stream is on the wire or being served).
    var counted = false

    init(service: String, phase: Phase, sendCredit: Int) {
        self.service = service
        self.phase = phase
        self.sendCredit = sendCredit
    }

    /// Takes the local bytes held before the stream got on the wire.
    func takeHeld() -> [ByteBuffer] {
        switch self.phase {
        case .created(let held), .requested(_, let held): return held
        case .opening, .connecting, .open, .finished: return []
        }
    }

    /// Tells the opener how it went, once.
    func reportOpened(_ result: Result<Void, Error>) {
        guard let onOpened else { return }
        self.onOpened = nil
        onOpened(result)
    }
}
