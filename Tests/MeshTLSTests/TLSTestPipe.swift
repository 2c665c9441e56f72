import MeshConfig
import NIOCore
import NIOEmbedded
import XCTest

@testable import MeshTLS

/// Sits after the TLS handler and records what reaches the application, in order.
final class TLSRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    var log: [String] = []
    var received: [UInt8] = []
    var readSizes: [Int] = []
    var handshake: TLSHandshakeCompleted?
    var errors: [any Error] = []
    var inactive = false
    /// Runs when the handshake-completed event arrives (e.g. to write a greeting).
    var onHandshake: ((ChannelHandlerContext) -> Void)?

    var handshakeError: TLSHandshakeError? { errors.lazy.compactMap { $0 as? TLSHandshakeError }.first }
    var connectionErrors: [TLSConnectionError] { errors.compactMap { $0 as? TLSConnectionError } }
    var receivedText: String { String(decoding: received, as: UTF8.self) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytesView
        readSizes.append(buffer.readableBytes)
        log.append("read(\(buffer.readableBytes))")
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        log.append("readComplete")
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            handshake = completed
            log.append("handshake")
            onHandshake?(context)
        } else {
            log.append("event(\(event))")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
        log.append("error(\(error))")
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        log.append("inactive")
    }
}

/// Two EmbeddedChannels, each with an OpenSSLHandler, joined by moving one side's outbound bytes
/// into the other's inbound.
final class TLSPipe {
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    let clientHandler: OpenSSLHandler
    let serverHandler: OpenSSLHandler
    let clientRecorder = TLSRecorder()
    let serverRecorder = TLSRecorder()

    init(
        client clientContext: TLSContext,
        server serverContext: TLSContext,
        clientPolicy: PeerPolicy = .exactly(MeshIdentity(mesh: TLSTestPKI.mesh, node: "db1")),
        serverPolicy: PeerPolicy = .declaredNode(mesh: TLSTestPKI.mesh, nodes: TLSTestPKI.declared)
    ) throws {
        clientHandler = OpenSSLHandler(context: clientContext, policy: clientPolicy)
        serverHandler = OpenSSLHandler(context: serverContext, policy: serverPolicy)
        try client.pipeline.syncOperations.addHandlers([clientHandler, clientRecorder])
        try server.pipeline.syncOperations.addHandlers([serverHandler, serverRecorder])
    }

    /// Makes both channels active, which starts both handshakes (the client sends its ClientHello).
    func activate() throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 7443)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
    }

    /// All bytes `channel` has written so far, concatenated (one TCP read's worth).
    func drain(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var all = channel.allocator.buffer(capacity: 0)
        // Bounded: an EmbeddedChannel holds what was written, nothing more arrives while we loop.
        for _ in 0..<100_000 {
            guard var next = try channel.readOutbound(as: ByteBuffer.self) else { return all }
            all.writeBuffer(&next)
        }
        throw TLSTestFailure("more than 100,000 outbound writes")
    }

    /// Counts the separate outbound writes waiting on `channel` (without consuming them).
    func outboundWrites(_ channel: EmbeddedChannel) throws -> [ByteBuffer] {
        var writes: [ByteBuffer] = []
        for _ in 0..<100_000 {
            guard let next = try channel.readOutbound(as: ByteBuffer.self) else { break }
            writes.append(next)
        }
        return writes
    }

    /// Delivers `bytes` to `channel` as one read, or `split`-byte reads when given.
    func deliver(_ bytes: ByteBuffer, to channel: EmbeddedChannel, split: Int? = nil) throws {
        guard bytes.readableBytes > 0, channel.isActive else { return }
        var bytes = bytes
        let size = split ?? bytes.readableBytes
        while bytes.readableBytes > 0, channel.isActive {
            try channel.writeInbound(bytes.readSlice(length: min(size, bytes.readableBytes))!)
        }
    }

    /// Moves bytes both ways until neither side has anything left to send (at most `rounds` rounds).
    @discardableResult
    func exchange(split: Int? = nil, rounds: Int = 50) throws -> Int {
        var moved = 0
        for _ in 0..<rounds {
            let toServer = try drain(client)
            try deliver(toServer, to: server, split: split)
            let toClient = try drain(server)
            try deliver(toClient, to: client, split: split)
            if toServer.readableBytes == 0 && toClient.readableBytes == 0 { return moved }
            moved += toServer.readableBytes + toClient.readableBytes
        }
        throw TLSTestFailure("bytes still flowing after \(rounds) rounds")
    }

    /// Closes both sides for good. EmbeddedChannel.finish() waits on close(), which with TLS waits for
    /// the peer's close_notify: so close first, answer, and let the close_notify timers run out.
    func finish() {
        for channel in [client, server] where channel.isActive {
            channel.close(promise: nil)
        }
        _ = try? exchange()
        client.embeddedEventLoop.advanceTime(by: .seconds(60))
        server.embeddedEventLoop.advanceTime(by: .seconds(60))
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? server.finish(acceptAlreadyClosed: true)
    }

    static func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    /// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
    static func noise(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
        var state = seed
        var bytes = [UInt8](repeating: 0, count: count)
        for index in 0..<count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[index] = UInt8(truncatingIfNeeded: state)
        }
        return bytes
    }
}

/// TLS record headers in a stream of ciphertext: (content type, length) of each record.
func tlsRecords(in buffer: ByteBuffer) -> [(type: UInt8, length: Int)] {
    var buffer = buffer
    var records: [(UInt8, Int)] = []
    while buffer.readableBytes >= 5, let type = buffer.readInteger(as: UInt8.self),
        buffer.readInteger(as: UInt16.self) != nil, let length = buffer.readInteger(as: UInt16.self)
    {
        records.append((type, Int(length)))
        buffer.moveReaderIndex(forwardBy: min(Int(length), buffer.readableBytes))
    }
    return records
}
