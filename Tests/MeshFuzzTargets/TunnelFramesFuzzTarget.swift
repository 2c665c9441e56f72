import Foundation
import Logging
import MeshConfig
import MeshTLS
import MeshTunnel
import NIOCore

/// Feeds arbitrary HTTP/2 frames from an authenticated peer to the accepting side of a tunnel
/// (`TunnelFraming.acceptingSide`: `TunnelFrameHandler` and `TunnelStreams`), after the client
/// preface and an empty SETTINGS frame, so that the fuzzer spends its effort on frames: CONNECTs,
/// DATA on unknown or closed streams, RST_STREAM floods, window overflows, CONTINUATION floods,
/// control-stream lines. Nothing may crash or hang; a peer that breaks the protocol gets a GOAWAY
/// and its tunnel is closed. The embedded loop cannot open sockets, so a CONNECT that is allowed
/// ends in a 502 (target unreachable), which the real connect path would also answer on failure.
///
/// The first input byte (see `FuzzInput`) picks: bit 0 the peer may use the service `echo` (else
/// every CONNECT to it is refused 403), bit 1 the peer ends its input after the bytes.
public enum TunnelFramesFuzzTarget {
    private static let logger = Logger(label: "fuzz.frames", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The client connection preface and an empty SETTINGS frame: what every peer sends first.
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]

    /// Nil for an empty input.
    public static func run(_ bytes: UnsafeRawBufferPointer) -> ChannelTranscript? {
        guard let input = FuzzInput(bytes) else { return nil }
        let echo = ServiceSettings(
            name: "echo",
            on: ["db1": .tcp(host: "127.0.0.1", port: 9)],
            allow: .nodes(input.option(0) ? ["app1"] : [])
        )
        let handlers = TunnelFraming.acceptingSide(
            node: "db1",
            services: ["echo": echo],
            maxStreamsPerPeer: 64,
            logger: Self.logger
        )
        do {
            let peer = try EmbeddedPeer(handlers: handlers)
            peer.channel.pipeline.fireUserInboundEventTriggered(
                TLSHandshakeCompleted(
                    peer: MeshIdentity(mesh: "fuzz", node: "app1"),
                    peerCertificateNotAfter: .distantFuture,
                    alpn: "h2"
                )
            )
            var first = peer.channel.allocator.buffer(capacity: Self.preface.count)
            first.writeBytes(Self.preface)
            _ = try? peer.channel.writeInbound(first)
            return peer.play(input, endInput: input.option(1))
        } catch {
            fatalError("fuzz: cannot set up the EmbeddedChannel: \(error)")
        }
    }
}
