import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import MeshTunnel

/// `TunnelFrameHandler` in an EmbeddedChannel, fed the bytes a peer sends: the preface and
/// SETTINGS exchange, a stream's life between two handlers, flow control, and the GOAWAY every
/// protocol violation and flood earns. What it passes up is recorded by `Recorder`.
final class TunnelFrameHandlerTests: XCTestCase {
    /// What the frame handler passes up: frames, stream closes, window events and errors.
    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        var frames: [HTTP2Frame] = []
        var closed: [(HTTP2StreamID, HTTP2ErrorCode?)] = []
        var windowEvents: [Int] = []
        var errors: [Error] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.frames.append(self.unwrapInboundIn(data)) }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? StreamClosedEvent { self.closed.append((event.streamID, event.reason)) }
            if let event = event as? NIOHTTP2WindowUpdatedEvent, let inbound = event.inboundWindowSize { self.windowEvents.append(inbound) }
        }
        func errorCaught(context: ChannelHandlerContext, error: Error) { self.errors.append(error) }
    }

    static let limits = TunnelFrameHandler.Limits(
        maxConcurrentStreams: 4,
        streamWindow: 1 << 20,
        maxFrameSize: 1 << 16,
        maxHeaderListSize: 16 << 10,
        maxSequentialEmptyDataFrames: 8,
        maxUnsentAcks: 100
    )

    private var channels: [EmbeddedChannel] = []

    override func tearDown() {
        for channel in self.channels { _ = try? channel.finish(acceptAlreadyClosed: true) }
        self.channels = []
        super.tearDown()
    }

    private func makeEnd(
        dialer: Bool,
        limits: TunnelFrameHandler.Limits = TunnelFrameHandlerTests.limits
    ) throws -> (EmbeddedChannel, Recorder) {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([TunnelFrameHandler(isDialer: dialer, limits: limits), recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7443)).wait()
        self.channels.append(channel)
        return (channel, recorder)
    }

    /// A server end that has exchanged the preface and SETTINGS with a test peer; its own
    /// SETTINGS and the acknowledgement are read off. `window`: the connection window it grants,
    /// as TunnelStreams would (65,535 until then).
    private func openServer(peerSettings: [(UInt16, UInt32)] = [], window: Int = 65_535) throws -> (EmbeddedChannel, Recorder) {
        let (channel, recorder) = try self.makeEnd(dialer: false)
        var hello = ByteBuffer(bytes: TunnelFrameHandler.preface)
        hello.writeImmutableBuffer(Self.settings(peerSettings))
        try channel.writeInbound(hello)
        let sent = try Self.frames(in: self.written(channel))
        XCTAssertEqual(sent.map(\.header.type), [FrameHeader.Kind.settings.rawValue, FrameHeader.Kind.settings.rawValue])
        XCTAssertEqual(sent.last?.header.flags.contains(.ack), true, "the peer's SETTINGS are acknowledged")
        if window > 65_535 {
            channel.writeAndFlush(
                HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: window - 65_535)),
                promise: nil
            )
            _ = try self.written(channel)
        }
        return (channel, recorder)
    }

    // MARK: Frames as bytes

    static func frame(_ kind: FrameHeader.Kind, flags: FrameHeader.Flags = [], stream: Int, _ payload: [UInt8] = []) -> ByteBuffer {
        Self.frame(type: kind.rawValue, flags: flags, stream: stream, payload)
    }

    static func frame(type: UInt8, flags: FrameHeader.Flags = [], stream: Int, _ payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(payload.count >> 16))
        buffer.writeInteger(UInt16(truncatingIfNeeded: payload.count))
        buffer.writeInteger(type)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(UInt32(stream))
        buffer.writeBytes(payload)
        return buffer
    }

    static func settings(_ values: [(UInt16, UInt32)]) -> ByteBuffer {
        var payload = ByteBuffer()
        for (id, value) in values {
            payload.writeInteger(id)
            payload.writeInteger(value)
        }
        return Self.frame(.settings, stream: 0, Array(payload.readableBytesView))
    }

    static func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }

    static func headerBlock(_ headers: HPACKHeaders) throws -> [UInt8] {
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var buffer = ByteBuffer()
        try encoder.encode(headers: headers, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    static let connect: HPACKHeaders = [":method": "CONNECT", ":authority": "echo"]

    private func written(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var all = ByteBuffer()
        while var bytes = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&bytes) }
        return all
    }

    /// Splits bytes a handler wrote into frames (after a client preface, if any).
    static func frames(in bytes: ByteBuffer) throws -> [(header: FrameHeader, payload: ByteBuffer)] {
        var bytes = bytes
        if bytes.readableBytesView.starts(with: TunnelFrameHandler.preface) {
            bytes.moveReaderIndex(forwardBy: TunnelFrameHandler.preface.count)
        }
        var frames: [(FrameHeader, ByteBuffer)] = []
        while let header = FrameHeader.peek(bytes) {
            bytes.moveReaderIndex(forwardBy: FrameHeader.size)
            frames.append((header, try XCTUnwrap(bytes.readSlice(length: header.length))))
        }
        XCTAssertEqual(bytes.readableBytes, 0, "whole frames only")
        return frames
    }

    /// The GOAWAY a handler wrote, its error code, and whether it closed the channel.
    private func assertGoAway(
        _ channel: EmbeddedChannel,
        _ recorder: Recorder,
        _ code: HTTP2ErrorCode,
        _ what: String = "",
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let frames = try Self.frames(in: self.written(channel))
        let goAway = try XCTUnwrap(frames.last { $0.header.kind == .goAway }, "no GOAWAY: \(what)", file: file, line: line)
        let sent = goAway.payload.getInteger(at: goAway.payload.readerIndex + 4, as: UInt32.self)
        XCTAssertEqual(sent, UInt32(code.networkCode), what, file: file, line: line)
        XCTAssertFalse(channel.isActive, "the tunnel is closed: \(what)", file: file, line: line)
        let error = try XCTUnwrap(recorder.errors.first as? TunnelProtocolError, "the cause goes up: \(what)", file: file, line: line)
        XCTAssertEqual(error.code, code, what, file: file, line: line)
        XCTAssertTrue("\(error)".hasSuffix("(we sent GOAWAY \(code.rfcName))"), "\(error)", file: file, line: line)
    }

    // MARK: Set-up

    func testTheDialerSendsThePrefaceAndItsSettings() throws {
        let (channel, _) = try self.makeEnd(dialer: true)
        let bytes = try self.written(channel)
        XCTAssertTrue(bytes.readableBytesView.starts(with: TunnelFrameHandler.preface))
        let settings = try XCTUnwrap(try Self.frames(in: bytes).first)
        XCTAssertEqual(settings.header.kind, .settings)
        var payload = settings.payload
        var values: [UInt16: UInt32] = [:]
        while let id = payload.readInteger(as: UInt16.self), let value = payload.readInteger(as: UInt32.self) { values[id] = value }
        XCTAssertEqual(values, [2: 0, 3: 4, 4: 1 << 20, 5: 1 << 16, 6: 16 << 10])
    }

    func testAClientWithoutThePrefaceGetsAProtocolError() throws {
        let (channel, recorder) = try self.makeEnd(dialer: false)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        try self.assertGoAway(channel, recorder, .protocolError)
    }

    func testThePeersFirstFrameMustBeSettings() throws {
        let (channel, recorder) = try self.makeEnd(dialer: true)
        _ = try self.written(channel)
        try channel.writeInbound(Self.frame(.ping, stream: 0, [UInt8](repeating: 0, count: 8)))
        try self.assertGoAway(channel, recorder, .protocolError)
    }

    // MARK: Streams

    /// Bytes go from one end to the other until neither has more to say.
    private func shuttle(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
        for _ in 0..<10 {
            let fromA = try self.written(a)
            let fromB = try self.written(b)
            if fromA.readableBytes == 0, fromB.readableBytes == 0 { return }
            if fromA.readableBytes > 0 { try b.writeInbound(fromA) }
            if fromB.readableBytes > 0 { try a.writeInbound(fromB) }
        }
        XCTFail("the ends kept talking")
    }

    func testAStreamOpensCarriesBothWaysAndClosesWhenBothSidesEnded() throws {
        let (dialer, dialerSaw) = try self.makeEnd(dialer: true)
        let (server, serverSaw) = try self.makeEnd(dialer: false)
        try self.shuttle(dialer, server)
        dialer.write(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: Self.connect))), promise: nil)
        dialer.write(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(string: "ping"))))), promise: nil)
        dialer.flush()
        try self.shuttle(dialer, server)
        XCTAssertEqual(serverSaw.frames.count, 2)
        guard case .headers(let request) = serverSaw.frames.first?.payload else { return XCTFail("no HEADERS") }
        XCTAssertEqual(request.headers.first(name: ":authority"), "echo")
        guard case .data(let data) = serverSaw.frames.last?.payload, case .byteBuffer(let bytes) = data.data else {
            return XCTFail("no DATA")
        }
        XCTAssertEqual(String(buffer: bytes), "ping")

        server.write(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: [":status": "200"]))), promise: nil)
        server.write(
            HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(string: "pong")), endStream: true))),
            promise: nil
        )
        server.flush()
        try self.shuttle(dialer, server)
        XCTAssertEqual(dialerSaw.frames.count, 2)
        XCTAssertTrue(dialerSaw.closed.isEmpty && serverSaw.closed.isEmpty, "one side still open")

        dialer.writeAndFlush(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
        try self.shuttle(dialer, server)
        XCTAssertEqual(dialerSaw.closed.map(\.0), [1])
        XCTAssertEqual(serverSaw.closed.map(\.0), [1])
        XCTAssertNil(dialerSaw.closed.first?.1, "a clean close has no reason")
        XCTAssertTrue(dialer.isActive && server.isActive)
    }

    /// What did not fit the peer's window goes out as WINDOW_UPDATEs arrive, flushed by the frame
    /// handler itself (nothing else writes then), large parts included.
    func testDataPastThePeersWindowWaitsForWindowUpdates() throws {
        // The peer allows 10 bytes per stream (and 65,535 on the connection, frames of 16 KiB).
        let (channel, _) = try self.openServer(peerSettings: [(0x4, 10), (0x5, 1 << 16)])
        try channel.writeInbound(Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect)))
        let written = channel.eventLoop.makePromise(of: Void.self)
        var done = false
        written.futureResult.whenSuccess { done = true }
        channel.writeAndFlush(
            HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 7, count: 40_000))))),
            promise: written
        )
        func sent() throws -> [Int] { try Self.frames(in: self.written(channel)).filter { $0.header.kind == .data }.map(\.header.length) }
        XCTAssertEqual(try sent(), [10])
        XCTAssertFalse(done, "the write completes once all of it went out")
        try channel.writeInbound(Self.frame(.windowUpdate, stream: 1, Self.u32(20_000)))
        XCTAssertEqual(try sent(), [20_000])
        try channel.writeInbound(Self.frame(.windowUpdate, stream: 1, Self.u32(100_000)))
        XCTAssertEqual(try sent(), [19_990])
        XCTAssertTrue(done)
    }

    /// A stream's END_STREAM is an empty DATA frame: it needs no window, even one the peer's
    /// SETTINGS made negative, but it does wait behind the stream's own DATA.
    func testAnEmptyEndOfStreamNeedsNoWindow() throws {
        let (channel, _) = try self.openServer(peerSettings: [(0x4, 10)])
        try channel.writeInbound(Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect)))
        channel.writeAndFlush(
            HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(repeating: 1, count: 10))))),
            promise: nil
        )
        try channel.writeInbound(Self.settings([(0x4, 0)]))  // the stream's window is now -10
        _ = try self.written(channel)
        channel.writeAndFlush(
            HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))),
            promise: nil
        )
        let sent = try Self.frames(in: self.written(channel)).filter { $0.header.kind == .data }
        XCTAssertEqual(sent.map(\.header.length), [0])
        XCTAssertEqual(sent.first?.header.flags.contains(.endStream), true)
    }

    func testTheConnectionWindowIsReportedOnceItIsHalfUsedAndFramesForClosedStreamsStillCount() throws {
        let (channel, recorder) = try self.openServer(window: TunnelTuning.connectionWindow)
        try channel.writeInbound(Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect)))
        try channel.writeInbound(Self.frame(.rstStream, stream: 1, Self.u32(8)))
        XCTAssertEqual(recorder.closed.map(\.1), [.cancel])
        let chunk = [UInt8](repeating: 1, count: 60_000)
        for _ in 0..<140 { try channel.writeInbound(Self.frame(.data, stream: 1, chunk)) }  // 8.4 MB on a reset stream
        XCTAssertTrue(channel.isActive, "DATA already on its way when a stream was reset is ignored")
        XCTAssertEqual(recorder.windowEvents.first, TunnelTuning.connectionWindow - 140 * 60_000)
    }

    func testStreamsPastTheConcurrencyLimitAreRefused() throws {
        let (channel, recorder) = try self.openServer()
        for id in stride(from: 1, through: 9, by: 2) {
            try channel.writeInbound(Self.frame(.headers, flags: .endHeaders, stream: id, try Self.headerBlock(Self.connect)))
        }
        XCTAssertEqual(recorder.frames.map(\.streamID), [1, 3, 5, 7], "four may be open")
        let resets = try Self.frames(in: self.written(channel)).filter { $0.header.kind == .rstStream }
        XCTAssertEqual(resets.map(\.header.streamID), [9])
        XCTAssertEqual(
            resets.first?.payload.getInteger(at: resets.first!.payload.readerIndex, as: UInt32.self),
            UInt32(HTTP2ErrorCode.refusedStream.networkCode)
        )
        XCTAssertTrue(channel.isActive)
    }

    func testPingsAreAnsweredAndAnswersGoUp() throws {
        let (channel, recorder) = try self.openServer()
        try channel.writeInbound(Self.frame(.ping, stream: 0, [1, 2, 3, 4, 5, 6, 7, 8]))
        let answer = try XCTUnwrap(try Self.frames(in: self.written(channel)).first)
        XCTAssertEqual(answer.header.kind, .ping)
        XCTAssertTrue(answer.header.flags.contains(.ack))
        XCTAssertEqual(Array(answer.payload.readableBytesView), [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertTrue(recorder.frames.isEmpty, "a PING is answered here")
        try channel.writeInbound(Self.frame(.ping, flags: .ack, stream: 0, [0, 0, 0, 0, 0, 0, 0, 9]))
        guard case .ping(let data, ack: true) = recorder.frames.first?.payload else { return XCTFail("the answer goes up") }
        XCTAssertEqual(data.integer, 9)
    }

    func testTheirGoAwayClosesOurStreamsTheyNeverProcessed() throws {
        let (dialer, recorder) = try self.makeEnd(dialer: true)
        _ = try self.written(dialer)
        try dialer.writeInbound(Self.settings([]))
        for id in [1, 3, 5] {
            dialer.write(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: Self.connect))), promise: nil)
        }
        dialer.flush()
        try dialer.writeInbound(Self.frame(.goAway, stream: 0, Self.u32(1) + Self.u32(0)))
        XCTAssertEqual(Set(recorder.closed.map(\.0)), [3, 5])
        XCTAssertTrue(recorder.closed.allSatisfy { $0.1 == .refusedStream })
        guard case .goAway(let last, _, _) = recorder.frames.last?.payload else { return XCTFail("GOAWAY goes up") }
        XCTAssertEqual(last, 1)
    }

    // MARK: A peer that breaks the protocol

    func testProtocolViolationsEndTheTunnelWithTheirErrorCode() throws {
        let open = Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect))
        let cases: [(String, [ByteBuffer], HTTP2ErrorCode)] = [
            ("DATA on a stream never opened", [Self.frame(.data, stream: 3, [1])], .protocolError),
            ("DATA on stream 0", [Self.frame(.data, stream: 0, [1])], .protocolError),
            (
                "a frame over the size we allow", [Self.frame(.data, stream: 1, [UInt8](repeating: 0, count: (1 << 16) + 1))],
                .frameSizeError
            ),
            ("a window past 2^31-1", [open, Self.frame(.windowUpdate, stream: 1, Self.u32(0x7fff_ffff))], .flowControlError),
            ("a WINDOW_UPDATE of 0", [Self.frame(.windowUpdate, stream: 0, Self.u32(0))], .protocolError),
            ("PUSH_PROMISE", [Self.frame(.pushPromise, flags: .endHeaders, stream: 1, Self.u32(2))], .protocolError),
            ("CONTINUATION outside a header block", [Self.frame(.continuation, flags: .endHeaders, stream: 1, [0x82])], .protocolError),
            (
                "a header block interrupted",
                [Self.frame(.headers, stream: 1, [0x82]), Self.frame(.ping, stream: 0, [UInt8](repeating: 0, count: 8))], .protocolError
            ),
            (
                "a CONTINUATION flood",
                [Self.frame(.headers, stream: 1, [0x82])] + (0..<70).map { _ in Self.frame(.continuation, stream: 1, [0x82]) },
                .enhanceYourCalm
            ),
            (
                "headers that do not decode", [Self.frame(.headers, flags: .endHeaders, stream: 1, [0xff, 0xff, 0xff, 0xff])],
                .compressionError
            ),
            (
                "an even stream from a client", [Self.frame(.headers, flags: .endHeaders, stream: 2, try Self.headerBlock(Self.connect))],
                .protocolError
            ),
            ("empty DATA frames in a row", [open] + (0..<9).map { _ in Self.frame(.data, stream: 1) }, .enhanceYourCalm),
            ("RST_STREAM on a stream never opened", [Self.frame(.rstStream, stream: 5, Self.u32(8))], .protocolError),
            ("a malformed PING", [Self.frame(.ping, stream: 0, [1, 2, 3])], .frameSizeError),
            ("MAX_FRAME_SIZE too small", [Self.settings([(0x5, 100)])], .protocolError),
            (
                "DATA past the stream window (the connection's is 16 MiB)",
                [open] + (0..<17).map { _ in Self.frame(.data, stream: 1, [UInt8](repeating: 0, count: 1 << 16)) }, .flowControlError
            ),
        ]
        for (what, frames, code) in cases {
            let (channel, recorder) = try self.openServer(window: TunnelTuning.connectionWindow)
            for frame in frames where channel.isActive { try channel.writeInbound(frame) }
            try self.assertGoAway(channel, recorder, code, what)
            XCTAssertEqual(recorder.errors.count, 1, what)
        }
    }

    /// Log lines name error codes as RFC 9113 does, which an operator can look up.
    func testErrorCodesAreNamedAsTheRFCNamesThem() {
        XCTAssertEqual(HTTP2ErrorCode.protocolError.rfcName, "PROTOCOL_ERROR")
        XCTAssertEqual(HTTP2ErrorCode.enhanceYourCalm.rfcName, "ENHANCE_YOUR_CALM")
        XCTAssertEqual(HTTP2ErrorCode.http11Required.rfcName, "HTTP_1_1_REQUIRED")
        XCTAssertEqual(HTTP2ErrorCode(networkCode: 0x42).rfcName, "error code 0x42")
        let reset = StreamResetError(peer: "db1", service: "postgres", code: .cancel)
        XCTAssertEqual("\(reset)", "stream to \"postgres\" on db1 was reset (CANCEL)")
    }

    func testDataPastTheConnectionWindowEndsTheTunnel() throws {
        let (channel, recorder) = try self.openServer()
        try channel.writeInbound(Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect)))
        try channel.writeInbound(Self.frame(.data, stream: 1, [UInt8](repeating: 0, count: 65_535)))
        XCTAssertTrue(channel.isActive, "65,535 bytes fit the initial window")
        try channel.writeInbound(Self.frame(.data, stream: 1, [0]))
        try self.assertGoAway(channel, recorder, .flowControlError)
    }

    func testAResetFloodEndsTheTunnel() throws {
        let (channel, recorder) = try self.openServer()
        try channel.writeInbound(Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect)))
        var flood = ByteBuffer()
        for _ in 0...RapidResetGuard.any.limit { flood.writeImmutableBuffer(Self.frame(.rstStream, stream: 1, Self.u32(8))) }
        try channel.writeInbound(flood)
        try self.assertGoAway(channel, recorder, .enhanceYourCalm)
    }

    func testAPeerThatDoesNotReadItsAnswersIsCutOff() throws {
        let (channel, recorder) = try self.openServer()
        channel.isWritable = false
        var flood = ByteBuffer()
        for _ in 0...Self.limits.maxUnsentAcks { flood.writeImmutableBuffer(Self.frame(.ping, stream: 0, [UInt8](repeating: 0, count: 8))) }
        try channel.writeInbound(flood)
        try self.assertGoAway(channel, recorder, .enhanceYourCalm)
    }

    /// A DATA frame's payload goes up as its bytes arrive (no copy into a whole frame first).
    func testALargeFrameArrivingOverManyReadsIsDeliveredInOrderAsItArrives() throws {
        let (channel, recorder) = try self.openServer(window: TunnelTuning.connectionWindow)
        try channel.writeInbound(Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect)))
        let payload = (0..<60_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var bytes = Self.frame(.data, stream: 1, payload)
        bytes.writeImmutableBuffer(Self.frame(.data, flags: .endStream, stream: 1, [1, 2, 3]))
        while bytes.readableBytes > 0 {
            try channel.writeInbound(bytes.readSlice(length: min(1_000, bytes.readableBytes))!)
        }
        let parts = Self.dataParts(recorder)
        XCTAssertGreaterThan(parts.count, 2, "delivered in parts")
        XCTAssertEqual(parts.flatMap(\.bytes), payload + [1, 2, 3])
        XCTAssertEqual(parts.map(\.endStream), Array(repeating: false, count: parts.count - 1) + [true], "END_STREAM on the last part only")
    }

    static func dataParts(_ recorder: Recorder) -> [(bytes: [UInt8], endStream: Bool)] {
        recorder.frames.compactMap { frame in
            guard case .data(let data) = frame.payload, case .byteBuffer(let bytes) = data.data else { return nil }
            return (Array(bytes.readableBytesView), data.endStream)
        }
    }

    func testAFrameSplitAcrossReadsIsJoined() throws {
        let (channel, recorder) = try self.openServer()
        var bytes = Self.frame(.headers, flags: .endHeaders, stream: 1, try Self.headerBlock(Self.connect))
        bytes.writeImmutableBuffer(Self.frame(.data, stream: 1, Array("hello".utf8)))
        while bytes.readableBytes > 0 {
            try channel.writeInbound(bytes.readSlice(length: min(3, bytes.readableBytes))!)
        }
        XCTAssertEqual(String(decoding: Self.dataParts(recorder).flatMap(\.bytes), as: UTF8.self), "hello")
    }
}
