import NIOCore

/// A socket's way to its stream in the tunnel: each call runs `TunnelStreams`' handling on the
/// tunnel's loop, directly when the socket shares it. One method per message rather than one
/// generic `run { }`: a closure passed per call would be allocated per message on the hot path.
struct TunnelSide: @unchecked Sendable {
    let streams: TunnelStreams
    let stream: TunnelStream
    let loop: EventLoop

    /// Hands a stream made by an opener to its tunnel.
    func open() {
        if self.loop.inEventLoop { return self.streams.open(self.stream) }
        self.loop.execute { self.streams.open(self.stream) }
    }

    /// Gives up on the stream: reset it.
    func cancel() {
        if self.loop.inEventLoop { return self.streams.cancel(self.stream) }
        self.loop.execute { self.streams.cancel(self.stream) }
    }

    func read(_ bytes: ByteBuffer) {
        if self.loop.inEventLoop { return self.streams.socketRead(self.stream, bytes) }
        self.loop.execute { self.streams.socketRead(self.stream, bytes) }
    }

    func readComplete() {
        if self.loop.inEventLoop { return self.streams.socketReadComplete(self.stream) }
        self.loop.execute { self.streams.socketReadComplete(self.stream) }
    }

    func inputEnded() {
        if self.loop.inEventLoop { return self.streams.socketInputEnded(self.stream) }
        self.loop.execute { self.streams.socketInputEnded(self.stream) }
    }

    func credit(_ bytes: Int) {
        if self.loop.inEventLoop { return self.streams.socketConsumed(self.stream, bytes: bytes) }
        self.loop.execute { self.streams.socketConsumed(self.stream, bytes: bytes) }
    }

    func closed(finished: Bool) {
        if self.loop.inEventLoop { return self.streams.socketClosed(self.stream, finished: finished) }
        self.loop.execute { self.streams.socketClosed(self.stream, finished: finished) }
    }
}
