import MeshConfig
import NIOCore
import NIOEmbedded
import XCTest

@testable import MeshTLS

/// The handler between two EmbeddedChannels: handshake, data, flushing, closing, broken input.
final class TLSHandlerTests: TLSPKITestCase {
    nonisolated(unsafe) static var serverContext: TLSContext!
    nonisolated(unsafe) static var clientContext: TLSContext!

    override class func setUp() {
        super.setUp()
        serverContext = try! sharedPKI.context(.server, "db1", crl: true)
        clientContext = try! sharedPKI.context(.client, "app1", crl: true)
    }

    override class func tearDown() {
        serverContext = nil
        clientContext = nil
        super.tearDown()
    }

    private var pipes: [TLSPipe] = []

    override func tearDown() {
        for pipe in pipes { pipe.finish() }
        pipes = []
        super.tearDown()
    }

    private func makePipe(client: TLSContext? = nil, server: TLSContext? = nil, clientPolicy: PeerPolicy? = nil) throws -> TLSPipe {
        let pipe =
            if let clientPolicy {
                try TLSPipe(client: client ?? Self.clientContext, server: server ?? Self.serverContext, clientPolicy: clientPolicy)
            } else {
                try TLSPipe(client: client ?? Self.clientContext, server: server ?? Self.serverContext)
            }
        pipes.append(pipe)
        return pipe
    }

    /// A pipe whose handshake has completed.
    private func connectedPipe() throws -> TLSPipe {
        let pipe = try makePipe()
        try pipe.activate()
        try pipe.exchange()
        XCTAssertNotNil(pipe.clientRecorder.handshake, "client log: \(pipe.clientRecorder.log)")
        XCTAssertNotNil(pipe.serverRecorder.handshake, "server log: \(pipe.serverRecorder.log)")
        return pipe
    }

    // MARK: Handshake and data

    func testHandshakeNamesBothPeersAndCarriesDataBothWays() throws {
        let pipe = try connectedPipe()
        let atServer = try XCTUnwrap(pipe.serverRecorder.handshake)
        let atClient = try XCTUnwrap(pipe.clientRecorder.handshake)
        XCTAssertEqual(atServer.peer, MeshIdentity(mesh: "demo", node: "app1"))
        XCTAssertEqual(atClient.peer, MeshIdentity(mesh: "demo", node: "db1"))
        XCTAssertEqual(atServer.alpn, "h2")
        XCTAssertEqual(atClient.alpn, "h2")
        XCTAssertEqual(atClient.peerCertificateNotAfter.timeIntervalSinceNow / 86_400, 30, accuracy: 1)
        XCTAssertEqual(pipe.serverHandler.handshakeResult?.peer.node, "app1")

        try pipe.client.writeAndFlush(TLSPipe.buffer("ping")).wait()
        try pipe.server.writeAndFlush(TLSPipe.buffer("pong")).wait()
        try pipe.exchange()
        XCTAssertEqual(pipe.serverRecorder.receivedText, "ping")
        XCTAssertEqual(pipe.clientRecorder.receivedText, "pong")
        XCTAssert(pipe.serverRecorder.errors.isEmpty && pipe.clientRecorder.errors.isEmpty)

        // The handshake timer was cancelled: time passing does nothing.
        pipe.client.embeddedEventLoop.advanceTime(by: .seconds(60))
        pipe.server.embeddedEventLoop.advanceTime(by: .seconds(60))
        XCTAssert(pipe.client.isActive && pipe.server.isActive)
        XCTAssert(pipe.serverRecorder.errors.isEmpty && pipe.clientRecorder.errors.isEmpty)
    }

    func testInputSplitAtEveryByte() throws {
        let pipe = try makePipe()
        try pipe.activate()
        // Handshake flights and the first records, one byte per read in both directions.
        pipe.clientRecorder.onHandshake = { context in
            context.writeAndFlush(NIOAny(TLSPipe.buffer("client says hi")), promise: nil)
        }
        pipe.serverRecorder.onHandshake = { context in
            context.writeAndFlush(NIOAny(TLSPipe.buffer("server says hi")), promise: nil)
        }
        let moved = try pipe.exchange(split: 1)
        XCTAssertGreaterThan(moved, 1000, "a handshake with two certificates is more than 1,000 bytes")
        XCTAssertNotNil(pipe.serverRecorder.handshake)
        XCTAssertNotNil(pipe.clientRecorder.handshake)
        XCTAssertEqual(pipe.serverRecorder.receivedText, "client says hi")
        XCTAssertEqual(pipe.clientRecorder.receivedText, "server says hi")
        XCTAssert(pipe.serverRecorder.errors.isEmpty, "\(pipe.serverRecorder.errors)")
        XCTAssert(pipe.clientRecorder.errors.isEmpty, "\(pipe.clientRecorder.errors)")
    }

    func testApplicationDataInTheSameReadAsTheLastFlight() throws {
        let pipe = try makePipe()
        // Written before the handshake starts; goes out right behind the client's Finished.
        pipe.client.writeAndFlush(TLSPipe.buffer("early bytes"), promise: nil)
        try pipe.activate()
        try pipe.deliver(try pipe.drain(pipe.client), to: pipe.server)  // ClientHello
        try pipe.deliver(try pipe.drain(pipe.server), to: pipe.client)  // ServerHello ... Finished
        let lastFlight = try pipe.drain(pipe.client)
        let records = tlsRecords(in: lastFlight)
        XCTAssertGreaterThan(records.count, 1, "Finished and data should both be in this read: \(records)")

        XCTAssertNil(pipe.serverRecorder.handshake)
        try pipe.server.writeInbound(lastFlight)  // one read holding the last flight and the data
        XCTAssertNotNil(pipe.serverRecorder.handshake)
        XCTAssertEqual(pipe.serverRecorder.receivedText, "early bytes")
        XCTAssertEqual(pipe.serverRecorder.log, ["handshake", "read(11)", "readComplete"])
    }

    func testWritesAndFlushesBeforeTheHandshakeCompletes() throws {
        let pipe = try makePipe()
        let first = pipe.client.eventLoop.makePromise(of: Void.self)
        let second = pipe.client.eventLoop.makePromise(of: Void.self)
        let third = pipe.client.eventLoop.makePromise(of: Void.self)
        pipe.client.write(TLSPipe.buffer("one,"), promise: first)
        pipe.client.flush()
        pipe.client.write(TLSPipe.buffer("two,"), promise: second)
        pipe.client.flush()
        pipe.client.write(TLSPipe.buffer("three"), promise: third)  // not flushed yet
        try pipe.activate()
        try pipe.deliver(try pipe.drain(pipe.client), to: pipe.server)
        let firstFlight = try pipe.drain(pipe.server)
        try pipe.deliver(firstFlight, to: pipe.client)
        var completed = 0
        for promise in [first, second, third] { promise.futureResult.assumeIsolated().whenSuccess { completed += 1 } }
        XCTAssertEqual(completed, 2, "the flushed writes went out with the client's Finished")

        pipe.client.flush()
        try pipe.exchange()
        XCTAssertEqual(completed, 3)
        XCTAssertEqual(pipe.serverRecorder.receivedText, "one,two,three")
    }

    func testOneMebibyteWriteIsSplitIntoFullRecordsAndDeliveredAsOneRead() throws {
        let pipe = try connectedPipe()
        let payload = TLSPipe.noise(1 << 20)
        try pipe.client.writeAndFlush(TLSPipe.buffer(payload)).wait()
        let writes = try pipe.outboundWrites(pipe.client)
        XCTAssertEqual(writes.filter { $0.readableBytes > 0 }.count, 8, "ciphertext leaves in 128 KiB chunks")
        var ciphertext = ByteBuffer()
        for var write in writes { ciphertext.writeBuffer(&write) }
        let records = tlsRecords(in: ciphertext)
        XCTAssertEqual(records.count, 64, "1 MiB in full 16 KiB records")
        XCTAssert(records.allSatisfy { $0.type == 23 && $0.length == 16_384 + 17 }, "\(records.prefix(3))")

        try pipe.server.writeInbound(ciphertext)
        XCTAssertEqual(pipe.serverRecorder.readSizes, [1 << 20], "one channelRead per read burst")
        XCTAssertEqual(pipe.serverRecorder.received, payload)
    }

    func testSmallWritesAreCoalescedIntoOneRecord() throws {
        let pipe = try connectedPipe()
        var expected = ""
        for index in 0..<100 {
            let piece = String(format: "%09d,", index)
            expected += piece
            pipe.client.write(TLSPipe.buffer(piece), promise: nil)
        }
        pipe.client.flush()
        let writes = try pipe.outboundWrites(pipe.client)
        XCTAssertEqual(writes.count, 1)
        XCTAssertEqual(tlsRecords(in: writes[0]).map(\.length), [1000 + 17])
        try pipe.deliver(writes[0], to: pipe.server)
        XCTAssertEqual(pipe.serverRecorder.receivedText, expected)
    }

    func testWritesMixingSmallAndLargeArriveInOrder() throws {
        let pipe = try connectedPipe()
        var expected: [UInt8] = []
        for (index, size) in [9, 70_000, 9, 9, 16_384, 1, 33_000, 5].enumerated() {
            let bytes = TLSPipe.noise(size, seed: UInt64(index + 1))
            expected += bytes
            pipe.client.write(TLSPipe.buffer(bytes), promise: nil)
        }
        pipe.client.flush()
        let ciphertext = try pipe.drain(pipe.client)
        let lengths = tlsRecords(in: ciphertext).map(\.length)
        XCTAssertEqual(lengths.dropLast().filter { $0 != 16_384 + 17 }, [], "only the last record may be short: \(lengths)")
        try pipe.deliver(ciphertext, to: pipe.server)
        XCTAssertEqual(pipe.serverRecorder.received, expected)
    }

    func testWriteFlushedFromInsideOurFlushIsNotStranded() throws {
        // A write promise completes inside the handler's own flush; its callback writes and flushes
        // again (as a handler reacting to channelWritabilityChanged would). That write must go out in
        // order, without waiting for some later flush.
        let pipe = try connectedPipe()
        let first = pipe.client.eventLoop.makePromise(of: Void.self)
        first.futureResult.assumeIsolated().whenSuccess {
            pipe.client.writeAndFlush(TLSPipe.buffer("second"), promise: nil)
        }
        pipe.client.writeAndFlush(TLSPipe.buffer("first,"), promise: first)
        try pipe.exchange()
        XCTAssertEqual(pipe.serverRecorder.receivedText, "first,second")
    }

    func testHandlersAndTheirOpenSSLObjectsAreFreedAfterClose() throws {
        // No retain cycle through timers, ex_data or the BIO: closed connections give their memory back.
        weak var clientHandler: OpenSSLHandler?
        weak var serverHandler: OpenSSLHandler?
        do {
            let pipe = try TLSPipe(client: Self.clientContext, server: Self.serverContext)
            clientHandler = pipe.clientHandler
            serverHandler = pipe.serverHandler
            try pipe.activate()
            try pipe.exchange()
            XCTAssertNotNil(pipe.serverRecorder.handshake)
            pipe.finish()
        }
        XCTAssertNil(clientHandler)
        XCTAssertNil(serverHandler)
    }

    // MARK: Closing

    func testCloseNotifyWhileDataIsInFlightDeliversAllDataFirst() throws {
        let pipe = try connectedPipe()
        let payload = TLSPipe.noise(200_000)
        pipe.client.writeAndFlush(TLSPipe.buffer(payload), promise: nil)
        let closed = pipe.client.close()
        var closeResult: Result<Void, any Error>?
        closed.assumeIsolated().whenComplete { closeResult = $0 }
        XCTAssertNil(closeResult, "waits for the server's close_notify")
        try pipe.exchange()
        XCTAssertEqual(pipe.serverRecorder.received, payload)
        XCTAssertEqual(pipe.serverRecorder.log.suffix(3), ["read(200000)", "readComplete", "inactive"])
        XCTAssert(pipe.serverRecorder.errors.isEmpty, "\(pipe.serverRecorder.errors)")
        XCTAssert(pipe.clientRecorder.errors.isEmpty, "\(pipe.clientRecorder.errors)")
        XCTAssertNoThrow(try XCTUnwrap(closeResult).get())
        XCTAssertFalse(pipe.client.isActive)
        XCTAssertFalse(pipe.server.isActive)
    }

    func testServerAnswersAndDataSentBeforeItsCloseNotifyArrives() throws {
        let pipe = try connectedPipe()
        // The server still has a reply in flight when the client closes.
        pipe.server.writeAndFlush(TLSPipe.buffer("last words"), promise: nil)
        pipe.client.close(promise: nil)
        try pipe.exchange()
        XCTAssertEqual(pipe.clientRecorder.receivedText, "last words")
        XCTAssert(pipe.clientRecorder.errors.isEmpty && pipe.serverRecorder.errors.isEmpty)
        XCTAssert(pipe.clientRecorder.inactive && pipe.serverRecorder.inactive)
    }

    func testSimultaneousClose() throws {
        let pipe = try connectedPipe()
        var results: [Result<Void, any Error>] = []
        pipe.client.close().assumeIsolated().whenComplete { results.append($0) }
        pipe.server.close().assumeIsolated().whenComplete { results.append($0) }
        try pipe.exchange()
        XCTAssertEqual(results.count, 2)
        XCTAssert(results.allSatisfy { (try? $0.get()) != nil }, "\(results)")
        XCTAssert(pipe.clientRecorder.errors.isEmpty, "\(pipe.clientRecorder.errors)")
        XCTAssert(pipe.serverRecorder.errors.isEmpty, "\(pipe.serverRecorder.errors)")
        XCTAssert(pipe.clientRecorder.inactive && pipe.serverRecorder.inactive)
    }

    func testPeerThatNeverAnswersCloseNotifyIsClosedAfterTheTimeout() throws {
        let pipe = try connectedPipe()
        var closed = false
        pipe.client.close().assumeIsolated().whenSuccess { closed = true }
        _ = try pipe.drain(pipe.client)  // the close_notify goes nowhere
        pipe.client.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertFalse(closed)
        pipe.client.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertTrue(closed)
        XCTAssertEqual(pipe.clientRecorder.connectionErrors.map(\.description), [TLSConnectionError.closeNotifyTimeout.description])
    }

    func testRaggedEOFAfterTheHandshakeIsAnUncleanShutdown() throws {
        let pipe = try connectedPipe()
        let pending = pipe.server.eventLoop.makePromise(of: Void.self)
        pipe.server.write(TLSPipe.buffer("never flushed"), promise: pending)
        pipe.server.pipeline.fireChannelInactive()  // TCP gone, no close_notify
        XCTAssertEqual(pipe.serverRecorder.connectionErrors.map(\.description), [TLSConnectionError.uncleanShutdown.description])
        XCTAssertThrowsError(try pending.futureResult.wait())
        XCTAssertEqual(pipe.serverRecorder.log.last, "inactive")
    }

    func testClosingDuringTheHandshakeFailsBufferedWrites() throws {
        let pipe = try makePipe()
        try pipe.activate()
        let buffered = pipe.client.eventLoop.makePromise(of: Void.self)
        pipe.client.writeAndFlush(TLSPipe.buffer("held"), promise: buffered)
        try pipe.client.close().wait()
        XCTAssertThrowsError(try buffered.futureResult.wait())
        let late = pipe.client.eventLoop.makePromise(of: Void.self)
        pipe.client.writeAndFlush(TLSPipe.buffer("late"), promise: late)
        XCTAssertThrowsError(try late.futureResult.wait())
    }

    // MARK: Broken handshakes

    func testEOFDuringTheHandshake() throws {
        let pipe = try makePipe()
        let buffered = pipe.client.eventLoop.makePromise(of: Void.self)
        pipe.client.writeAndFlush(TLSPipe.buffer("held"), promise: buffered)
        try pipe.activate()
        try pipe.deliver(try pipe.drain(pipe.client), to: pipe.server)
        pipe.client.pipeline.fireChannelInactive()  // the server vanished after the ClientHello
        XCTAssertEqual(pipe.clientRecorder.handshakeError?.reason, .eof)
        XCTAssertThrowsError(try buffered.futureResult.wait()) { error in
            XCTAssertEqual((error as? TLSHandshakeError)?.reason, .eof)
        }
    }

    func testHandshakeTimeout() throws {
        let pipe = try makePipe()
        try pipe.activate()
        _ = try pipe.drain(pipe.client)  // the ClientHello is never answered
        pipe.client.embeddedEventLoop.advanceTime(by: .milliseconds(4_999))
        XCTAssertNil(pipe.clientRecorder.handshakeError)
        pipe.client.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertEqual(pipe.clientRecorder.handshakeError?.reason, .timeout)
        XCTAssertFalse(pipe.client.isActive)
        // The server, which never heard from anyone, times out too.
        pipe.server.embeddedEventLoop.advanceTime(by: .seconds(5))
        XCTAssertEqual(pipe.serverRecorder.handshakeError?.reason, .timeout)
        XCTAssertFalse(pipe.server.isActive)
    }

    func testPlaintextHTTPIsNotTLS() throws {
        let pipe = try makePipe()
        try pipe.activate()
        try pipe.server.writeInbound(TLSPipe.buffer("GET / HTTP/1.1\r\nHost: db1\r\n\r\n"))
        let error = try XCTUnwrap(pipe.serverRecorder.handshakeError)
        XCTAssertEqual(error.reason, .notTLS)
        XCTAssert(error.detail.hasSuffix("47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a (\"GET / HTTP/1.1..\")"), error.detail)
        XCTAssertFalse(pipe.server.isActive)
    }

    func testRandomGarbageIsNotTLSEvenOneByteAtATime() throws {
        let pipe = try makePipe()
        try pipe.activate()
        var garbage = TLSPipe.noise(64, seed: 7)
        garbage[0] = 0x16  // starts like a handshake record ...
        garbage[1] = 0x7F  // ... but no TLS version looks like this
        try pipe.deliver(TLSPipe.buffer(garbage), to: pipe.server, split: 1)
        XCTAssertEqual(pipe.serverRecorder.handshakeError?.reason, .notTLS)
        XCTAssertFalse(pipe.server.isActive)
    }

    func testOversizedRecordHeaderDuringTheHandshake() throws {
        let pipe = try makePipe()
        try pipe.activate()
        try pipe.server.writeInbound(TLSPipe.buffer([0x16, 0x03, 0x01, 0xFF, 0xFF] + TLSPipe.noise(32)))
        XCTAssertEqual(pipe.serverRecorder.handshakeError?.reason, .notTLS, "\(pipe.serverRecorder.errors)")
        XCTAssertFalse(pipe.server.isActive)
    }

    // MARK: Broken records after the handshake

    func testGarbageAfterTheHandshakeIsARecordError() throws {
        let pipe = try connectedPipe()
        try pipe.server.writeInbound(TLSPipe.buffer([0x17, 0x03, 0x03, 0x00, 0x40] + TLSPipe.noise(64)))
        let errors = pipe.serverRecorder.connectionErrors
        XCTAssertEqual(errors.count, 1)
        guard case .recordError(let detail) = errors.first else { return XCTFail("\(errors)") }
        XCTAssert(detail.contains("bad record mac") || detail.contains("decryption failed"), detail)
        XCTAssertFalse(pipe.server.isActive)
        // The server told the client why (a bad_record_mac alert) before closing.
        try pipe.exchange()
        guard case .recordError = pipe.clientRecorder.connectionErrors.first else {
            return XCTFail("client saw \(pipe.clientRecorder.log)")
        }
    }

    func testOversizedRecordAfterTheHandshakeIsARecordError() throws {
        let pipe = try connectedPipe()
        try pipe.server.writeInbound(TLSPipe.buffer([0x17, 0x03, 0x03, 0xFF, 0xFF]))
        guard case .recordError(let detail) = pipe.serverRecorder.connectionErrors.first else {
            return XCTFail("\(pipe.serverRecorder.log)")
        }
        XCTAssert(detail.contains("length too long"), detail)
        XCTAssertFalse(pipe.server.isActive)
    }

    // MARK: Rejections

    private func assertServerRejectsClient(
        _ node: String,
        as reason: HandshakeFailureReason,
        clientSees alert: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let client = try Self.sharedPKI.context(.client, node)
        let pipe = try makePipe(client: client)
        try pipe.activate()
        try pipe.exchange()
        let atServer = pipe.serverRecorder.handshakeError
        XCTAssertEqual(atServer?.reason, reason, "server: \(pipe.serverRecorder.log)", file: file, line: line)
        let atClient = pipe.clientRecorder.handshakeError
        XCTAssertEqual(atClient?.reason, .peerRejected, "client: \(pipe.clientRecorder.log)", file: file, line: line)
        XCTAssert(atClient?.detail.contains(alert) == true, "client: \(atClient?.detail ?? "-")", file: file, line: line)
        XCTAssertNil(pipe.clientRecorder.handshake, "a refused client never sees the handshake complete", file: file, line: line)
        XCTAssertNil(pipe.serverRecorder.handshake, file: file, line: line)
        XCTAssertFalse(pipe.server.isActive, file: file, line: line)
        XCTAssertFalse(pipe.client.isActive, file: file, line: line)
    }

    func testServerRejectsExpiredClientCertificate() throws {
        try assertServerRejectsClient("expired", as: .expired, clientSees: "certificate expired")
    }

    func testServerRejectsNotYetValidClientCertificate() throws {
        try assertServerRejectsClient("future", as: .notYetValid, clientSees: "bad certificate")
    }

    func testServerRejectsRevokedClientCertificate() throws {
        try assertServerRejectsClient("revoked", as: .revoked, clientSees: "certificate revoked")
    }

    func testServerRejectsCertificateFromAnotherCA() throws {
        try assertServerRejectsClient("otherca", as: .untrusted, clientSees: "unknown CA")
    }

    func testServerRejectsSelfSignedCertificate() throws {
        try assertServerRejectsClient("selfsigned", as: .untrusted, clientSees: "unknown CA")
    }

    func testServerRejectsCertificateForAnotherMesh() throws {
        try assertServerRejectsClient("wrongmesh", as: .wrongMesh, clientSees: "bad certificate")
    }

    func testServerRejectsUndeclaredNode() throws {
        try assertServerRejectsClient("intruder", as: .undeclaredNode, clientSees: "bad certificate")
    }

    func testServerRejectsCertificateWithoutIdentity() throws {
        try assertServerRejectsClient("noid", as: .noIdentity, clientSees: "bad certificate")
        try assertServerRejectsClient("twoids", as: .noIdentity, clientSees: "bad certificate")
    }

    func testRejectionDetailsNameThePeerAndTheProblem() throws {
        let pipe = try makePipe(client: try Self.sharedPKI.context(.client, "intruder"))
        try pipe.activate()
        try pipe.exchange()
        let detail = try XCTUnwrap(pipe.serverRecorder.handshakeError?.detail)
        XCTAssert(detail.hasPrefix("peer certificate names spiffe://demo/node/intruder, but node \"intruder\" is not declared"), detail)

        let expired = try makePipe(client: try Self.sharedPKI.context(.client, "expired"))
        try expired.activate()
        try expired.exchange()
        let expiredDetail = try XCTUnwrap(expired.serverRecorder.handshakeError?.detail)
        XCTAssertEqual(expiredDetail, "peer certificate CN=expired expired on 2021-01-01T00:00:00Z")
    }

    private func assertClientRejectsServer(
        _ node: String,
        dialing expected: String,
        as reason: HandshakeFailureReason,
        serverSees alert: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let server = try Self.sharedPKI.context(.server, node, crl: true)
        let pipe = try makePipe(server: server, clientPolicy: .exactly(MeshIdentity(mesh: "demo", node: expected)))
        try pipe.activate()
        try pipe.exchange()
        XCTAssertEqual(pipe.clientRecorder.handshakeError?.reason, reason, "client: \(pipe.clientRecorder.log)", file: file, line: line)
        let atServer = pipe.serverRecorder.handshakeError
        XCTAssertEqual(atServer?.reason, .peerRejected, "server: \(pipe.serverRecorder.log)", file: file, line: line)
        XCTAssert(atServer?.detail.contains(alert) == true, "server: \(atServer?.detail ?? "-")", file: file, line: line)
        XCTAssertFalse(pipe.server.isActive, file: file, line: line)
        XCTAssertFalse(pipe.client.isActive, file: file, line: line)
    }

    func testClientRejectsServerThatIsNotTheDialedNode() throws {
        try assertClientRejectsServer("db2", dialing: "db1", as: .wrongNode, serverSees: "bad certificate")
        let pipe = pipes.last!
        XCTAssertEqual(
            pipe.clientRecorder.handshakeError?.detail,
            "dialed spiffe://demo/node/db1 but the peer certificate names spiffe://demo/node/db2"
        )
    }

    func testClientRejectsServerOfAnotherMesh() throws {
        try assertClientRejectsServer("wrongmesh", dialing: "db1", as: .wrongMesh, serverSees: "bad certificate")
    }

    func testClientRejectsExpiredAndForeignServers() throws {
        try assertClientRejectsServer("expired", dialing: "expired", as: .expired, serverSees: "certificate expired")
        try assertClientRejectsServer("otherca", dialing: "otherca", as: .untrusted, serverSees: "unknown CA")
    }

    func testClientWithCRLRejectsRevokedServer() throws {
        try assertClientRejectsServer("revoked", dialing: "revoked", as: .revoked, serverSees: "certificate revoked")
    }

    func testWithoutCRLTheRevokedCertificateIsAccepted() throws {
        // The control for the test above: it is the CRL that makes the difference.
        let server = try Self.sharedPKI.context(.server, "db1")
        let pipe = try makePipe(client: try Self.sharedPKI.context(.client, "revoked"), server: server)
        try pipe.activate()
        try pipe.exchange()
        XCTAssertEqual(pipe.serverRecorder.handshake?.peer.node, "revoked")
    }
}
