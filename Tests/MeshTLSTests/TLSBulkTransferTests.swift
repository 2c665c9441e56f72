import COpenSSL
import Foundation
import MeshConfig
import NIOCore
import NIOPosix
import XCTest

@testable import MeshTLS

/// Bulk data both ways at once through our client and server handlers on a real loopback socket,
/// with backpressure, odd write sizes and SHA-256 on both ends.
final class TLSBulkTransferTests: XCTestCase {
    func testSixtyFourMebibytesEachWayAtOnceArriveIntact() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let total = 64 << 20
        let serverContext = try pki.context(.server, "db1")
        let clientContext = try pki.context(.client, "app1")

        let serverResult = group.next().makePromise(of: TLSBulkPeer.Result.self)
        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let policy = PeerPolicy.declaredNode(mesh: "demo", nodes: ["app1"])
                    try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: serverContext, policy: policy))
                    try channel.pipeline.syncOperations.addHandler(
                        TLSBulkPeer(total: total, seed: 2, writeSizes: [65_536, 9, 1 << 20, 70_001], done: serverResult)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }

        let clientResult = group.next().makePromise(of: TLSBulkPeer.Result.self)
        let client = try ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let policy = PeerPolicy.exactly(MeshIdentity(mesh: "demo", node: "db1"))
                    try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: clientContext, policy: policy))
                    try channel.pipeline.syncOperations.addHandler(
                        TLSBulkPeer(total: total, seed: 1, writeSizes: [1 << 20, 16_384, 5, 250_000], done: clientResult)
                    )
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).wait()
        defer { try? client.close().wait() }

        let atServer = try waitBounded(serverResult.futureResult, seconds: 120)
        let atClient = try waitBounded(clientResult.futureResult, seconds: 120)
        XCTAssertEqual(atServer.receivedBytes, total)
        XCTAssertEqual(atClient.receivedBytes, total)
        XCTAssertEqual(atServer.receivedDigest, atClient.sentDigest, "client to server")
        XCTAssertEqual(atClient.receivedDigest, atServer.sentDigest, "server to client")
        XCTAssertNotEqual(atServer.receivedDigest, atClient.receivedDigest, "the two directions carry different data")
    }

    private func waitBounded<T: Sendable>(_ future: EventLoopFuture<T>, seconds: Int) throws -> T {
        let done = DispatchSemaphore(value: 0)
        future.whenComplete { _ in done.signal() }
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else {
            throw TLSTestFailure("no result within \(seconds) s")
        }
        return try future.wait()
    }
}

/// Sends `total` pseudo-random bytes in a rotating pattern of write sizes, as fast as the channel
/// stays writable, while hashing what it sends and what it receives.
final class TLSBulkPeer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Result: Sendable {
        var sentDigest: [UInt8]
        var receivedDigest: [UInt8]
        var receivedBytes: Int
    }

    private let total: Int
    private let writeSizes: [Int]
    private let pattern: ByteBuffer
    private let done: EventLoopPromise<Result>
    private let sentHash = TLSSHA256()
    private let receivedHash = TLSSHA256()
    private var sent = 0
    private var received = 0
    private var writeIndex = 0
    private var started = false
    private var sentDigest: [UInt8]?

    init(total: Int, seed: UInt64, writeSizes: [Int], done: EventLoopPromise<Result>) {
        self.total = total
        self.writeSizes = writeSizes
        // 1 MiB + 1 of noise; writes take slices at moving offsets, so no two writes look alike.
        self.pattern = ByteBuffer(bytes: TLSPipe.noise((1 << 20) + 1, seed: seed))
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is TLSHandshakeCompleted else { return }
        started = true
        pump(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if started { pump(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        receivedHash.update(buffer)
        received += buffer.readableBytes
        finishIfDone()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
    }

    private func pump(context: ChannelHandlerContext) {
        while context.channel.isWritable, sent < total {
            let size = min(writeSizes[writeIndex % writeSizes.count], total - sent)
            let offset = (sent &* 7) % (pattern.readableBytes - size)
            let slice = pattern.getSlice(at: offset, length: size)!
            sentHash.update(slice)
            sent += size
            writeIndex += 1
            context.writeAndFlush(wrapOutboundOut(slice), promise: nil)
        }
        if sent == total, sentDigest == nil {
            sentDigest = sentHash.finish()
            finishIfDone()
        }
    }

    private func finishIfDone() {
        guard let sentDigest, received == total else { return }
        done.succeed(Result(sentDigest: sentDigest, receivedDigest: receivedHash.finish(), receivedBytes: received))
    }
}

/// Incremental SHA-256 through OpenSSL's EVP (fast even in a debug build).
final class TLSSHA256 {
    private let context = EVP_MD_CTX_new()

    init() {
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
    }

    func finish() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return digest
    }
}
