import NIOCore
import NIOEmbedded
import XCTest

@testable import MeshTunnel

/// The splice between two local sockets (a balancer session routed to its own node), on two
/// EmbeddedChannels: bytes both ways, backpressure, half-close both ways, and a cut side resetting
/// the other instead of ending it.
final class SpliceTests: XCTestCase {
    /// Sits between a splice side and its channel and records what the splice asks of the socket.
    /// An output half-close is recorded and answered here: EmbeddedChannel would close fully.
    final class SocketRecorder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var events: [String] = []

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let bytes = self.unwrapOutboundIn(data)
            // The splice writes an empty buffer to learn when what it queued before has been written.
            self.events.append(bytes.readableBytes == 0 ? "drain" : "write \(String(buffer: bytes))")
            context.write(data, promise: promise)
        }

        func flush(context: ChannelHandlerContext) {
            self.events.append("flush")
            context.flush()
        }

        func read(context: ChannelHandlerContext) {
            self.events.append("read")
            context.read()
        }

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            switch mode {
            case .output:
                self.events.append("fin")
                promise?.succeed(())
            default:
                self.events.append("close")
                context.close(mode: mode, promise: promise)
            }
        }
    }

    struct Side {
        let channel: EmbeddedChannel
        let splice: SpliceHandler
        let socket: SocketRecorder

        /// What the socket was asked since the last call, minus reads.
        func take() -> [String] {
            defer { self.socket.events.removeAll() }
            return self.socket.events.filter { $0 != "read" }
        }
    }

    /// A client side and a service side, both in their pipelines (the service added second, as
    /// `MeshNode` does once its connect succeeded).
    func makePair(addService: Bool = true) throws -> (client: Side, service: Side) {
        let clientChannel = EmbeddedChannel()
        let serviceChannel = EmbeddedChannel()
        let pair = Splice.makeLocalPair(clientLoop: clientChannel.eventLoop, serviceLoop: serviceChannel.eventLoop)
        let client = Side(channel: clientChannel, splice: pair.client, socket: SocketRecorder())
        let service = Side(channel: serviceChannel, splice: pair.service, socket: SocketRecorder())
        try client.channel.pipeline.syncOperations.addHandlers([client.socket, client.splice])
        if addService { try service.channel.pipeline.syncOperations.addHandlers([service.socket, service.splice]) }
        return (client, service)
    }

    func testBytesFlowBothWaysOneFlushPerReadBurst() throws {
        let (client, service) = try self.makePair()
        client.channel.pipeline.fireChannelRead(ByteBuffer(string: "Q1"))
        client.channel.pipeline.fireChannelRead(ByteBuffer(string: "Q2"))
        XCTAssertEqual(service.take(), [], "nothing before the read burst ends")
        client.channel.pipeline.fireChannelReadComplete()
        XCTAssertEqual(service.take(), ["write Q1", "write Q2", "flush"])

        try service.channel.writeInbound(ByteBuffer(string: "R"))
        service.channel.pipeline.fireChannelReadComplete()
        XCTAssertEqual(client.take(), ["write R", "flush"])
        XCTAssertEqual(client.splice.state, .open(input: .flowing, output: .open(toldPartnerFull: false)))
    }

    func testSignalsBeforeTheServiceSideIsAddedWaitInOrder() throws {
        let (client, service) = try self.makePair(addService: false)
        client.channel.pipeline.read()
        XCTAssertEqual(client.socket.events, [], "no read before the service side can take the bytes")
        XCTAssertEqual(client.splice.state, .open(input: .paused(readHeld: true), output: .open(toldPartnerFull: false)))
        try client.channel.writeInbound(ByteBuffer(string: "startup"))
        client.channel.pipeline.fireChannelReadComplete()

        try service.channel.pipeline.syncOperations.addHandlers([service.socket, service.splice])
        XCTAssertEqual(service.take(), ["write startup", "flush"])
        XCTAssertEqual(client.socket.events, ["read"], "the held read goes out once the partner is there")
    }

    func testASlowReaderPausesTheWriterUntilItDrains() throws {
        let (client, service) = try self.makePair()
        service.channel.isWritable = false
        try client.channel.writeInbound(ByteBuffer(string: "bulk"))
        client.channel.pipeline.fireChannelReadComplete()
        XCTAssertEqual(service.splice.state, .open(input: .flowing, output: .open(toldPartnerFull: true)))
        XCTAssertEqual(client.splice.state, .open(input: .paused(readHeld: false), output: .open(toldPartnerFull: false)))

        client.socket.events.removeAll()
        client.channel.pipeline.read()
        XCTAssertEqual(client.socket.events, [], "a paused side reads nothing")
        service.channel.isWritable = true
        service.channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(client.socket.events, ["read"], "the held read goes out once the reader drained")
        XCTAssertEqual(client.splice.state, .open(input: .flowing, output: .open(toldPartnerFull: false)))
    }

    func testEndOfInputIsAHalfCloseAndBothEndsCloseTheSplice() throws {
        let (client, service) = try self.makePair()
        try client.channel.writeInbound(ByteBuffer(string: "last"))
        client.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(service.take(), ["write last", "flush", "drain", "flush", "fin"], "FIN only after the bytes before it")
        XCTAssertEqual(service.splice.state, .open(input: .flowing, output: .finished))

        try service.channel.writeInbound(ByteBuffer(string: "answer"))
        service.channel.pipeline.fireChannelReadComplete()
        XCTAssertEqual(client.take(), ["write answer", "flush"], "the other direction still flows")

        service.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(client.take(), ["drain", "flush", "fin", "drain", "flush", "close"])
        XCTAssertEqual(service.take(), ["drain", "flush", "close"])
        XCTAssertEqual(client.splice.state, .closed)
        XCTAssertEqual(service.splice.state, .closed)
    }

    func testASideCutBeforeItFinishedResetsTheOther() throws {
        let (client, service) = try self.makePair()
        try client.channel.writeInbound(ByteBuffer(string: "half a query"))
        client.channel.pipeline.fireChannelReadComplete()
        XCTAssertEqual(service.take(), ["write half a query", "flush"])

        client.channel.pipeline.fireErrorCaught(ChannelError.ioOnClosedChannel)
        XCTAssertEqual(client.splice.state, .closed)
        XCTAssertEqual(service.take(), ["close"], "reset at once: no drain, no FIN")
        XCTAssertEqual(service.splice.state, .closed)
        XCTAssertFalse(service.channel.isActive)
    }

    func testAnEndAfterAHalfCloseWithoutAnEventIsStillClean() throws {
        let (client, service) = try self.makePair()
        service.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(client.take(), ["drain", "flush", "fin"])
        // NIO closes a socket whose output is shut when its input reaches EOF, with no inputClosed.
        client.channel.pipeline.fireChannelInactive()
        XCTAssertEqual(service.take(), ["drain", "flush", "fin", "drain", "flush", "close"], "a clean end, not a reset")
    }
}
