import Foundation
import MeshTestSupport
import NIOCore
import NIOPosix

/// A long-lived client on an echo service: sends a small numbered chunk every `interval` and checks
/// each echo byte for byte as it comes back, so a test can prove one stream keeps flowing (no reset,
/// no EOF, no corruption, no stall) while other things happen to the mesh around it.
final class PulseClient: @unchecked Sendable {
    /// What the client has seen so far.
    struct Snapshot {
        var chunksSent: Int
        var bytesSent: Int
        var bytesEchoed: Int
        /// Offset of the first echoed byte that differed from what was sent, if any.
        var mismatchAt: Int?
        /// How the stream ended, if it has.
        var end: StreamEnd?
        /// Slowest echo so far (send of a chunk to the arrival of its last byte).
        var maxLatency: Duration
        var isOpen: Bool { self.end == nil }
    }

    private let lock = NSLock()
    private var state: Snapshot
    /// (completed at, latency) of every chunk echoed, for the slowest echo within a time window.
    private var latencies: [(at: ContinuousClock.Instant, latency: Duration)] = []
    private let channel: Channel
    private let finished: EventLoopPromise<Void>

    /// Connects (bounded by `connectTimeout`) and starts pulsing at once.
    init(
        group: EventLoopGroup,
        host: String,
        port: Int,
        interval: TimeAmount = .milliseconds(100),
        chunkSize: Int = 256,
        connectTimeout: TimeAmount = .seconds(10)
    ) throws {
        self.state = Snapshot(chunksSent: 0, bytesSent: 0, bytesEchoed: 0, mismatchAt: nil, end: nil, maxLatency: .zero)
        let loop = group.next()
        self.finished = loop.makePromise(of: Void.self)
        let handlerBox = PulseHandlerBox()
        let channel = try ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        PulseHandler(
                            interval: interval,
                            chunkSize: chunkSize,
                            box: handlerBox
                        )
                    )
                }
            }
            .connect(host: host, port: port).wait()
        self.channel = channel
        handlerBox.client = self
        // The handler may have been active before `client` was set: start pulsing only now.
        try channel.eventLoop.submit { try channel.pipeline.syncOperations.handler(type: PulseHandler.self).begin(channel: channel) }.wait()
    }

    func snapshot() -> Snapshot {
        self.lock.withLock { self.state }
    }

    /// The slowest echo that completed at or after `since`.
    func maxLatency(since: ContinuousClock.Instant) -> Duration {
        self.lock.withLock { self.latencies.filter { $0.at >= since }.map(\.latency).max() ?? .zero }
    }

    /// Echoes completed at or after `since`.
    func echoCount(since: ContinuousClock.Instant) -> Int {
        self.lock.withLock { self.latencies.filter { $0.at >= since }.count }
    }

    /// Stops sending, half-closes, and waits (bounded) for the rest of the echo and the server's FIN.
    /// The final snapshot, or nil if the stream had not ended by the deadline.
    func finish(timeout: Duration) -> Snapshot? {
        let channel = self.channel
        _ = try? channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: PulseHandler.self).stop(channel: channel)
        }.wait()
        guard waitBounded(self.finished.futureResult, timeout: timeout) != nil else { return nil }
        return self.snapshot()
    }

    /// Waits (bounded) for the stream to end by itself; the snapshot then, or nil if still open.
    func waitForEnd(timeout: Duration) -> Snapshot? {
        guard waitBounded(self.finished.futureResult, timeout: timeout) != nil else { return nil }
        return self.snapshot()
    }

    /// Closes at once (for cleanup).
    func close() {
        try? self.channel.close().wait()
    }

    // MARK: Called by the handler on its event loop

    fileprivate func sent(bytes: Int) {
        self.lock.withLock {
            self.state.chunksSent += 1
            self.state.bytesSent += bytes
        }
    }

    fileprivate func echoed(total: Int, mismatchAt: Int?, completed: [Duration]) {
        let now = ContinuousClock.now
        self.lock.withLock {
            self.state.bytesEchoed = total
            if self.state.mismatchAt == nil { self.state.mismatchAt = mismatchAt }
            for latency in completed {
                self.latencies.append((now, latency))
                self.state.maxLatency = max(self.state.maxLatency, latency)
            }
        }
    }

    fileprivate func ended(_ end: StreamEnd) {
        let first = self.lock.withLock {
            guard self.state.end == nil else { return false }
            self.state.end = end
            return true
        }
        if first { self.finished.succeed(()) }
    }
}

/// Lets the handler reach its client once the client exists (set before `begin`).
private final class PulseHandlerBox: @unchecked Sendable {
    weak var client: PulseClient?
}

private final class PulseHandler: StreamEndRecording {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let interval: TimeAmount
    private let chunkSize: Int
    private let box: PulseHandlerBox
    private var sequence: UInt64 = 0
    /// Everything sent and not yet echoed, to compare the echo with.
    private var owed = ByteBuffer()
    private var echoedTotal = 0
    private var mismatchAt: Int?
    /// Send time of each chunk still owed, with the echoed total at which it is complete.
    private var pending: [(completeAt: Int, sentAt: ContinuousClock.Instant)] = []
    private var sentTotal = 0
    private var timer: Scheduled<Void>?
    private var stopped = false
    var end: StreamEnd?

    init(interval: TimeAmount, chunkSize: Int, box: PulseHandlerBox) {
        self.interval = interval
        self.chunkSize = chunkSize
        self.box = box
    }

    func begin(channel: Channel) {
        guard channel.isActive else {
            self.box.client?.ended(self.end ?? .eof)
            return
        }
        self.sendChunk(channel: channel)
    }

    func stop(channel: Channel) {
        self.stopped = true
        self.timer?.cancel()
        self.timer = nil
        channel.close(mode: .output, promise: nil)
    }

    private func sendChunk(channel: Channel) {
        guard channel.isActive, !self.stopped else { return }
        self.timer = channel.eventLoop.assumeIsolated().scheduleTask(in: self.interval) {
            self.sendChunk(channel: channel)
        }
        self.sequence += 1
        var chunk = channel.allocator.buffer(capacity: self.chunkSize)
        chunk.writeInteger(self.sequence)
        // The rest of the chunk depends on the sequence number, so a shifted or stale echo shows.
        for index in 0..<(self.chunkSize - 8) {
            chunk.writeInteger(UInt8(truncatingIfNeeded: self.sequence &* 131 &+ UInt64(index)))
        }
        self.owed.writeImmutableBuffer(chunk)
        self.sentTotal += chunk.readableBytes
        self.pending.append((self.sentTotal, ContinuousClock.now))
        self.box.client?.sent(bytes: chunk.readableBytes)
        channel.writeAndFlush(chunk, promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        while let byte = buffer.readInteger(as: UInt8.self) {
            let expected = self.owed.readInteger(as: UInt8.self)
            if expected != byte, self.mismatchAt == nil { self.mismatchAt = self.echoedTotal }
            self.echoedTotal += 1
        }
        let now = ContinuousClock.now
        var completed: [Duration] = []
        while let first = self.pending.first, first.completeAt <= self.echoedTotal {
            completed.append(now - first.sentAt)
            self.pending.removeFirst()
        }
        self.box.client?.echoed(total: self.echoedTotal, mismatchAt: self.mismatchAt, completed: completed)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        // After our own half-close NIO may turn the server's FIN into a full close without an
        // inputClosed event; a reset always arrives through errorCaught first.
        self.box.client?.ended(self.end ?? .eof)
    }
}
