import Foundation
import MeshTestSupport
import NIOCore
import NIOPosix

/// A TCP server on 127.0.0.1:0 that accepts one connection and does not read from it until told
/// to (autoRead off), then reads everything, hashing it, until EOF. It stands for a stalled
/// consumer in the backpressure test.
final class HeldReaderServer {
    /// What arrived: byte count, SHA-256, and whether it ended with a clean EOF.
    struct Received: Sendable {
        var bytes: Int
        var sha256: String
        var cleanEOF: Bool
    }

    let channel: Channel
    private let accepted: EventLoopPromise<Channel>
    private let finished: EventLoopPromise<Received>
    private let count = LockedCounter()
    var port: Int { self.channel.localAddress!.port! }
    var endpoint: String { "127.0.0.1:\(self.port)" }
    /// Bytes read so far (zero while held).
    var bytesRead: Int { self.count.value }
    var result: EventLoopFuture<Received> { self.finished.futureResult }
    var connection: EventLoopFuture<Channel> { self.accepted.futureResult }

    init(group: EventLoopGroup) throws {
        let loop = group.next()
        let accepted = loop.makePromise(of: Channel.self)
        let finished = loop.makePromise(of: Received.self)
        let count = self.count
        self.accepted = accepted
        self.finished = finished
        self.channel = try ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HashingSink(finished: finished, count: count)
                    )
                    accepted.succeed(channel)
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    /// Starts reading the accepted connection at full speed.
    func release() throws {
        let connection = try self.accepted.futureResult.wait()
        try connection.setOption(.autoRead, value: true).wait()
        connection.read()
    }

    func close() {
        self.accepted.futureResult.whenSuccess { $0.close(promise: nil) }
        self.finished.fail(ChannelError.ioOnClosedChannel)
        self.accepted.fail(ChannelError.ioOnClosedChannel)
        try? self.channel.close().wait()
    }
}

private final class HashingSink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let finished: EventLoopPromise<HeldReaderServer.Received>
    private let count: LockedCounter
    private let digest = SHA256Digest()
    private var bytes = 0
    private var done = false

    init(finished: EventLoopPromise<HeldReaderServer.Received>, count: LockedCounter) {
        self.finished = finished
        self.count = count
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.digest.update(buffer)
        self.bytes += buffer.readableBytes
        let total = self.bytes
        self.count.value = total
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            self.complete(cleanEOF: true)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.complete(cleanEOF: false)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.complete(cleanEOF: false)
    }

    private func complete(cleanEOF: Bool) {
        guard !self.done else { return }
        self.done = true
        self.finished.succeed(.init(bytes: self.bytes, sha256: self.digest.finish(), cleanEOF: cleanEOF))
    }
}

/// An Int shared between an event loop and the test thread.
final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0
    var value: Int {
        get { self.lock.withLock { self.stored } }
        set { self.lock.withLock { self.stored = newValue } }
    }
}

extension MeshTestCase {
    /// A `HeldReaderServer` closed at teardown.
    func makeHeldReader() throws -> HeldReaderServer {
        let server = try HeldReaderServer(group: self.group)
        self.addCleanup { server.close() }
        return server
    }
}
