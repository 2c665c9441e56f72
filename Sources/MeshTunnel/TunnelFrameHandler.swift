import NIOCore
import NIOHPACK
import NIOHTTP2

/// HTTP/2 framing for one tunnel, between TLS and `TunnelStreams`: it turns the peer's bytes into
/// `HTTP2Frame`s and frames into bytes, keeps the streams' states and both flow-control windows,
/// and ends the tunnel with GOAWAY when the peer breaks the protocol. It replaced swift-nio-http2's
/// `NIOHTTP2Handler`, whose general state machine, frame buffers and per-frame events cost as
/// much CPU per message as the TLS layer below (BENCHMARKS.md, "Per-message cost"); the wire
/// format is the same (RFC 9113, HTTP/2 CONNECT), so h2 tooling still reads a tunnel.
///
/// What it does not do, because a tunnel does not need it: server push (SETTINGS_ENABLE_PUSH is
/// 0, a PUSH_PROMISE is a protocol error), priorities (PRIORITY is read and ignored), padding on
/// frames it sends, and header blocks that need CONTINUATION on the way out (a tunnel's headers
/// are a few dozen bytes).
///
/// The contract with the handlers behind it, which `TunnelStreams` and `LivenessHandler` rely on:
/// - Up: HEADERS (a header block, CONTINUATIONs joined), DATA, RST_STREAM, stream WINDOW_UPDATE,
///   GOAWAY and PING acknowledgements. SETTINGS and PINGs are answered here.
/// - `StreamClosedEvent` once a stream is over: both sides ended (reason nil), reset either way,
///   or above the last stream ID of the peer's GOAWAY (refusedStream).
/// - `NIOHTTP2WindowUpdatedEvent` for the connection whenever DATA left our receive window at
///   half of `TunnelTuning.connectionWindow` or below: the moment `TunnelStreams` tops it up.
///   Stream windows are `TunnelStreams`' own (it grants once bytes reached the local socket);
///   here they are only enforced.
/// - Writes: DATA beyond the peer's windows waits here, per stream, until a WINDOW_UPDATE or
///   SETTINGS makes room. Frames go out on flush, coalesced into as few buffers as possible so
///   that the TLS handler makes one record and one syscall of them.
///
/// Hostile peers (authenticated, so mesh members, but possibly broken or compromised) get a
/// GOAWAY with the RFC's error code and the tunnel closes: malformed or oversized frames, frames
/// on streams that were never opened, window overflows, header blocks over `maxHeaderBlock`, and
/// floods (`RapidResetGuard.any` resets, `Limits.maxSequentialEmptyDataFrames` empty DATA frames,
/// `Limits.maxUnsentAcks` SETTINGS/PING answers the peer does not read: ENHANCE_YOUR_CALM).
final class TunnelFrameHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = ByteBuffer

    /// What this end allows and announces (see `TunnelTuning.framing`).
    struct Limits {
        /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer opens past it are refused.
        var maxConcurrentStreams: Int
        /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window.
        var streamWindow: Int
        /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept.
        var maxFrameSize: Int
        /// SETTINGS_MAX_HEADER_LIST_SIZE: the largest decoded header list we accept.
        var maxHeaderListSize: Int
        /// Empty DATA frames without END_STREAM in a row before the peer counts as flooding.
        var maxSequentialEmptyDataFrames: Int
        /// SETTINGS and PING answers waiting while the tunnel cannot write, before the peer counts
        /// as flooding (it sends and does not read).
        var maxUnsentAcks: Int = 10_000
    }

    /// Where the reading of the peer's bytes is.
    private enum Inbound {
        /// Server: the client's connection preface comes first.
        case preface
        /// The peer's first frame must be SETTINGS.
        case firstSettings
        case frames
        /// In a header block: only its CONTINUATION frames may come.
        case continuation(HeaderBlock)
        /// In the payload of a DATA frame whose header was read: its bytes go up as they arrive,
        /// not once the whole frame (up to 1 MiB) is in, which would copy every byte once more.
        case dataPayload(DataPayload)
        /// A connection error was sent: nothing more is read.
        case failed
    }

    private struct DataPayload {
        let streamID: HTTP2StreamID
        var remaining: Int
        let endStream: Bool
    }

    private struct HeaderBlock {
        let streamID: HTTP2StreamID
        let endStream: Bool
        var fragment: ByteBuffer
        var frames: Int
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// The largest header block (compressed, CONTINUATIONs joined) and the most CONTINUATION frames
    /// we take: a tunnel's requests are a few dozen bytes.
    static let maxHeaderBlock = 64 << 10
    static let maxContinuations = 64
    /// Payloads up to this size are copied next to their frame header, so small messages leave in
    /// one buffer; larger ones are written as they are, after it.
    private static let copyLimit = 16 << 10
    private static let maxWindow = Int(Int32.max)

    private let isDialer: Bool
    private let limits: Limits
    private var inbound = Inbound.preface
    /// Bytes of a frame not yet complete.
    private var partial: ByteBuffer?
    private var streams: [HTTP2StreamID: FrameStream] = [:]
    /// Streams the peer opened that are still open.
    private var peerStreamCount = 0
    /// The highest stream ID each side opened: below it a missing stream is closed, above it idle.
    private var lastPeerStreamID = HTTP2StreamID(0)
    private var lastLocalStreamID = HTTP2StreamID(0)
    /// Connection windows (RFC 9113 §6.9.1: 65,535 until a WINDOW_UPDATE).
    private var sendWindow = 65_535
    private var receiveWindow = 65_535
    /// The peer's settings that shape what we send.
    private var peerInitialWindow = 65_535
    private var peerMaxFrameSize = 16_384
    /// Streams with DATA waiting for window, in the order they blocked.
    private var blocked: [HTTP2StreamID] = []
    private var decoder: HPACKDecoder
    private var encoder: HPACKEncoder
    /// Frames written since the last flush, and the promises of those in it.
    private var outbound: ByteBuffer
    private var outboundPromises: [EventLoopPromise<Void>] = []
    /// Written to the TLS handler since its last flush.
    private var unflushed = false
    private var resets = RapidResetGuard(RapidResetGuard.any)
    private var emptyDataFrames = 0
    private var unsentAcks = 0

    init(isDialer: Bool, limits: Limits) {
        self.isDialer = isDialer
        self.limits = limits
        self.inbound = isDialer ? .firstSettings : .preface
        self.decoder = HPACKDecoder(
            allocator: ByteBufferAllocator(),
            maxDynamicTableSize: HPACKDecoder.maxDynamicTableSize,
            maxHeaderListSize: limits.maxHeaderListSize
        )
        self.encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        self.outbound = ByteBufferAllocator().buffer(capacity: 0)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.outbound = context.channel.allocator.buffer(capacity: 256)
        // Added to a channel already active: no channelActive will come.
        if context.channel.isActive { self.start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.failWrites(ChannelError.ioOnClosedChannel)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.inbound = .failed
        self.failWrites(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.unsentAcks = 0 }
        context.fireChannelWritabilityChanged()
    }

    /// The dialer's preface and both ends' SETTINGS (the TLS handler holds them until its
    /// handshake is done). Called once: from `handlerAdded` or from `channelActive`, never both.
    private func start(context: ChannelHandlerContext) {
        if self.isDialer { self.outbound.writeBytes(Self.preface) }
        let settings: [(UInt16, Int)] = [
            (0x2, 0),  // ENABLE_PUSH
            (0x3, self.limits.maxConcurrentStreams),
            (0x4, self.limits.streamWindow),
            (0x5, self.limits.maxFrameSize),
            (0x6, self.limits.maxHeaderListSize),
        ]
        FrameHeader(length: settings.count * 6, kind: .settings, streamID: .rootStream).write(to: &self.outbound)
        for (id, value) in settings {
            self.outbound.writeInteger(id)
            self.outbound.writeInteger(UInt32(value))
        }
        self.flushOutbound(context: context)
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.isFailed else { return }
        var incoming = self.unwrapInboundIn(data)
        guard var bytes = self.partial else {
            self.parse(&incoming, context: context)
            if incoming.readableBytes > 0, !self.isFailed {
                // The start of a frame, kept in a buffer of our own rather than as a slice that
                // would pin the TLS handler's read buffer.
                var kept = context.channel.allocator.buffer(capacity: Swift.max(incoming.readableBytes, 16 << 10))
                kept.writeBuffer(&incoming)
                self.partial = kept
            }
            return
        }
        // A frame that spans reads (a large DATA frame arrives over many TLS records) grows our
        // buffer in place: bytes are appended once, never copied again on every read.
        self.partial = nil
        bytes.writeBuffer(&incoming)
        self.parse(&bytes, context: context)
        if bytes.readableBytes > 0, !self.isFailed {
            bytes.discardReadBytes()
            self.partial = bytes
        }
    }

    /// Reads the preface and every whole frame from `bytes`; a partial frame stays in it.
    private func parse(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        if case .preface = self.inbound {
            guard bytes.readableBytes >= Self.preface.count else { return }
            guard bytes.readBytes(length: Self.preface.count) == Self.preface else {
                return self.fail(.protocolError, "no HTTP/2 connection preface", context: context)
            }
            self.inbound = .firstSettings
        }
        while bytes.readableBytes > 0 {
            if case .dataPayload(var data) = self.inbound {
                let part = bytes.readSlice(length: Swift.min(data.remaining, bytes.readableBytes))!
                data.remaining -= part.readableBytes
                self.inbound = data.remaining == 0 ? .frames : .dataPayload(data)
                self.deliverData(part, endStream: data.remaining == 0 && data.endStream, on: data.streamID, context: context)
                if self.isFailed { return }
                continue
            }
            guard let header = FrameHeader.peek(bytes) else { return }
            guard header.length <= self.limits.maxFrameSize else {
                return self.fail(
                    .frameSizeError,
                    "a frame of \(header.length) bytes (at most \(self.limits.maxFrameSize))",
                    context: context
                )
            }
            let whole = bytes.readableBytes >= FrameHeader.size + header.length
            if !whole, case .frames = self.inbound, header.kind == .data, !header.flags.contains(.padded) {
                bytes.moveReaderIndex(forwardBy: FrameHeader.size)
                guard self.acceptData(header, context: context) else { return }
                let endStream = header.flags.contains(.endStream)
                self.inbound = .dataPayload(DataPayload(streamID: header.streamID, remaining: header.length, endStream: endStream))
                continue
            }
            guard whole else { return }
            bytes.moveReaderIndex(forwardBy: FrameHeader.size)
            let payload = bytes.readSlice(length: header.length)!
            self.received(header, payload, context: context)
            if self.isFailed { return }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        // Answers to SETTINGS and PING, and DATA that waited for the window a WINDOW_UPDATE in
        // this burst opened: nothing behind us flushes those.
        if self.outbound.readableBytes > 0 || self.unflushed { self.flushOutbound(context: context) }
    }

    private var isFailed: Bool {
        if case .failed = self.inbound { return true }
        return false
    }

    private func received(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        switch self.inbound {
        case .continuation(var block):
            guard header.kind == .continuation, header.streamID == block.streamID else {
                return self.fail(.protocolError, "a header block interrupted by another frame", context: context)
            }
            block.frames += 1
            guard block.frames <= Self.maxContinuations, block.fragment.readableBytes + payload.readableBytes <= Self.maxHeaderBlock else {
                return self.fail(
                    .enhanceYourCalm,
                    "a header block over \(Self.maxHeaderBlock) bytes or \(Self.maxContinuations) frames",
                    context: context
                )
            }
            var payload = payload
            block.fragment.writeBuffer(&payload)
            if header.flags.contains(.endHeaders) {
                self.inbound = .frames
                self.receivedHeaderBlock(block.fragment, endStream: block.endStream, on: block.streamID, context: context)
            } else {
                self.inbound = .continuation(block)
            }
            return
        case .firstSettings:
            guard header.kind == .settings, !header.flags.contains(.ack) else {
                return self.fail(.protocolError, "the first frame is not SETTINGS", context: context)
            }
            self.inbound = .frames
        case .frames:
            break
        case .preface, .dataPayload, .failed:
            return  // the preface and DATA payloads are read by `parse`
        }
        switch header.kind {
        case .data: self.receivedData(header, payload, context: context)
        case .headers: self.receivedHeaders(header, payload, context: context)
        case .priority:
            guard header.length == 5, header.streamID != .rootStream else {
                return self.fail(.protocolError, "a malformed PRIORITY frame", context: context)
            }
        case .rstStream: self.receivedReset(header, payload, context: context)
        case .settings: self.receivedSettings(header, payload, context: context)
        case .pushPromise: self.fail(.protocolError, "PUSH_PROMISE, with push disabled", context: context)
        case .ping: self.receivedPing(header, payload, context: context)
        case .goAway: self.receivedGoAway(header, payload, context: context)
        case .windowUpdate: self.receivedWindowUpdate(header, payload, context: context)
        case .continuation: self.fail(.protocolError, "CONTINUATION outside a header block", context: context)
        case nil: break  // unknown frame types are ignored (RFC 9113 §4.1)
        }
    }

    /// Whether `id` belongs to the peer (odd from a client, even from a server).
    private func isPeers(_ id: HTTP2StreamID) -> Bool {
        self.isDialer ? id.isServerInitiated : id.isClientInitiated
    }

    /// No stream with this ID was opened yet.
    private func isIdle(_ id: HTTP2StreamID) -> Bool {
        self.isPeers(id) ? id > self.lastPeerStreamID : id > self.lastLocalStreamID
    }

    private func receivedData(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard let data = self.unpadded(header, payload, context: context), self.acceptData(header, context: context) else { return }
        self.deliverData(data, endStream: header.flags.contains(.endStream), on: header.streamID, context: context)
    }

    /// Checks a DATA frame's header and charges its whole length (padding included) to both
    /// windows; false after failing the connection.
    private func acceptData(_ header: FrameHeader, context: ChannelHandlerContext) -> Bool {
        let id = header.streamID
        guard id != .rootStream else {
            self.fail(.protocolError, "DATA on stream 0", context: context)
            return false
        }
        self.receiveWindow -= header.length
        guard self.receiveWindow >= 0 else {
            self.fail(.flowControlError, "DATA past the connection window", context: context)
            return false
        }
        if header.length == 0, !header.flags.contains(.endStream) {
            self.emptyDataFrames += 1
            guard self.emptyDataFrames <= self.limits.maxSequentialEmptyDataFrames else {
                self.fail(.enhanceYourCalm, "\(self.emptyDataFrames) empty DATA frames in a row", context: context)
                return false
            }
        } else {
            self.emptyDataFrames = 0
        }
        if var stream = self.streams[id] {
            guard !stream.remoteEnded else {
                self.fail(.streamClosed, "DATA on stream \(id) after its END_STREAM", context: context)
                return false
            }
            stream.receiveWindow -= header.length
            guard stream.receiveWindow >= 0 else {
                self.fail(.flowControlError, "DATA past the window of stream \(id)", context: context)
                return false
            }
            self.streams[id] = stream
        } else if self.isIdle(id) {
            self.fail(.protocolError, "DATA on stream \(id), which was never opened", context: context)
            return false
        }  // else a closed stream (reset while this was on its way): ignored, but it used the connection window
        if header.length > 0, self.receiveWindow <= TunnelTuning.connectionWindow / 2 {
            context.fireUserInboundEventTriggered(
                NIOHTTP2WindowUpdatedEvent(
                    streamID: .rootStream,
                    inboundWindowSize: self.receiveWindow,
                    outboundWindowSize: self.sendWindow
                )
            )
        }
        return true
    }

    /// Passes accepted DATA (a whole frame's payload, or the part of one that arrived) up, unless
    /// its stream closed meanwhile.
    private func deliverData(_ data: ByteBuffer, endStream: Bool, on id: HTTP2StreamID, context: ChannelHandlerContext) {
        guard var stream = self.streams[id] else { return }
        if endStream {
            stream.remoteEnded = true
            self.streams[id] = stream
        }
        context.fireChannelRead(
            self.wrapInboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(data), endStream: endStream))))
        )
        if endStream, stream.isDone { self.closed(id, reason: nil, context: context) }
    }

    /// The payload of a DATA or HEADERS frame without its padding (and without a HEADERS frame's
    /// priority fields); nil after failing the connection for a malformed frame.
    private func unpadded(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) -> ByteBuffer? {
        var payload = payload
        var padding = 0
        if header.flags.contains(.padded) {
            guard let length = payload.readInteger(as: UInt8.self) else {
                self.fail(.frameSizeError, "a padded frame without its pad length", context: context)
                return nil
            }
            padding = Int(length)
        }
        if header.kind == .headers, header.flags.contains(.priority) {
            guard payload.readableBytes >= 5 else {
                self.fail(.frameSizeError, "a HEADERS frame too short for its priority", context: context)
                return nil
            }
            payload.moveReaderIndex(forwardBy: 5)
        }
        guard payload.readableBytes >= padding else {
            self.fail(.protocolError, "more padding than frame", context: context)
            return nil
        }
        return padding == 0 ? payload : payload.getSlice(at: payload.readerIndex, length: payload.readableBytes - padding)
    }

    private func receivedHeaders(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard header.streamID != .rootStream else { return self.fail(.protocolError, "HEADERS on stream 0", context: context) }
        guard let fragment = self.unpadded(header, payload, context: context) else { return }
        let endStream = header.flags.contains(.endStream)
        self.emptyDataFrames = 0
        if header.flags.contains(.endHeaders) {
            self.receivedHeaderBlock(fragment, endStream: endStream, on: header.streamID, context: context)
        } else {
            var copy = context.channel.allocator.buffer(capacity: fragment.readableBytes)
            copy.writeImmutableBuffer(fragment)
            self.inbound = .continuation(HeaderBlock(streamID: header.streamID, endStream: endStream, fragment: copy, frames: 0))
        }
    }

    private func receivedHeaderBlock(_ block: ByteBuffer, endStream: Bool, on id: HTTP2StreamID, context: ChannelHandlerContext) {
        // Decoded whatever happens to the stream: the decoder's table must follow the peer's encoder.
        var block = block
        let headers: HPACKHeaders
        do {
            headers = try self.decoder.decodeHeaders(from: &block)
        } catch {
            return self.fail(.compressionError, "a header block that does not decode (\(error))", context: context)
        }
        let frame = HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: endStream)))
        if var stream = self.streams[id] {
            guard !stream.remoteEnded else {
                return self.fail(.streamClosed, "HEADERS on stream \(id) after its END_STREAM", context: context)
            }
            stream.remoteEnded = endStream
            self.streams[id] = stream
            context.fireChannelRead(self.wrapInboundOut(frame))
            if endStream, stream.isDone { self.closed(id, reason: nil, context: context) }
            return
        }
        guard self.isIdle(id) else { return }  // a closed stream: ignored
        guard !self.isDialer, self.isPeers(id) else {
            return self.fail(.protocolError, "HEADERS opening stream \(id), which the peer may not open", context: context)
        }
        self.lastPeerStreamID = id
        guard self.peerStreamCount < self.limits.maxConcurrentStreams else {
            guard self.countReset(context: context) else { return }
            self.writeFrame(HTTP2Frame(streamID: id, payload: .rstStream(.refusedStream)), promise: nil, context: context)
            return
        }
        var stream = FrameStream(sendWindow: self.peerInitialWindow, receiveWindow: self.limits.streamWindow, openedByPeer: true)
        stream.remoteEnded = endStream
        self.streams[id] = stream
        self.peerStreamCount += 1
        context.fireChannelRead(self.wrapInboundOut(frame))
    }

    private func receivedReset(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        let id = header.streamID
        guard header.length == 4, id != .rootStream, let code = payload.getInteger(at: payload.readerIndex, as: UInt32.self) else {
            return self.fail(.frameSizeError, "a malformed RST_STREAM frame", context: context)
        }
        guard !self.isIdle(id) else {
            return self.fail(.protocolError, "RST_STREAM on stream \(id), which was never opened", context: context)
        }
        guard self.countReset(context: context), self.streams[id] != nil else { return }
        let reason = HTTP2ErrorCode(networkCode: Int(code))
        context.fireChannelRead(self.wrapInboundOut(HTTP2Frame(streamID: id, payload: .rstStream(reason))))
        self.closed(id, reason: reason, context: context)
    }

    /// Counts a reset the peer sent or caused (a refused stream); false after failing the
    /// connection for a flood of them.
    private func countReset(context: ChannelHandlerContext) -> Bool {
        guard self.resets.allow(now: .now()) else {
            self.fail(.enhanceYourCalm, "more than \(self.resets.limit) streams reset within \(self.resets.window.text)", context: context)
            return false
        }
        return true
    }

    private func receivedSettings(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard header.streamID == .rootStream else { return self.fail(.protocolError, "SETTINGS on a stream", context: context) }
        if header.flags.contains(.ack) {
            guard header.length == 0 else {
                return self.fail(.frameSizeError, "a SETTINGS acknowledgement with a payload", context: context)
            }
            return
        }
        guard header.length % 6 == 0 else {
            return self.fail(.frameSizeError, "a SETTINGS frame of \(header.length) bytes", context: context)
        }
        var payload = payload
        while let id = payload.readInteger(as: UInt16.self), let value = payload.readInteger(as: UInt32.self) {
            let value = Int(value)
            switch id {
            case 0x1:  // HEADER_TABLE_SIZE: our encoder's table may not exceed it
                do { try self.encoder.setDynamicTableSize(min(value, HPACKEncoder.defaultDynamicTableSize)) } catch {
                    return self.fail(.compressionError, "HEADER_TABLE_SIZE \(value) refused by HPACK (\(error))", context: context)
                }
            case 0x2:
                guard value <= 1 else { return self.fail(.protocolError, "ENABLE_PUSH \(value)", context: context) }
            case 0x4:
                guard value <= Self.maxWindow else { return self.fail(.flowControlError, "INITIAL_WINDOW_SIZE \(value)", context: context) }
                let change = value - self.peerInitialWindow
                self.peerInitialWindow = value
                for id in self.streams.keys {
                    self.streams[id]!.sendWindow += change
                    guard self.streams[id]!.sendWindow <= Self.maxWindow else {
                        return self.fail(.flowControlError, "INITIAL_WINDOW_SIZE \(value) overflows stream \(id)", context: context)
                    }
                }
                if change > 0 { self.sendBlocked(context: context) }
            case 0x5:
                guard (1 << 14)...((1 << 24) - 1) ~= value else {
                    return self.fail(.protocolError, "MAX_FRAME_SIZE \(value)", context: context)
                }
                self.peerMaxFrameSize = value
            default:
                // MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE bound what the peer takes, and
                // a tunnel's few small header blocks stay far below; unknown ones are ignored.
                break
            }
        }
        self.writeAck(FrameHeader(length: 0, kind: .settings, flags: .ack, streamID: .rootStream), nil, context: context)
    }

    private func receivedPing(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard header.length == 8, header.streamID == .rootStream, let value = payload.getInteger(at: payload.readerIndex, as: UInt64.self)
        else {
            return self.fail(.frameSizeError, "a malformed PING frame", context: context)
        }
        if header.flags.contains(.ack) {
            context.fireChannelRead(
                self.wrapInboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: value), ack: true)))
            )
        } else {
            self.writeAck(FrameHeader(length: 8, kind: .ping, flags: .ack, streamID: .rootStream), value, context: context)
        }
    }

    /// Answers a SETTINGS or PING frame; a peer that sends them faster than it reads the answers is flooding.
    private func writeAck(_ header: FrameHeader, _ ping: UInt64?, context: ChannelHandlerContext) {
        if !context.channel.isWritable {
            self.unsentAcks += 1
            guard self.unsentAcks <= self.limits.maxUnsentAcks else {
                return self.fail(
                    .enhanceYourCalm,
                    "\(self.unsentAcks) SETTINGS and PING frames sent without reading the answers",
                    context: context
                )
            }
        }
        header.write(to: &self.outbound)
        if let ping { self.outbound.writeInteger(ping) }
    }

    private func receivedGoAway(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        var payload = payload
        guard header.streamID == .rootStream, let last = payload.readInteger(as: UInt32.self),
            let code = payload.readInteger(as: UInt32.self)
        else {
            return self.fail(.frameSizeError, "a malformed GOAWAY frame", context: context)
        }
        let lastStreamID = HTTP2StreamID(Int32(bitPattern: last & 0x7fff_ffff))
        let opaque = payload.readableBytes > 0 ? payload : nil
        context.fireChannelRead(
            self.wrapInboundOut(
                HTTP2Frame(
                    streamID: .rootStream,
                    payload: .goAway(lastStreamID: lastStreamID, errorCode: HTTP2ErrorCode(networkCode: Int(code)), opaqueData: opaque)
                )
            )
        )
        // Our streams the peer never processed.
        for id in self.streams.keys where !self.isPeers(id) && id > lastStreamID {
            self.closed(id, reason: .refusedStream, context: context)
        }
    }

    private func receivedWindowUpdate(_ header: FrameHeader, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        let id = header.streamID
        guard header.length == 4, let raw = payload.getInteger(at: payload.readerIndex, as: UInt32.self) else {
            return self.fail(.frameSizeError, "a malformed WINDOW_UPDATE frame", context: context)
        }
        let increment = Int(raw & 0x7fff_ffff)
        guard increment > 0 else { return self.fail(.protocolError, "WINDOW_UPDATE of 0 on stream \(id)", context: context) }
        if id == .rootStream {
            self.sendWindow += increment
            guard self.sendWindow <= Self.maxWindow else {
                return self.fail(.flowControlError, "WINDOW_UPDATE past 2^31-1 on the connection", context: context)
            }
            return self.sendBlocked(context: context)
        }
        guard var stream = self.streams[id] else {
            if self.isIdle(id) { self.fail(.protocolError, "WINDOW_UPDATE on stream \(id), which was never opened", context: context) }
            return
        }
        stream.sendWindow += increment
        guard stream.sendWindow <= Self.maxWindow else {
            return self.fail(.flowControlError, "WINDOW_UPDATE past 2^31-1 on stream \(id)", context: context)
        }
        self.streams[id] = stream
        context.fireChannelRead(self.wrapInboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment))))
        if !stream.pending.isEmpty { self.send(pendingOf: id, context: context) }
    }

    // MARK: Writing

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !self.isFailed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        self.writeFrame(self.unwrapOutboundIn(data), promise: promise, context: context)
    }

    func flush(context: ChannelHandlerContext) {
        self.flushOutbound(context: context)
    }

    private func writeFrame(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        let id = frame.streamID
        switch frame.payload {
        case .data(let data):
            guard case .byteBuffer(let bytes) = data.data else {
                promise?.fail(ChannelError.operationUnsupported)
                return
            }
            guard var stream = self.streams[id], !stream.localEnded else {
                promise?.fail(NIOHTTP2Errors.noSuchStream(streamID: id))
                return
            }
            let length = bytes.readableBytes
            // An empty frame (a stream's END_STREAM) takes no window, even one a SETTINGS made negative.
            if stream.pending.isEmpty, length == 0 || length <= min(stream.sendWindow, self.sendWindow, self.peerMaxFrameSize) {
                stream.sendWindow -= length
                self.sendWindow -= length
                stream.localEnded = data.endStream
                self.streams[id] = stream
                self.appendData(bytes, endStream: data.endStream, on: id, promise: promise, context: context)
                if stream.isDone { self.closed(id, reason: nil, context: context) }
            } else {
                stream.pending.append(FrameStream.PendingData(bytes: bytes, endStream: data.endStream, promise: promise))
                self.streams[id] = stream
                self.send(pendingOf: id, context: context)
            }
        case .headers(let headers):
            self.writeHeaders(headers.headers, endStream: headers.endStream, on: id, promise: promise, context: context)
        case .rstStream(let code):
            self.append(FrameHeader(length: 4, kind: .rstStream, streamID: id), promise: promise) {
                $0.writeInteger(UInt32(code.networkCode))
            }
            if self.streams[id] != nil { self.closed(id, reason: code, context: context) }
        case .windowUpdate(let increment):
            if id == .rootStream {
                guard self.receiveWindow + increment <= Self.maxWindow else {
                    promise?.fail(NIOHTTP2Errors.flowControlViolation())
                    return
                }
                self.receiveWindow += increment
            } else {
                guard var stream = self.streams[id], !stream.remoteEnded else {
                    promise?.succeed(())
                    return
                }  // nothing more comes
                guard stream.receiveWindow + increment <= Self.maxWindow else {
                    promise?.fail(NIOHTTP2Errors.flowControlViolation())
                    return
                }
                stream.receiveWindow += increment
                self.streams[id] = stream
            }
            self.append(FrameHeader(length: 4, kind: .windowUpdate, streamID: id), promise: promise) { $0.writeInteger(UInt32(increment)) }
        case .ping(let data, let ack):
            self.append(FrameHeader(length: 8, kind: .ping, flags: ack ? .ack : [], streamID: .rootStream), promise: promise) {
                $0.writeInteger(data.integer)
            }
        case .goAway(let last, let code, let opaque):
            let extra = opaque?.readableBytes ?? 0
            self.append(FrameHeader(length: 8 + extra, kind: .goAway, streamID: .rootStream), promise: promise) { buffer in
                buffer.writeInteger(UInt32(Int32(last)))
                buffer.writeInteger(UInt32(code.networkCode))
                if let opaque { buffer.writeImmutableBuffer(opaque) }
            }
        case .settings, .priority, .pushPromise, .alternativeService, .origin:
            promise?.fail(ChannelError.operationUnsupported)
        }
    }

    private func writeHeaders(
        _ headers: HPACKHeaders,
        endStream: Bool,
        on id: HTTP2StreamID,
        promise: EventLoopPromise<Void>?,
        context: ChannelHandlerContext
    ) {
        var stream: FrameStream
        if let existing = self.streams[id] {
            guard !existing.localEnded, existing.pending.isEmpty else {
                promise?.fail(NIOHTTP2Errors.noSuchStream(streamID: id))
                return
            }
            stream = existing
        } else {
            guard self.isDialer, !self.isPeers(id), id > self.lastLocalStreamID else {
                promise?.fail(NIOHTTP2Errors.noSuchStream(streamID: id))
                return
            }
            self.lastLocalStreamID = id
            stream = FrameStream(sendWindow: self.peerInitialWindow, receiveWindow: self.limits.streamWindow, openedByPeer: false)
        }
        let start = self.outbound.writerIndex
        FrameHeader(length: 0, kind: .headers, flags: endStream ? [.endHeaders, .endStream] : .endHeaders, streamID: id).write(
            to: &self.outbound
        )
        do {
            try self.encoder.encode(headers: headers, to: &self.outbound)
        } catch {
            // The encoder's table may now differ from what the peer's decoder holds.
            promise?.fail(error)
            return self.fail(.compressionError, "cannot encode our own headers (\(error))", context: context)
        }
        let length = self.outbound.writerIndex - start - FrameHeader.size
        guard length <= self.peerMaxFrameSize else {
            promise?.fail(NIOHTTP2Errors.excessivelyLargeHeaderBlock())
            return self.fail(.internalError, "a header block of \(length) bytes needs CONTINUATION", context: context)
        }
        FrameHeader.setLength(length, at: start, in: &self.outbound)
        if let promise { self.outboundPromises.append(promise) }
        stream.localEnded = endStream
        self.streams[id] = stream
        if stream.isDone { self.closed(id, reason: nil, context: context) }
    }

    /// DATA that fits both windows: its header, and its payload copied next to it when small.
    private func appendData(
        _ bytes: ByteBuffer,
        endStream: Bool,
        on id: HTTP2StreamID,
        promise: EventLoopPromise<Void>?,
        context: ChannelHandlerContext
    ) {
        FrameHeader(length: bytes.readableBytes, kind: .data, flags: endStream ? .endStream : [], streamID: id).write(to: &self.outbound)
        if bytes.readableBytes <= Self.copyLimit {
            self.outbound.writeImmutableBuffer(bytes)
            if let promise { self.outboundPromises.append(promise) }
        } else {
            self.writeOutbound(context: context)
            context.write(self.wrapOutboundOut(bytes), promise: promise)
            self.unflushed = true
        }
    }

    /// A frame whose payload `body` writes.
    private func append(_ header: FrameHeader, promise: EventLoopPromise<Void>?, body: (inout ByteBuffer) -> Void) {
        header.write(to: &self.outbound)
        body(&self.outbound)
        if let promise { self.outboundPromises.append(promise) }
    }

    /// Sends what waits on stream `id` as far as the windows allow.
    private func send(pendingOf id: HTTP2StreamID, context: ChannelHandlerContext) {
        guard var stream = self.streams[id] else { return }
        while var first = stream.pending.first {
            let room = min(stream.sendWindow, self.sendWindow, self.peerMaxFrameSize)
            let length = first.bytes.readableBytes
            if length > 0, length > room {
                guard room > 0 else {
                    if !self.blocked.contains(id) { self.blocked.append(id) }
                    break
                }
                let part = first.bytes.readSlice(length: room)!
                stream.pending[0] = first
                stream.sendWindow -= room
                self.sendWindow -= room
                self.appendData(part, endStream: false, on: id, promise: nil, context: context)
                continue
            }
            stream.pending.removeFirst()
            stream.sendWindow -= length
            self.sendWindow -= length
            stream.localEnded = first.endStream
            self.appendData(first.bytes, endStream: first.endStream, on: id, promise: first.promise, context: context)
        }
        self.streams[id] = stream
        if stream.isDone { self.closed(id, reason: nil, context: context) }
    }

    /// The connection window (or every stream's) grew: streams that waited go on, in order.
    private func sendBlocked(context: ChannelHandlerContext) {
        guard !self.blocked.isEmpty else { return }
        let waiting = self.blocked
        self.blocked.removeAll()
        for id in waiting { self.send(pendingOf: id, context: context) }
    }

    /// Hands what was written since the last call to the TLS handler, as one buffer.
    private func writeOutbound(context: ChannelHandlerContext) {
        guard self.outbound.readableBytes > 0 else { return }
        let promise: EventLoopPromise<Void>?
        switch self.outboundPromises.count {
        case 0: promise = nil
        case 1: promise = self.outboundPromises[0]
        default:
            let all = self.outboundPromises
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for promise in all { promise.completeWith(result) }
            }
            promise = combined
        }
        self.outboundPromises.removeAll(keepingCapacity: true)
        context.write(self.wrapOutboundOut(self.outbound), promise: promise)
        self.outbound.clear()
        self.unflushed = true
    }

    private func flushOutbound(context: ChannelHandlerContext) {
        self.writeOutbound(context: context)
        context.flush()
        self.unflushed = false
    }

    // MARK: Stream ends and failures

    /// Stream `id` is over: forget it, fail what still waited on it, tell the handlers behind.
    private func closed(_ id: HTTP2StreamID, reason: HTTP2ErrorCode?, context: ChannelHandlerContext) {
        guard let stream = self.streams.removeValue(forKey: id) else { return }
        if stream.openedByPeer { self.peerStreamCount -= 1 }
        for waiting in stream.pending {
            waiting.promise?.fail(NIOHTTP2Errors.streamClosed(streamID: id, errorCode: reason ?? .cancel))
        }
        context.fireUserInboundEventTriggered(StreamClosedEvent(streamID: id, reason: reason))
    }

    /// A connection error: GOAWAY with `code`, then the tunnel closes (`TunnelStreams` logs why).
    private func fail(_ code: HTTP2ErrorCode, _ reason: String, context: ChannelHandlerContext) {
        guard !self.isFailed else { return }
        self.inbound = .failed
        self.partial = nil
        self.append(FrameHeader(length: 8, kind: .goAway, streamID: .rootStream), promise: nil) { buffer in
            buffer.writeInteger(UInt32(Int32(self.lastPeerStreamID)))
            buffer.writeInteger(UInt32(code.networkCode))
        }
        self.flushOutbound(context: context)
        context.fireErrorCaught(TunnelProtocolError(code: code, reason: reason))
        context.close(promise: nil)
    }

    private func failWrites(_ error: Error) {
        let promises = self.outboundPromises
        self.outboundPromises.removeAll()
        self.outbound.clear()
        let waiting = self.streams
        self.streams.removeAll()
        self.blocked.removeAll()
        for promise in promises { promise.fail(error) }
        for (_, stream) in waiting {
            for waiting in stream.pending { waiting.promise?.fail(error) }
        }
    }
}
