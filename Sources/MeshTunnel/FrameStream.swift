import NIOCore

/// One open stream as `TunnelFrameHandler` sees it: which sides ended, both flow-control windows,
/// and what waits for window. Closed streams are not kept: a frame for a stream ID at or below
/// the highest one opened that is not here belongs to a closed stream.
struct FrameStream {
    /// DATA waiting to go out on this stream, in order; `promise` completes once all of it did.
    struct PendingData {
        var bytes: ByteBuffer
        let endStream: Bool
        let promise: EventLoopPromise<Void>?
    }

    /// We sent END_STREAM (or RST_STREAM).
    var localEnded = false
    /// The peer sent END_STREAM.
    var remoteEnded = false
    /// What we may still send (the peer's window for this stream).
    var sendWindow: Int
    /// What the peer may still send (our window for this stream).
    var receiveWindow: Int
    /// DATA that did not fit the windows when written; sent as window opens.
    var pending: [PendingData] = []
    /// Opened by the peer (counted against the concurrent streams we allow).
    let openedByPeer: Bool

    init(sendWindow: Int, receiveWindow: Int, openedByPeer: Bool) {
        self.sendWindow = sendWindow
        self.receiveWindow = receiveWindow
        self.openedByPeer = openedByPeer
    }

    /// Both sides ended and nothing waits: the stream is over.
    var isDone: Bool { self.localEnded && self.remoteEnded && self.pending.isEmpty }
}
