import Foundation
import Logging
import MeshConfig
import MeshTLS
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import MeshTunnel

/// `TunnelStreams` in an EmbeddedChannel, fed HTTP/2 frames as `TunnelFrameHandler` would pass them
/// up: refusals, the control stream and reverse requests, credit, and the floods it cuts off. The
/// paths that connect real sockets are covered by the process-level suites (IntegrationTests).
final class TunnelStreamsTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var counters: PeerCounters!
    private var notes: NoteLog!

    override func tearDown() {
        _ = try? self.channel?.finish(acceptAlreadyClosed: true)
        self.channel = nil
        super.tearDown()
    }

    /// A tunnel to `peer` seen from `node`, which serves `echo` to app1 only.
    private func makeTunnel(dialer: Bool, maxStreams: Int = 10, peer: String = "app1") throws -> TunnelStreams {
        let counters = PeerCounters()
        let notes = NoteLog()
        self.counters = counters
        self.notes = notes
        let echo = ServiceSettings(name: "echo", on: ["db1": .tcp(host: "127.0.0.1", port: 9)], allow: .nodes(["app1"]))
        let serving = TunnelConnection.Serving(
            access: { ServiceAccess(node: "db1", services: ["echo": echo]) },
            peerState: { _ in (counters, StreamLimit(maximum: maxStreams, counters: counters)) },
            note: { peer, note in notes.append(peer, note) }
        )
        let streams = TunnelStreams(isDialer: dialer, serving: serving, logger: Logger(label: "test"))
        self.channel = EmbeddedChannel(handler: streams)
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7443)).wait()
        self.channel.pipeline.fireUserInboundEventTriggered(
            TLSHandshakeCompleted(
                peer: MeshIdentity(mesh: "test", node: peer),
                peerCertificateNotAfter: .distantFuture,
                alpn: "h2"
            )
        )
        return streams
    }

    private func connect(_ service: String, on id: Int, method: String = "CONNECT", endStream: Bool = false) throws {
        let headers: HPACKHeaders = [":method": method, ":authority": service]
        try self.receive(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: headers, endStream: endStream))))
    }

    /// One frame of a read burst (no channelReadComplete: the test says when the burst ends).
    private func receive(_ frame: HTTP2Frame) throws {
        self.channel.pipeline.fireChannelRead(frame)
    }

    private func written() throws -> [HTTP2Frame] {
        var frames: [HTTP2Frame] = []
        while let frame = try self.channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames
    }

    private func status(_ frame: HTTP2Frame) -> (status: String?, reason: String?, endStream: Bool)? {
        guard case .headers(let headers) = frame.payload else { return nil }
        return (headers.headers.first(name: ":status"), headers.headers.first(name: "tm-reason"), headers.endStream)
    }

    private func dataText(_ frame: HTTP2Frame) -> String? {
        guard case .data(let data) = frame.payload, case .byteBuffer(let bytes) = data.data else { return nil }
        return String(buffer: bytes)
    }

    // MARK: Refusals

    func testRefusalsAnswerWithStatusReasonAndEndStream() throws {
        _ = try self.makeTunnel(dialer: false)
        try self.connect("nosuch", on: 1)
        try self.connect("echo", on: 3, method: "GET")
        self.channel.pipeline.fireChannelReadComplete()
        let answers = try self.written().compactMap(self.status)
        XCTAssertEqual(answers.map(\.status), ["404", "400"])
        XCTAssertEqual(answers.map(\.reason), ["no such service on this node", "bad request"])
        XCTAssertTrue(answers.allSatisfy(\.endStream), "a refusal ends the serving side")
        XCTAssertEqual(self.counters.streamsActive.load(ordering: .relaxed), 0)
    }

    func testAPeerNotOnTheAllowListIsForbidden() throws {
        _ = try self.makeTunnel(dialer: false, peer: "app2")
        try self.connect("echo", on: 1)
        self.channel.pipeline.fireChannelReadComplete()
        XCTAssertEqual(try self.written().compactMap(self.status).map(\.status), ["403"])
    }

    func testStreamsOverTheLimitAreRefusedWith429() throws {
        _ = try self.makeTunnel(dialer: false, maxStreams: 0)
        try self.connect("echo", on: 1)
        self.channel.pipeline.fireChannelReadComplete()
        let answer = try XCTUnwrap(try self.written().compactMap(self.status).first)
        XCTAssertEqual(answer.status, "429")
        XCTAssertEqual(answer.reason, "too many streams from this peer")
    }

    // MARK: Rapid reset

    func testStreamsResetBeforeTheyWereAnsweredCostNoConnectAndAFloodEndsTheTunnel() throws {
        _ = try self.makeTunnel(dialer: false, maxStreams: 1_000_000)
        // Every HEADERS is reset in the same read burst: none may reach a connect (the embedded loop
        // cannot connect, so one attempted would fail the test), and past the limit the tunnel goes.
        var id = 1
        for _ in 0..<RapidResetGuard.early.limit {
            try self.connect("echo", on: id)
            try self.receive(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .rstStream(.cancel)))
            id += 2
        }
        self.channel.pipeline.fireChannelReadComplete()
        XCTAssertTrue(self.channel.isActive, "up to the limit is tolerated")
        XCTAssertEqual(self.counters.streamsActive.load(ordering: .relaxed), 0, "reset streams are not counted")
        XCTAssertTrue(try self.written().isEmpty, "a reset stream gets no answer")

        try self.connect("echo", on: id)
        try self.receive(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .rstStream(.cancel)))
        let goAway = try self.written().first { if case .goAway = $0.payload { return true } else { return false } }
        guard case .goAway(_, let code, _) = try XCTUnwrap(goAway).payload else { return XCTFail("no GOAWAY") }
        XCTAssertEqual(code, .enhanceYourCalm)
        XCTAssertFalse(self.channel.isActive, "the flooding peer's tunnel is closed")
    }

    // MARK: The control stream (accepting side)

    func testAcceptorAsksTheDialerForStreamsAndHearsRefusals() throws {
        let streams = try self.makeTunnel(dialer: false)
        // A request made before the control stream exists waits for it.
        let opened = OutcomeLog()
        let early = TunnelStream(service: "echo", phase: .created(held: []), sendCredit: TunnelTuning.streamWindow)
        early.onOpened = { opened.append($0) }
        streams.open(early)
        XCTAssertTrue(try self.written().isEmpty)

        try self.connect(ReverseStreams.controlAuthority, on: 1)
        self.channel.pipeline.fireChannelReadComplete()
        let frames = try self.written()
        XCTAssertEqual(frames.compactMap(self.status).map(\.status), ["200"])
        XCTAssertEqual(frames.compactMap(self.dataText), ["open 1 echo\n"])
        XCTAssertEqual(self.counters.streamsActive.load(ordering: .relaxed), 1, "a requested stream counts")

        var refusal = ByteBuffer(string: "refuse 1 403\n")
        try self.receive(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(refusal)))))
        self.channel.pipeline.fireChannelReadComplete()
        guard case .failure(let error as StreamRefusedError) = try XCTUnwrap(opened.results.first) else {
            return XCTFail("expected a refusal, got \(opened.results)")
        }
        XCTAssertEqual(error.status, 403)
        XCTAssertEqual(self.counters.streamsActive.load(ordering: .relaxed), 0)

        // Notes ride the same stream.
        refusal = ByteBuffer(string: "note backend-report {\"x\":1}\n")
        try self.receive(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(refusal)))))
        XCTAssertEqual(self.notes.entries.map(\.1.topic), ["backend-report"])
        XCTAssertEqual(self.notes.entries.map(\.0), ["app1"], "the sender is the verified peer")
    }

    func testAReverseStreamIsJoinedToItsRequestWithTheHeldBytes() throws {
        let streams = try self.makeTunnel(dialer: false)
        try self.connect(ReverseStreams.controlAuthority, on: 1)
        self.channel.pipeline.fireChannelReadComplete()
        _ = try self.written()
        let opened = OutcomeLog()
        let stream = TunnelStream(
            service: "echo",
            phase: .created(held: [ByteBuffer(string: "hello")]),
            sendCredit: TunnelTuning.streamWindow
        )
        stream.localEnded = true
        stream.onOpened = { opened.append($0) }
        streams.open(stream)
        XCTAssertEqual(try self.written().compactMap(self.dataText), ["open 1 echo\n"])

        try self.receive(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: ReverseStreams.headers(id: 1)))))
        self.channel.pipeline.fireChannelReadComplete()
        let frames = try self.written()
        XCTAssertEqual(frames.map(\.streamID), [3, 3, 3])
        XCTAssertEqual(frames.compactMap(self.status).map(\.status), ["200"])
        XCTAssertEqual(frames.compactMap(self.dataText), ["hello", ""])
        guard case .data(let end) = frames.last!.payload else { return XCTFail() }
        XCTAssertTrue(end.endStream, "the held end follows the held bytes")
        guard case .success = try XCTUnwrap(opened.results.first) else { return XCTFail("\(opened.results)") }

        // A reverse stream nobody waits for is answered and ended at once.
        try self.receive(HTTP2Frame(streamID: 5, payload: .headers(.init(headers: ReverseStreams.headers(id: 99)))))
        self.channel.pipeline.fireChannelReadComplete()
        let unwanted = try self.written()
        XCTAssertEqual(unwanted.compactMap(self.status).map(\.status), ["200"])
        guard case .data(let data) = try XCTUnwrap(unwanted.last).payload else { return XCTFail() }
        XCTAssertTrue(data.endStream)
    }

    func testAnOverlongControlLineEndsTheTunnel() throws {
        _ = try self.makeTunnel(dialer: false)
        try self.connect(ReverseStreams.controlAuthority, on: 1)
        let long = ByteBuffer(repeating: UInt8(ascii: "x"), count: ReverseStreams.maxLine + 1)
        try? self.receive(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(long)))))
        XCTAssertFalse(self.channel.isActive)
        let codes = try self.written().compactMap { frame -> HTTP2ErrorCode? in
            if case .goAway(_, let code, _) = frame.payload { return code } else { return nil }
        }
        XCTAssertEqual(codes, [.enhanceYourCalm])
    }

    // MARK: The dialing side

    func testDialerOpensItsControlStreamThenStreamsWithTheirBytesAtOnce() throws {
        let streams = try self.makeTunnel(dialer: true)
        let control = try self.written()
        XCTAssertEqual(control.map(\.streamID), [1])
        guard case .headers(let headers) = control[0].payload else { return XCTFail() }
        XCTAssertEqual(headers.headers.first(name: ":authority"), ReverseStreams.controlAuthority)

        let opened = OutcomeLog()
        let stream = TunnelStream(
            service: "echo",
            phase: .created(held: [ByteBuffer(string: "startup")]),
            sendCredit: TunnelTuning.streamWindow
        )
        stream.onOpened = { opened.append($0) }
        streams.open(stream)
        let frames = try self.written()
        XCTAssertEqual(frames.map(\.streamID), [3, 3], "CONNECT and the first bytes leave together")
        XCTAssertEqual(frames.compactMap(self.dataText), ["startup"])
        XCTAssertEqual(self.counters.streamsActive.load(ordering: .relaxed), 1)

        // Refused: our side ends cleanly, with no RST_STREAM.
        var refusal = ConnectRequest.response(status: 403)
        refusal.add(name: "tm-reason", value: "not allowed to use this service")
        try self.receive(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: refusal, endStream: true))))
        self.channel.pipeline.fireChannelReadComplete()
        let answer = try self.written()
        XCTAssertEqual(answer.count, 1)
        guard case .data(let end) = answer[0].payload else { return XCTFail("\(answer)") }
        XCTAssertTrue(end.endStream)
        guard case .failure(let error as StreamRefusedError) = try XCTUnwrap(opened.results.first) else {
            return XCTFail("\(opened.results)")
        }
        XCTAssertEqual(error.reason, "not allowed to use this service")
        XCTAssertEqual(self.counters.streamsActive.load(ordering: .relaxed), 0)
    }

    func testOneShotCompletesWhenTheStreamClosesCleanly() throws {
        let streams = try self.makeTunnel(dialer: true)
        _ = try self.written()
        let done = self.channel.eventLoop.makePromise(of: Void.self)
        let stream = TunnelStream(
            service: "echo",
            phase: .created(held: [ByteBuffer(string: "cancel")]),
            sendCredit: TunnelTuning.streamWindow
        )
        stream.localEnded = true
        stream.oneShot = done
        streams.open(stream)
        let frames = try self.written()
        XCTAssertEqual(frames.compactMap(self.dataText), ["cancel", ""])
        try self.receive(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: ConnectRequest.response(status: 200), endStream: true))))
        self.channel.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 3, reason: nil))
        XCTAssertNoThrow(try done.futureResult.wait())
        XCTAssertEqual(self.counters.streamsActive.load(ordering: .relaxed), 0)
    }

    // MARK: Draining (certificate rotation)

    private func goAways(_ frames: [HTTP2Frame]) -> [(HTTP2StreamID, HTTP2ErrorCode)] {
        frames.compactMap { frame in
            if case .goAway(let last, let code, _) = frame.payload { return (last, code) } else { return nil }
        }
    }

    /// The dialer says GOAWAY on the old tunnel and keeps it: the acceptor closes it.
    func testDrainingDialerSendsGoAwayAndLeavesTheClosingToTheAcceptor() throws {
        let streams = try self.makeTunnel(dialer: true)
        _ = try self.written()
        streams.drain()
        let sent = self.goAways(try self.written())
        XCTAssertEqual(sent.map(\.0), [.rootStream])
        XCTAssertEqual(sent.map(\.1), [.noError])
        self.channel.embeddedEventLoop.run()
        XCTAssertTrue(self.channel.isActive, "the dialer does not close a draining tunnel itself")
        // The acceptor's closing GOAWAY: no new stream may go out here any more, and none is tried.
        try self.receive(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil)))
        self.channel.pipeline.fireChannelReadComplete()
        let opened = OutcomeLog()
        let late = TunnelStream(service: "echo", phase: .created(held: []), sendCredit: TunnelTuning.streamWindow)
        late.onOpened = { opened.append($0) }
        streams.open(late)
        XCTAssertTrue(try self.written().isEmpty, "no HEADERS after the peer's GOAWAY")
        guard case .failure(let error) = try XCTUnwrap(opened.results.first), error is PeerUnavailableError else {
            return XCTFail("expected the stream refused as peer unavailable, got \(opened.results)")
        }
    }

    /// The acceptor closes a draining tunnel only once the dialer's GOAWAY came, no stream is left
    /// and none of its requests waits; then with a GOAWAY of its own.
    func testDrainingAcceptorClosesOnceTheDialerWentAwayAndNothingIsLeft() throws {
        let streams = try self.makeTunnel(dialer: false)
        try self.connect(ReverseStreams.controlAuthority, on: 1)
        self.channel.pipeline.fireChannelReadComplete()
        _ = try self.written()
        let pending = TunnelStream(service: "echo", phase: .created(held: []), sendCredit: TunnelTuning.streamWindow)
        pending.onOpened = { _ in }
        streams.open(pending)
        XCTAssertEqual(try self.written().compactMap(self.dataText), ["open 1 echo\n"])

        streams.drain()
        XCTAssertTrue(self.goAways(try self.written()).isEmpty, "the acceptor says nothing before it closes")
        try self.receive(
            HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .rootStream, errorCode: .noError, opaqueData: nil))
        )
        self.channel.pipeline.fireChannelReadComplete()
        self.channel.embeddedEventLoop.run()
        XCTAssertTrue(self.channel.isActive, "a request still waits for the dialer")

        // The dialer answers the request with a stream, which then finishes cleanly.
        try self.receive(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: ReverseStreams.headers(id: 1)))))
        self.channel.pipeline.fireChannelReadComplete()
        self.channel.embeddedEventLoop.run()
        XCTAssertTrue(self.channel.isActive, "its stream is still open")
        _ = try self.written()
        pending.localEnded = true
        pending.peerEnded = true
        self.channel.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 3, reason: nil))
        self.channel.embeddedEventLoop.run()
        let last = self.goAways(try self.written())
        XCTAssertEqual(last.map(\.1), [.noError], "closing GOAWAY")
        XCTAssertFalse(self.channel.isActive, "closed once drained")
    }

    /// At the hard end the tunnel closes with its streams, and the error reaches the owner.
    func testExpireClosesTheTunnelWithTheReason() throws {
        let streams = try self.makeTunnel(dialer: true)
        let errors = ErrorLog()
        try self.channel.pipeline.syncOperations.addHandler(ErrorCatcher(log: errors))
        let notAfter = Date(timeIntervalSince1970: 1_800_000_000)
        streams.expire(ReauthenticationDeadlineError(peer: "app1", reason: .certificateExpired(notAfter: notAfter)))
        XCTAssertFalse(self.channel.isActive)
        XCTAssertTrue(errors.errors.contains { "\($0)".contains("expired at 2027-01-15T08:00:00Z") }, "\(errors.errors)")
    }

    // MARK: Credit

    func testConnectionWindowIsToppedUpWithOneGrantInFlight() throws {
        _ = try self.makeTunnel(dialer: false)
        let low = TunnelTuning.connectionWindow / 2 - 1
        self.channel.pipeline.fireUserInboundEventTriggered(
            NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: low, outboundWindowSize: nil)
        )
        self.channel.pipeline.fireUserInboundEventTriggered(
            NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: low - 1000, outboundWindowSize: nil)
        )
        let grants = try self.written().compactMap { frame -> Int? in
            if case .windowUpdate(let increment) = frame.payload, frame.streamID == .rootStream { return increment }
            return nil
        }
        // EmbeddedChannel completes a write at once, so the second event could grant again; it
        // must still not over-credit: the window stays within its target.
        XCTAssertEqual(grants.first, TunnelTuning.connectionWindow - low)
        XCTAssertLessThanOrEqual(grants.count, 2)
        if grants.count == 2 { XCTAssertEqual(grants[1], TunnelTuning.connectionWindow - (low - 1000)) }

        // A window above half its target needs nothing.
        self.channel.pipeline.fireUserInboundEventTriggered(
            NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: TunnelTuning.connectionWindow, outboundWindowSize: nil)
        )
        XCTAssertTrue(try self.written().isEmpty)
    }
}

/// Records notes from the handler (on the embedded loop, the test's thread).
private final class NoteLog: @unchecked Sendable {
    var entries: [(String, PeerNote)] = []
    func append(_ peer: String, _ note: PeerNote) { self.entries.append((peer, note)) }
}

/// Records an opener's outcomes.
private final class OutcomeLog: @unchecked Sendable {
    var results: [Result<Void, Error>] = []
    func append(_ result: Result<Void, Error>) { self.results.append(result) }
}

/// Errors that reach the end of the pipeline.
private final class ErrorLog: @unchecked Sendable {
    private(set) var errors: [Error] = []
    func append(_ error: Error) { self.errors.append(error) }
}

private final class ErrorCatcher: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    let log: ErrorLog
    init(log: ErrorLog) { self.log = log }
    func errorCaught(context: ChannelHandlerContext, error: Error) { self.log.append(error) }
}
