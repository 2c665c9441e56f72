import NIOCore
import NIOEmbedded

/// What a pipeline did with one fuzz input, for replay tests to check a seed reached its path.
public struct ChannelTranscript: Sendable, Equatable {
    /// Bytes the pipeline wrote towards the peer.
    public var written = 0
    /// Bytes that reached the end of the pipeline (the application side).
    public var passedOn = 0
    /// Whether the pipeline closed the channel before the input ended.
    public var closedEarly = false
}

/// Drives one EmbeddedChannel the way a remote peer would: connects it, delivers the bytes in reads,
/// collects what the pipeline writes back and what it passes on, then closes it for good (running
/// every timer, so no handshake or close_notify wait is left pending between inputs).
struct EmbeddedPeer {
    let channel: EmbeddedChannel

    init(handlers: [any ChannelHandler]) throws {
        self.channel = EmbeddedChannel()
        try self.channel.pipeline.syncOperations.addHandlers(handlers)
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7443)).wait()
    }

    /// Delivers `input`'s chunks, optionally followed by the end of the peer's input, and tears down.
    func play(_ input: FuzzInput, endInput: Bool) -> ChannelTranscript {
        var transcript = ChannelTranscript()
        for chunk in input.chunks where self.channel.isActive {
            var buffer = self.channel.allocator.buffer(capacity: chunk.count)
            buffer.writeBytes(chunk)
            // A handler's error is an answer to bad input, not a crash.
            _ = try? self.channel.writeInbound(buffer)
            self.drain(into: &transcript)
        }
        if self.channel.isActive, endInput {
            self.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            self.drain(into: &transcript)
        }
        transcript.closedEarly = !self.channel.isActive
        self.channel.close(promise: nil)
        self.channel.embeddedEventLoop.advanceTime(by: .seconds(120))
        self.drain(into: &transcript)
        _ = try? self.channel.finish(acceptAlreadyClosed: true)
        return transcript
    }

    private func drain(into transcript: inout ChannelTranscript) {
        self.channel.embeddedEventLoop.run()
        while let out = try? self.channel.readOutbound(as: ByteBuffer.self) { transcript.written += out.readableBytes }
        while let passed = try? self.channel.readInbound(as: ByteBuffer.self) { transcript.passedOn += passed.readableBytes }
    }
}
