import MeshConfig
import MeshTLS
import NIOCore

/// Feeds arbitrary bytes, as if from the network, to an `OpenSSLHandler` in an EmbeddedChannel with
/// real contexts from `FuzzPKI`: TLS records, handshake messages, alerts, garbage and non-TLS
/// clients, cut into reads of any size, through the handler's state machine and OpenSSL.
///
/// The first input byte (see `FuzzInput`) picks, in bits 0-1, the side: 0 a mesh node accepting a
/// peer, 1 a mesh node that dialed `bravo` (its ClientHello is written before the bytes arrive),
/// 2 a balancer front door's server for any client, 3 the same requiring ALPN (direct TLS). Bit 2
/// has the application write and flush data before the bytes arrive (held until the handshake);
/// bit 3 ends the peer's input after them.
public enum TLSFuzzTarget {
    /// Nil for an empty input.
    public static func run(_ bytes: UnsafeRawBufferPointer) -> ChannelTranscript? {
        guard let input = FuzzInput(bytes) else { return nil }
        let pki = FuzzPKI.shared
        let handler: OpenSSLHandler
        switch input.options & 0b11 {
        case 0:
            handler = OpenSSLHandler(
                context: pki.meshServer,
                policy: .declaredNode(mesh: FuzzPKI.mesh, nodes: FuzzPKI.nodes)
            )
        case 1:
            handler = OpenSSLHandler(
                context: pki.meshClient,
                policy: .exactly(MeshIdentity(mesh: FuzzPKI.mesh, node: "bravo"))
            )
        case 2:
            handler = OpenSSLHandler(anyClientContext: pki.anyClientServer)
        default:
            handler = OpenSSLHandler(anyClientContext: pki.anyClientServer, requireALPN: true)
        }
        do {
            let peer = try EmbeddedPeer(handlers: [handler])
            if input.option(2) {
                peer.channel.writeAndFlush(peer.channel.allocator.buffer(string: "application data"), promise: nil)
            }
            return peer.play(input, endInput: input.option(3))
        } catch {
            fatalError("fuzz: cannot set up the EmbeddedChannel: \(error)")
        }
    }
}
