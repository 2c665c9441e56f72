// nio-relay --listen HOST:PORT --connect HOST:PORT [--tls-listen PKI:NODE] [--tls-connect PKI:NODE] [--frame]
//
// Accepts TCP connections and joins each to a new connection to the target, byte for byte, on one
// event loop (meshd keeps a tunnel and its streams' sockets on one loop too). What it does per
// message is what any SwiftNIO relay must do: one read into a pooled buffer, one pass through a
// one-handler pipeline, one write and flush on the partner channel. Backpressure: a side reads
// only while its partner is writable. Half-close is passed on; everything else closes both.
//
// `--frame`: the TLS side (or sides) also carries HTTP/2 DATA frames, framed and unframed by hand
// with no HTTP/2 state: the least any framing on the tunnel can cost.
//
// `--tls-listen PKI:NODE` / `--tls-connect PKI:NODE`: that side speaks TLS through meshd's own
// handler (`OpenSSLHandler`, mutual authentication, as a mesh peer), with NODE's certificate from a
// `meshctl pki` directory PKI (ca.pem, NODE.pem, NODE.key, crl.pem); the peer must be n1 or n2 of
// the same mesh (the two nodes the bench scripts issue).
import MeshConfig
import MeshTLS
import NIOCore
import NIOPosix

/// One side of a relayed connection; `partner` is the other side's handler.
final class Glue: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: Glue?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// This side carries HTTP/2 DATA frames (`--frame`): what is written to it is framed, what it
    /// reads is unframed; `framesIn` holds a frame that has not fully arrived yet.
    private let framed: Bool
    private var framesIn = ByteBuffer()

    private init(framed: Bool) { self.framed = framed }

    /// The client's side and the target's side of one relayed connection.
    static func pair(framedClient: Bool, framedTarget: Bool) -> (Glue, Glue) {
        let a = Glue(framed: framedClient)
        let b = Glue(framed: framedTarget)
        a.partner = b
        b.partner = a
        return (a, b)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    private func partnerWrite(_ bytes: ByteBuffer) {
        guard let context else { return }
        guard self.framed else { return context.write(self.wrapOutboundOut(bytes), promise: nil) }
        // One buffer per frame, header and payload together, as a lean tunnel would write it: a
        // DATA frame (type 0, no flags) on stream 1.
        var frame = context.channel.allocator.buffer(capacity: 9 + bytes.readableBytes)
        frame.writeInteger(UInt8(truncatingIfNeeded: bytes.readableBytes >> 16))
        frame.writeInteger(UInt16(truncatingIfNeeded: bytes.readableBytes))
        frame.writeInteger(UInt8(0))
        frame.writeInteger(UInt8(0))
        frame.writeInteger(UInt32(1))
        frame.writeImmutableBuffer(bytes)
        context.write(self.wrapOutboundOut(frame), promise: nil)
    }
    private func partnerFlush() { self.context?.flush() }
    private var partnerWritable: Bool { self.context?.channel.isWritable ?? false }
    private func partnerEnd() { self.context?.close(mode: .output, promise: nil) }
    private func partnerClose() { self.context?.close(promise: nil) }
    private func partnerBecameWritable() {
        if self.pendingRead {
            self.pendingRead = false
            self.context?.read()
        }
    }

    // The connection to the target is made after the client's was accepted: the client's side
    // waits (`pendingRead`) until it is up.
    func channelActive(context: ChannelHandlerContext) {
        self.partner?.partnerBecameWritable()
        context.fireChannelActive()
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        guard self.framed else {
            self.partner?.partnerWrite(bytes)
            return
        }
        // Whole frames are sliced out of the read itself; only a partial frame is copied, to wait
        // for the rest.
        var input = bytes
        if self.framesIn.readableBytes > 0 {
            self.framesIn.writeImmutableBuffer(bytes)
            input = self.framesIn
        }
        while let high = input.getInteger(at: input.readerIndex, as: UInt8.self),
            let low = input.getInteger(at: input.readerIndex + 1, as: UInt16.self),
            input.readableBytes >= 9 + (Int(high) << 16 | Int(low))
        {
            input.moveReaderIndex(forwardBy: 9)
            self.partner?.partnerWrite(input.readSlice(length: Int(high) << 16 | Int(low))!)
        }
        self.framesIn.clear()
        if input.readableBytes > 0 { self.framesIn.writeImmutableBuffer(input) }
    }
    func channelReadComplete(context: ChannelHandlerContext) { self.partner?.partnerFlush() }
    func channelInactive(context: ChannelHandlerContext) { self.partner?.partnerClose() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { self.partner?.partnerEnd() }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }
    func read(context: ChannelHandlerContext) {
        if self.partner?.partnerWritable ?? false { context.read() } else { self.pendingRead = true }
    }
}

/// A loopback address: the relays never reach beyond 127.0.0.0/8.
func endpoint(_ text: String) -> SocketAddress {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
        text.hasPrefix("127."), let address = try? SocketAddress(ipAddress: String(text[..<colon]), port: port)
    else {
        fatalError("nio-relay: want a loopback IPv4 address and port like 127.0.0.1:7000, got '\(text)'")
    }
    return address
}

/// One side's TLS: a context for `role` with NODE's files, and who may be at the other end.
struct TLSSide: @unchecked Sendable {
    let context: TLSContext
    let policy: PeerPolicy

    init(_ text: String, role: TLSContext.Role) {
        guard let colon = text.lastIndex(of: ":") else { fatalError("nio-relay: want PKI:NODE, got '\(text)'") }
        let dir = String(text[..<colon])
        let node = String(text[text.index(after: colon)...])
        let files = TLSFiles(ca: "\(dir)/ca.pem", cert: "\(dir)/\(node).pem", key: "\(dir)/\(node).key", crl: "\(dir)/crl.pem")
        do {
            self.context = try TLSContext(role: role, files: files)
        } catch {
            fatalError("nio-relay: TLS with \(dir) for \(node): \(error)")
        }
        guard let mesh = self.context.localIdentity?.mesh else { fatalError("nio-relay: \(node)'s certificate names no mesh") }
        self.policy = .declaredNode(mesh: mesh, nodes: ["n1", "n2"])
    }

    func handler() -> OpenSSLHandler { OpenSSLHandler(context: self.context, policy: self.policy) }
}

let usage = "usage: nio-relay --listen HOST:PORT --connect HOST:PORT [--tls-listen PKI:NODE] [--tls-connect PKI:NODE] [--frame]"
var listen: SocketAddress?
var target: SocketAddress?
var tlsListen: TLSSide?
var tlsConnect: TLSSide?
var frame = false
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    if flag == "--frame" {
        frame = true
        continue
    }
    guard let value = arguments.popFirst() else { fatalError("nio-relay: \(flag) needs a value") }
    switch flag {
    case "--listen": listen = endpoint(value)
    case "--connect": target = endpoint(value)
    case "--tls-listen": tlsListen = TLSSide(value, role: .server)
    case "--tls-connect": tlsConnect = TLSSide(value, role: .client)
    default: fatalError("nio-relay: unknown argument \(flag); \(usage)")
    }
}
guard let listen, let target else { fatalError("nio-relay: --listen and --connect are both needed; \(usage)") }

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.allowRemoteHalfClosure, value: true)
    .childChannelOption(.autoRead, value: true)
    .childChannelInitializer { client in
        let (inbound, outbound) = Glue.pair(framedClient: frame && tlsListen != nil, framedTarget: frame && tlsConnect != nil)
        do {
            if let tlsListen { try client.pipeline.syncOperations.addHandler(tlsListen.handler()) }
            try client.pipeline.syncOperations.addHandler(inbound)
        } catch {
            return client.eventLoop.makeFailedFuture(error)
        }
        return ClientBootstrap(group: client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsConnect { try channel.pipeline.syncOperations.addHandler(tlsConnect.handler()) }
                    try channel.pipeline.syncOperations.addHandler(outbound)
                }
            }
            // An address, not a name: no resolver (and no thread hop) per connection, as in meshd.
            .connect(to: target)
            .map { _ in () }
    }
    .bind(to: listen)
    .wait()
print(
    "nio-relay: \(listen)\(tlsListen == nil ? "" : " (TLS)") -> \(target)\(tlsConnect == nil ? "" : " (TLS)")"
)
try server.closeFuture.wait()
