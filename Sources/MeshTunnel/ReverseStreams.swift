import NIOCore
import NIOHPACK

/// Streams towards the dialing side of a tunnel. HTTP/2 lets only the client (the dialer) open
/// streams, so the accepting side asks for them: the dialer keeps one control stream open to the
/// acceptor (`:authority` `tunnelmesh.control`); on it the acceptor sends `open <id> <service>`;
/// the dialer checks access and connects to the service like for any stream, then opens a stream
/// `tunnelmesh.reverse` carrying `tm-reverse-id: <id>`, which the acceptor joins to the waiting
/// client. A refusal travels back as `refuse <id> <status>`. Both names contain a '.', which no
/// service name may, so they cannot collide with a declared service. Either side may also send a
/// `PeerNote` line on the control stream at any time. `TunnelStreams` speaks this protocol;
/// callers only ask for "a stream to service S".
enum ReverseStreams {
    static let controlAuthority = "tunnelmesh.control"
    static let reverseAuthority = "tunnelmesh.reverse"
    static let idHeader = "tm-reverse-id"
    /// A line longer than this is a broken or hostile peer.
    static let maxLine = PeerNote.maxLine
    /// How long a request made right after the handshake waits for the dialer's control stream.
    static let controlWait = TimeAmount.seconds(1)

    static func openLine(id: UInt64, service: String) -> String { "open \(id) \(service)\n" }
    static func refuseLine(id: UInt64, status: Int) -> String { "refuse \(id) \(status)\n" }

    /// The CONNECT of the stream that answers request `id`.
    static func headers(id: UInt64) -> HPACKHeaders {
        [":method": "CONNECT", ":authority": Self.reverseAuthority, Self.idHeader: String(id)]
    }
}
