import Foundation
import MeshConfig
import NIOCore
import NIOPosix
import XCTest

@testable import MeshTLS

/// What the application side of a real TLS connection saw, readable from the test thread.
final class TLSConnectionLog: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var _received: [UInt8] = []
    private var _handshakes: [TLSHandshakeCompleted] = []
    private var _errors: [String] = []
    private var _handshakeErrors: [TLSHandshakeError] = []
    private var _inactive = 0

    var received: String { lock.withLock { String(decoding: _received, as: UTF8.self) } }
    var handshakes: [TLSHandshakeCompleted] { lock.withLock { _handshakes } }
    var errors: [String] { lock.withLock { _errors } }
    var handshakeErrors: [TLSHandshakeError] { lock.withLock { _handshakeErrors } }
    var inactiveCount: Int { lock.withLock { _inactive } }

    func append(_ bytes: ByteBuffer) { lock.withLock { _received += bytes.readableBytesView } }
    func handshook(_ event: TLSHandshakeCompleted) { lock.withLock { _handshakes.append(event) } }
    func failed(_ error: any Error) {
        lock.withLock {
            _errors.append("\(error)")
            if let error = error as? TLSHandshakeError { _handshakeErrors.append(error) }
        }
    }
    func closed() { lock.withLock { _inactive += 1 } }

    /// Polls every 10 ms, at most `timeout`.
    func waitUntil(timeout: TimeInterval = 10, _ condition: (TLSConnectionLog) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(self) { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition(self)
    }
}

/// The application handler of the socket tests: logs everything, optionally greets on handshake.
final class TLSLoggingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let log: TLSConnectionLog
    private let greeting: String?

    init(log: TLSConnectionLog, greeting: String? = nil) {
        self.log = log
        self.greeting = greeting
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        log.append(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let completed = event as? TLSHandshakeCompleted else { return }
        log.handshook(completed)
        if let greeting {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        log.failed(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        log.closed()
    }
}

/// Our TLS server on 127.0.0.1 with an ephemeral port.
final class TLSTestServer {
    let channel: any Channel
    let log = TLSConnectionLog()
    var port: Int { channel.localAddress!.port! }

    init(
        group: EventLoopGroup,
        context: TLSContext,
        policy: PeerPolicy,
        greeting: String? = nil,
        handshakeTimeout: TimeAmount = .seconds(5)
    ) throws {
        let log = self.log
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        OpenSSLHandler(context: context, policy: policy, handshakeTimeout: handshakeTimeout)
                    )
                    try channel.pipeline.syncOperations.addHandler(TLSLoggingHandler(log: log, greeting: greeting))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() {
        try? channel.close().wait()
    }
}

/// Dials `port` with our TLS client handler.
func tlsTestConnect(
    group: EventLoopGroup,
    port: Int,
    context: TLSContext,
    policy: PeerPolicy,
    log: TLSConnectionLog
) throws
    -> any Channel
{
    try ClientBootstrap(group: group)
        .connectTimeout(.seconds(5))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: context, policy: policy))
                try channel.pipeline.syncOperations.addHandler(TLSLoggingHandler(log: log))
            }
        }
        .connect(host: "127.0.0.1", port: port).wait()
}
