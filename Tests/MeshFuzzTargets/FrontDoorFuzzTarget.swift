import Logging
import MeshBalancer
import MeshTLS
import NIOCore

/// Feeds arbitrary client bytes to a balancer's `FrontDoorHandler` in an EmbeddedChannel: first
/// packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest), their framing across reads,
/// and with TLS on, the hand-over to the TLS handler and the front door behind it.
///
/// The first input byte (see `FuzzInput`) picks: bit 0 the balancer has a TLS certificate, bit 1
/// the router refuses the session, bit 2 the bridge fails, bit 3 the client ends its input after
/// the bytes. The session only records what it was asked: it joins nothing to the pipeline, so
/// whatever the front door passes on reaches the channel's end.
public enum FrontDoorFuzzTarget {
    /// What the front door did with one input.
    public struct Outcome: Sendable, Equatable {
        public var transcript: ChannelTranscript
        /// A StartupMessage reached the router.
        public var routed: Bool
        /// A CancelRequest reached the session.
        public var cancelled: Bool
    }

    /// The front door's session: records what it was asked. Called on the EmbeddedChannel's loop,
    /// the only thread here.
    private final class RecordingSession: FrontDoorSession {
        var routed = false
        var cancelled = false
        let refuse: Bool
        let bridgeFails: Bool

        init(refuse: Bool, bridgeFails: Bool) {
            self.refuse = refuse
            self.bridgeFails = bridgeFails
        }

        func start(_ message: StartupMessage) -> Result<FrontDoorHandler.Route, ErrorResponse> {
            self.routed = true
            if self.refuse { return .failure(ErrorResponse(code: .connectionFailure, message: "fuzz: refused")) }
            if self.bridgeFails { return .failure(ErrorResponse(code: .connectionFailure, message: "fuzz: unreachable")) }
            return .success((service: "postgres", node: "db1"))
        }

        func cancel(_ key: BackendKeyData) {
            self.cancelled = true
        }
    }

    private static let logger = Logger(label: "fuzz.frontdoor", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Nil for an empty input.
    public static func run(_ bytes: UnsafeRawBufferPointer) -> Outcome? {
        guard let input = FuzzInput(bytes) else { return nil }
        let session = RecordingSession(refuse: input.option(1), bridgeFails: input.option(2))
        let handler = FrontDoorHandler(
            session: session,
            tls: input.option(0) ? FuzzPKI.shared.anyClientServer : nil,
            logger: logger
        )
        do {
            let peer = try EmbeddedPeer(handlers: [handler])
            let transcript = peer.play(input, endInput: input.option(3))
            return Outcome(transcript: transcript, routed: session.routed, cancelled: session.cancelled)
        } catch {
            fatalError("fuzz: cannot set up the EmbeddedChannel: \(error)")
        }
    }
}
