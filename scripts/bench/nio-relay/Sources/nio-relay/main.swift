// nio-relay --listen HOST:PORT --connect HOST:PORT [--tls-listen PKI:NODE] [--tls-connect PKI:NODE]
//
// Accepts TCP connections and joins each to a new connection to the target, byte for byte, on one
// event loop (meshd keeps a tunnel and its streams' sockets on one loop too). What it does per
// message is what any SwiftNIO relay must do: one read into a pooled buffer, one pass through a
// one-handler pipeline, one write and flush on the partner channel. Backpressure: a side reads
// only while its partner is writable. Half-close is passed on; everything else closes both.
//
// `--tls-listen PKI:NODE` / `--tls-connect PKI:NODE`: that side speaks TLS through meshd's own
// handler (`OpenSSLHandler`, mutual authentication, as a mesh peer), with NODE's certificate from a
// `meshctl pki` directory PKI (ca.pem, NODE.pem, NODE.key, crl.pem); any node of that mesh is let in.
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

    static func pair() -> (Glue, Glue) {
        let a = Glue()
        let b = Glue()
        a.partner = b
        b.partner = a
        return (a, b)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    private func partnerWrite(_ data: NIOAny) { self.context?.write(data, promise: nil) }
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
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.partner?.partnerWrite(data) }
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

func endpoint(_ text: String) -> (String, Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
        text.hasPrefix("127.")
    else {
        fatalError("nio-relay: want a loopback HOST:PORT (127.x.x.x:port), got '\(text)'")
    }
    return (String(text[..<colon]), port)
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

var listen: (String, Int)?
var target: (String, Int)?
var tlsListen: TLSSide?
var tlsConnect: TLSSide?
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fatalError("nio-relay: \(flag) needs a value") }
    switch flag {
    case "--listen": listen = endpoint(value)
    case "--connect": target = endpoint(value)
    case "--tls-listen": tlsListen = TLSSide(value, role: .server)
    case "--tls-connect": tlsConnect = TLSSide(value, role: .client)
    default: fatalError("nio-relay: unknown argument \(flag); usage: nio-relay --listen HOST:PORT --connect HOST:PORT")
    }
}
guard let listen, let target else { fatalError("usage: nio-relay --listen HOST:PORT --connect HOST:PORT") }

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.allowRemoteHalfClosure, value: true)
    .childChannelOption(.autoRead, value: true)
    .childChannelInitializer { client in
        let (inbound, outbound) = Glue.pair()
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
            .connect(to: try! SocketAddress(ipAddress: target.0, port: target.1))
            .map { _ in () }
    }
    .bind(host: listen.0, port: listen.1)
    .wait()
print(
    "nio-relay: \(listen.0):\(listen.1)\(tlsListen == nil ? "" : " (TLS)") -> \(target.0):\(target.1)\(tlsConnect == nil ? "" : " (TLS)")"
)
try server.closeFuture.wait()
